// share: comet-share.js, one connection for all the tabs of a page
// (PROTOCOL.md section 16), kept out of comet.js to hold its byte budget.
// A browser opens at most six HTTP/1.1 connections to a host: behind a
// proxy that refuses WebSocket, every tab's stream holds one and the
// seventh tab never opens. Loaded after comet.js (and comet-dom.js, if
// used), this file makes the tabs of one endpoint elect a leader, which
// holds one carrier (a stream, or polls where a proxy holds streams back)
// and sends every tab's attaches and POSTs through it.
//
// Each Comet keeps its own session: comet.js runs it exactly as without
// sharing, on globals whose XMLHttpRequest carries its session requests
// through the leader (its negotiate, and WebSocket, go to the network as
// before). The globals have no EventSource: a carried session streams by
// XHR streaming, whose response the leader can end cleanly when it moves
// to a fresh carrier stream, as the server recycles a stream; an
// EventSource that ends is a dropped connection to comet.js. A request
// that the carrier loses (the leader tab closed or froze, the carrier
// broke) fails as a request whose connection broke, and comet.js resumes
// the session from its acks, as after any failure: nothing is lost.
//
// The leader is elected with the Web Locks API where present: the tab
// that holds the lock leads, and the lock passes on when it closes. A
// follower whose requests go unanswered asks the leader whether it lives,
// and takes the lock over (steal) from one that does not answer, a frozen
// tab. Without Web Locks the tabs elect by claims on the BroadcastChannel.
// BroadcastChannel, not SharedWorker: SharedWorker is missing on Android
// Chrome, and a worker would own the carrier without a page's lifecycle
// events to hand it over by. A page without BroadcastChannel, or a Comet
// made with share: false, does not share.
//
// Comet is the shim's constructor: build.js's wrapper passes it, under
// CommonJS from require of the shim beside this file, in a browser the
// page's global Comet, which must therefore be loaded first. The Comet
// this file returns (and in a browser puts in the page's global Comet) is
// a constructor over it, sharing its prototype and constants.
//
// The files after this one: hub (the tabs and their leader), xhr (the
// globals comet.js runs on), carrier (the leader's carrier) and link (one
// carrier of the server).

// From other files: Hub (hub); Comet, ROOT (build.js).

if (typeof Comet != 'function') throw new TypeError('comet-share.js: load comet.js first');

// hubs are this page's hubs, one per endpoint and credentials mode and
// per globals object (the tests' pages share one process).
var hubs = [];

function assign(to, from) {
  for (var k in from) to[k] = from[k];
  return to;
}

// The constructor: options.share false, transports that a carrier does
// not take, or a page without BroadcastChannel or XMLHttpRequest, make a
// Comet of its own. It calls
// the constructor it wraps on this, as comet-dom.js's does, so that the
// two files may be loaded in either order.
var Shim = Comet, k;
Comet = function Comet(url, protocols, options) {
  var o = options, g, hb;
  if (protocols && typeof protocols == 'object' && !Array.isArray(protocols)) {
    o = protocols;
    protocols = [];
  }
  o = assign({}, o);
  g = o.globals || ROOT;
  // A page that asks only for transports a carrier does not take (SSE,
  // WebSocket) connects on its own, as it asked.
  if (o.share !== false && g.BroadcastChannel && g.XMLHttpRequest &&
    (o.transports || ['streaming']).some(function (t) {
      return t == 'streaming' || t == 'longpoll';
    })) {
    hb = hubFor(g, url, !!o.withCredentials);
    if (hb) o.globals = hb._globals;
  }
  Shim.call(this, url, protocols, o);
};
for (k in Shim) Comet[k] = Shim[k];
Comet.prototype = Shim.prototype;

// hubFor returns the hub of the endpoint at url for globals g, making it
// on first use; undefined for a URL comet.js will refuse anyway.
function hubFor(g, url, creds) {
  var base, i;
  try {
    base = new g.URL(String(url), g.location && g.location.href).href;
  } catch (e) {
    return;
  }
  base = base.replace(/^ws/i, 'http').replace(/[?#].*/, '').replace(/\/+$/, '');
  if (!/^https?:\/\/[^\/]+/i.test(base)) return;
  for (i = 0; i < hubs.length; i++) {
    if (hubs[i]._g == g && hubs[i]._base == base && hubs[i]._creds == creds) return hubs[i];
  }
  hubs.push(base = new Hub(g, base, creds));
  return base;
}
