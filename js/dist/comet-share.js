/*! comet-shim 0.1.0 comet-share */
(function (root, factory) {
  if (typeof module == 'object' && module.exports) module.exports = factory(root, require('./comet.js'));
  else root.Comet = factory(root, root.Comet);
}(typeof globalThis != 'undefined' ? globalThis : self, function (ROOT, Comet) {
'use strict';

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

// hub: a tab's end of the sharing of one endpoint (Hub): the election
// of the leader, the messages between tabs, and the tab's requests.

// From other files: Carrier (carrier); sharedGlobals (xhr).

// ASK: a follower whose oldest unanswered request waited this long asks
// the leader to prove that its carrier delivers, by a ping's round trip;
// ANSWER: how long the leader has to answer before another tab takes
// over. A frozen tab may still answer messages (Chromium runs a frozen
// page's BroadcastChannel handlers, not its network callbacks), so only
// the carrier's answer counts. CLAIM: how long a claim waits for an older
// one (without Web Locks).
var ASK = 3e3, ANSWER = 3e3, CLAIM = 150;

// Hub is one tab's end of the sharing of one endpoint: its requests, sent
// to the leader or, while it leads, carried itself.
function Hub(g, base, creds) {
  var h = this;
  h._g = g;
  h._base = base;
  h._creds = creds;
  h._now = g.now || Date.now;
  h._rand = g.random || Math.random;
  h._root = base.replace(/^(https?:\/\/[^\/]+).*$/, '$1');
  // The tab's id: unique among the tabs, so not from options.globals'
  // random, which a test may make the same in every tab.
  h._id = Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
  h._name = 'comet-share ' + base + (creds ? ' credentials' : '');
  h._reqs = {}; // this tab's requests in flight, by number
  h._n = 0;
  h._leader = ''; // the leader's id, while known
  h._lead = null; // the carrier, while this tab leads
  h._off = 0; // set when the server does not share
  h._ch = new g.BroadcastChannel(h._name);
  h._ch.onmessage = function (e) {
    h._receive(e.data || {});
  };
  h._globals = sharedGlobals(g, h);
  h._post({ t: '?' }); // the leader, if any, says who it is
  if (g.addEventListener) {
    g.addEventListener('pagehide', function () {
      // A follower's sub-requests end with it; its Comets close
      // themselves (comet.js: a beacon, which does not come here).
      if (!h._lead) h._post({ t: 'G' });
      h._resign();
    });
    g.addEventListener('freeze', function () {
      h._resign();
    });
    g.addEventListener('pageshow', function (e) {
      if (e && e.persisted) h._campaign();
    });
    g.addEventListener('resume', function () {
      h._campaign();
    });
  }
  h._campaign();
}

var hub = Hub.prototype;

// _post sends a message to the other tabs of this endpoint.
hub._post = function (m) {
  m.from = this._id;
  try {
    this._ch.postMessage(m);
  } catch (e) {}
};

// _locks returns the Web Locks API, where present.
hub._locks = function () {
  var n = this._g.navigator;
  return n && n.locks && n.locks.request && n.locks;
};

// _campaign stands for leader: with Web Locks, a request for the lock,
// granted when no other tab holds it (steal: taking it from one that
// does not answer); without, a claim.
hub._campaign = function (steal) {
  var h = this, locks = h._locks(), mine = {};
  if (h._lead) return;
  if (!locks) return h._claim();
  if (h._waiting && !steal) return;
  h._waiting = mine;
  locks.request(h._name, steal ? { steal: true } : {}, function () {
    if (h._waiting != mine) return; // resigned while it waited
    h._waiting = null;
    return new Promise(function (release) {
      h._release = release;
      h._becomeLeader();
    });
  })['catch'](function () {
    // Stolen from this tab, or refused: another tab leads.
    if (h._waiting == mine) h._waiting = null;
    h._resign(1);
  });
};

// _claim is the election without Web Locks: a tab that hears no leader
// claims, and leads unless an older claim, or a leader, answers within
// CLAIM; of two leaders the one with the smaller id stays.
hub._claim = function () {
  var h = this;
  if (h._claiming || h._lead) return;
  h._claiming = 1;
  h._post({ t: 'C' });
  h._g.setTimeout(function () {
    if (!h._claiming) return;
    h._claiming = 0;
    if (!h._leader) h._becomeLeader();
  }, CLAIM);
};

// _becomeLeader makes this tab the leader: it says so, and carries its
// own requests and the other tabs' from now on.
hub._becomeLeader = function () {
  var h = this, n;
  h._lead = new Carrier(h);
  h._leader = h._id;
  h._post({ t: 'L' });
  for (n in h._reqs) {
    if (h._reqs[n]._to) h._failReq(n); // sent to a leader that is gone
    else h._send(n);
  }
};

// _resign gives the leadership up (the page is hidden or frozen, or
// another tab took the lock): every request carried fails, so that each
// session attaches again through the next leader.
hub._resign = function (taken) {
  var h = this, lead = h._lead, n;
  h._waiting = null;
  if (h._release) h._release();
  h._release = null;
  if (lead) {
    h._lead = null;
    lead._end();
    if (!taken) h._post({ t: 'B' });
  }
  if (h._leader == h._id) h._leader = '';
  for (n in h._reqs) h._failReq(n);
  if (taken) {
    // The tab that took the lock said so while this one still led: ask.
    h._post({ t: '?' });
    h._campaign();
  }
};

// _receive handles a message from another tab.
hub._receive = function (m) {
  var h = this, lead = h._lead, r;
  switch (m.t) {
    case 'L': // a tab leads
      if (lead) {
        // With Web Locks the lock decides: a tab it was taken from hears
        // so from its request, and resigns. Without, the smaller id stays.
        if (h._locks()) return;
        if (m.from > h._id) return h._post({ t: 'L' });
        h._resign(1);
      }
      h._claiming = 0;
      if (h._leader != m.from) h._newLeader(m.from);
      return;
    case 'B': // the leader resigned
      if (h._leader == m.from) h._newLeader('');
      return h._campaign();
    case 'C': // a claim, without Web Locks
      if (lead) return h._post({ t: 'L' });
      if (h._claiming && m.from < h._id) h._claiming = 0;
      return;
    case '?': // who leads?
      if (lead) h._post({ t: 'L' });
      return;
    case 'K': // does the carrier deliver?
      if (lead && m.to == h._id) lead._knock(m.from);
      return;
    case 'P': // it does
      if (m.to == h._id && m.from == h._leader) h._alive = 1;
      return;
    case 'Q': // a request for the leader
      if (lead && m.to == h._id) lead._start(m.r, m.m, m.u, m.b, m.from);
      return;
    case 'A': // a request aborted
      if (lead && m.to == h._id) lead._abortFrom(m.from, m.r);
      return;
    case 'G': // a tab has gone
      if (lead) lead._forget(m.from);
      return;
    case 'R': // a response part, for one of this tab's requests
      r = m.to == h._id && h._reqs[m.r];
      if (r && r._to == m.from) h._deliver(m.r, m.k, m.s, m.d);
      return;
    case 'O': // the server does not share
      h._off = 1;
  }
};

// _newLeader records the leader's id: requests sent to another leader
// fail, and those waiting for one go.
hub._newLeader = function (id) {
  var h = this, n, r;
  h._leader = id;
  for (n in h._reqs) {
    r = h._reqs[n];
    if (r._to && r._to != id) h._failReq(n);
    else if (!r._to && id) h._send(n);
  }
};

// _request starts one of this tab's requests: cb gets (kind, status,
// text) for the head ('h'), each part ('d'), the end ('e'), a failure
// ('f'), or 'o' when the request was not carried and is to go to the
// network itself. It returns the request's number, for _abort.
hub._request = function (method, target, body, cb) {
  var h = this, n = ++h._n;
  h._reqs[n] = { _m: method, _u: target, _b: body, _cb: cb, _to: '', _at: h._now() };
  h._send(n);
  h._watch();
  return n;
};

// _send sends request n to the leader, or carries it while this tab
// leads; without a leader it waits, and the watch campaigns.
hub._send = function (n) {
  var h = this, r = h._reqs[n];
  if (h._lead) {
    r._to = h._id;
    return h._lead._start(n, r._m, r._u, r._b, '');
  }
  if (!h._leader) return h._campaign();
  r._to = h._leader;
  r._at = h._now();
  h._post({ t: 'Q', to: r._to, r: n, m: r._m, u: r._u, b: r._b });
};

// _abort ends request n: its client is gone.
hub._abort = function (n) {
  var h = this, r = h._reqs[n];
  if (!r) return;
  delete h._reqs[n];
  if (r._to == h._id && h._lead) h._lead._abortFrom('', n);
  else if (r._to) h._post({ t: 'A', to: r._to, r: n });
};

// _deliver gives a part of request n's response to it.
hub._deliver = function (n, kind, status, text) {
  var r = this._reqs[n];
  if (!r) return;
  r._heard = 1;
  if (kind == 'e' || kind == 'f' || kind == 'o') delete this._reqs[n];
  r._cb(kind, status, text);
};

hub._failReq = function (n) {
  this._deliver(n, 'f', 0, '');
};

// _watch checks, while this tab has requests the leader has not begun
// to answer, that the leader's carrier delivers: asked after ASK, a
// leader that does not answer within ANSWER is replaced.
hub._watch = function () {
  var h = this;
  if (h._watching) return;
  h._watching = 1;
  h._g.setTimeout(function check() {
    var n, r, waiting = 0, now = h._now(), knocked;
    for (n in h._reqs) {
      r = h._reqs[n];
      if (!r._heard && r._to != h._id && now - r._at >= ASK) waiting = 1;
    }
    if (!Object.keys(h._reqs).length || h._lead) {
      h._watching = 0;
      return;
    }
    if (waiting) {
      knocked = h._leader;
      h._alive = 0;
      h._post({ t: 'K', to: knocked });
      // Unless another tab took over meanwhile; a random part, so that
      // the tabs that knocked together do not all take over at once.
      h._g.setTimeout(function () {
        if (!h._lead && !h._alive && h._leader == knocked) {
          h._newLeader('');
          h._campaign(1);
        }
      }, ANSWER * (1 + h._rand() / 2));
    }
    h._g.setTimeout(check, ASK);
  }, ASK);
};

// xhr: the globals comet.js runs on where it shares: an XMLHttpRequest
// that carries the session requests of its endpoint through the leader.

// From other files: none.

// sharedGlobals returns comet.js's globals for a hub: g's, with an
// XMLHttpRequest that carries the session requests of the hub's endpoint,
// and no EventSource (see the top of this file). Functions that need g as
// their this are bound to it.
function sharedGlobals(g, h) {
  // The globals comet.js and comet-tcp.js read (comet-dom.js and
  // comet-topics.js read the page's own).
  var s = {}, names = ['WebSocket', 'setTimeout', 'clearTimeout', 'localStorage', 'navigator', 'location', 'URL',
    'document', 'addEventListener', 'removeEventListener', 'FileReader', 'Blob', 'ArrayBuffer', 'Uint8Array',
    'atob', 'btoa', 'now', 'random'];
  names.map(function (name) {
    var v;
    try {
      v = g[name];
    } catch (e) {
      return; // localStorage, in a sandboxed frame
    }
    if (typeof v == 'function' && !/^[A-Z]/.test(name)) v = v.bind(g);
    if (v !== undefined) s[name] = v;
  });
  s.XMLHttpRequest = sharedXHR(g, h);
  return s;
}

// targetOf returns the path and query of url if it is a session request
// of h's endpoint that a carrier may carry: an attach by XHR streaming or
// long-polling (not one that negotiates, n=) or a POST to send.
function targetOf(h, url) {
  var u = String(url), rest;
  if (h._off || u.indexOf(h._base + '/') != 0) return;
  rest = u.slice(h._base.length);
  if (!/^\/(streaming|longpoll|send)(\?|$)/.test(rest) || /[?&]n=/.test(rest)) return;
  return u.slice(h._root.length);
}

// sharedXHR returns an XMLHttpRequest constructor whose requests to the
// hub's session paths are carried, and whose others go to the network:
// comet.js sees the same readyState, status and responseText either way.
function sharedXHR(g, h) {
  function XHR() {
    this.readyState = this.status = 0;
    this.responseText = '';
    this._headers = [];
  }
  var p = XHR.prototype;
  p.open = function (method, url) {
    this._m = method;
    this._u = url;
    this.readyState = 1;
  };
  p.setRequestHeader = function (k, v) {
    this._headers.push([k, v]);
  };
  p.send = function (body) {
    var x = this, target = targetOf(h, x._u);
    if (target) {
      x._n = h._request(x._m, target, body == null ? '' : String(body), function (kind, status, text) {
        if (kind == 'o') return real(x, body);
        if (kind == 'h') {
          x.status = status;
          x.readyState = 2;
        } else if (kind == 'd') {
          x.responseText += text;
          x.readyState = 3;
        } else {
          if (kind == 'f') x.status = 0;
          x.readyState = 4;
        }
        if (x.onreadystatechange) x.onreadystatechange();
      });
      return;
    }
    real(x, body);
  };
  // real sends x's request to the network, with the browser's
  // XMLHttpRequest, and mirrors it.
  function real(x, body) {
    var r = x._real = new g.XMLHttpRequest();
    r.open(x._m, x._u, true);
    r.withCredentials = x.withCredentials;
    x._headers.map(function (kv) {
      r.setRequestHeader(kv[0], kv[1]);
    });
    r.onreadystatechange = function () {
      x.readyState = r.readyState;
      try {
        x.status = r.status;
        x.responseText = r.responseText;
      } catch (e) {}
      if (x.onreadystatechange) x.onreadystatechange();
    };
    r.send(body);
  }
  p.abort = function () {
    if (this._real) this._real.abort();
    else if (this._n) h._abort(this._n);
  };
  return XHR;
}

// carrier: the leader's carrier (Carrier), which starts the tabs'
// requests as sub-requests on its links and hands each its response.

// From other files: Link, recall (link).

// SETTLED: an XHR stream attached this long ago (or to deliver, d=1) is
// no longer a probe of comet.js's first race, which ending would fail:
// it may be moved to a fresh carrier stream.
var SETTLED = 5e3;

// Carrier is the leader's end of the sharing: it starts the tabs'
// requests as sub-requests on a link to the server, and hands each its
// response. A link is a carrier of the server (PROTOCOL.md section 16):
// polls, whose hello comes back in one round trip through any proxy, and
// a stream, tried beside them, which once proven by a ping's echo takes
// every new sub-request (the polls end when their last sub-request
// does), as comet.js's early delivery does with its transports. Where
// the stream's proof failed the page polls alone, for a day. A stream
// past its BUDGET is replaced the same way. Once a stream is proven, each
// session's XHR stream carried by the polls or the stream it replaces is
// ended cleanly, at a line's end, as the server recycles a stream:
// comet.js attaches again, on the proven one, from its ack. The old link
// ends with its last sub-request.
function Carrier(h) {
  var c = this;
  c._h = h;
  c._subs = {}; // by sub-request number: {_from: tab id, '' for this tab, _r: its request number, _link, _stream, _line}
  c._byTab = {}; // sub-request numbers by tab and request: 'tab r' -> sub
  c._sub = 0;
  c._polls = c._stream = c._old = null;
}

var carrier = Carrier.prototype;

// _start starts request r of tab from (or of this tab, from '') on the
// carrier's best link, opening links as needed.
carrier._start = function (r, method, target, body, from) {
  var c = this, h = c._h, sub = ++c._sub, l = open(c._stream) || open(c._old) || c._polls;
  function open(l) {
    return l && l._state == 2 && l;
  }
  if (!l) {
    l = c._polls = new Link(c, 0);
    if (!c._stream && !recall(h)) c._stream = new Link(c, 1);
  }
  c._subs[sub] = {
    _from: from, _r: r, _link: l, _stream: /^[^?]*\/streaming\?/.test(target), _line: 1, _at: h._now(),
    _d: /[?&]d=1(&|$)/.test(target)
  };
  c._byTab[from + ' ' + r] = sub;
  l._n++;
  l._queue(method == 'POST' ? [sub, method, target, body] : [sub, method, target]);
};

// _abortFrom aborts the sub-request of request r of tab from.
carrier._abortFrom = function (from, r) {
  var c = this, sub = c._byTab[from + ' ' + r], s = sub && c._drop(sub);
  if (s) s._link._abort(sub);
};

// _forget aborts every sub-request of a tab that has gone.
carrier._forget = function (from) {
  var c = this, sub;
  for (sub in c._subs) {
    if (c._subs[sub]._from == from) c._abortFrom(from, c._subs[sub]._r);
  }
};

// _drop forgets sub-request sub; a link of polls that the stream
// replaced ends with its last one.
carrier._drop = function (sub) {
  var c = this, s = c._subs[sub], l = s && s._link;
  if (s) {
    delete c._subs[sub];
    delete c._byTab[s._from + ' ' + s._r];
    if (!--l._n && (l == c._polls || l == c._old) && c._stream && c._stream._state == 2) {
      l._retire();
      if (l == c._polls) c._polls = null;
      else c._old = null;
    }
  }
  return s;
};

// _knock puts a ping on the carrier for tab from, which _pong answers
// when its echo comes: the carrier delivers.
carrier._knock = function (from) {
  var c = this, l = [c._stream, c._old, c._polls].filter(function (l) {
    return l && l._state == 2;
  })[0];
  (c._knocks = c._knocks || {})[from] = 1;
  if (l) l._queue([0, 'p']);
  // Otherwise a link is opening: its hello or proof comes first, or the
  // asker takes over.
};

carrier._pong = function () {
  var c = this, from;
  for (from in c._knocks) c._h._post({ t: 'P', to: from });
  c._knocks = {};
};

// _hand gives a frame of sub-request sub's response to its request.
carrier._hand = function (sub, kind, status, text) {
  var c = this, s = c._subs[sub];
  if (!s) return;
  if (kind == 'h') s._head = 1;
  if (kind == 'd') s._line = /\n$/.test(text);
  if (kind == 'e' || kind == 'f' || kind == 'o') c._drop(sub);
  if (!s._from) return c._h._deliver(s._r, kind, status, text);
  c._h._post({ t: 'R', to: s._from, r: s._r, k: kind, s: status, d: text });
};

// _lost ends link l: its sub-requests fail, and the next request opens
// links again. Those of a link that never opened were not carried: they
// go to the network, each from its tab. A server that does not share (a
// 404 to the opening, not share_not_found) is told to every tab, whose
// requests then all go to the network.
carrier._lost = function (l, status, text) {
  var c = this, h = c._h, sub, body;
  try {
    body = JSON.parse(text);
  } catch (e) {}
  l._end();
  if (c._polls == l) c._polls = null;
  if (c._stream == l) c._stream = null;
  if (c._old == l) c._old = null;
  if (status == 404 && !l._id && !(body && body.code == 'share_not_found')) {
    h._off = 1;
    h._post({ t: 'O' });
  }
  for (sub in c._subs) {
    if (c._subs[sub]._link == l) c._hand(sub, l._id ? 'f' : 'o', 0, '');
  }
};

// _end ends the carrier: this tab no longer leads. The tabs' requests
// fail by the leader's change.
carrier._end = function () {
  var c = this;
  [c._polls, c._stream, c._old].map(function (l) {
    if (l) l._end();
  });
};

// _recycle replaces stream l, past its budget, by a fresh one.
carrier._recycle = function (l) {
  var c = this;
  if (c._stream != l || c._old) return;
  c._old = l;
  c._stream = new Link(c, 1);
};

// _proven moves to the stream just proven: the polls, and a stream it
// replaces, end with their last sub-request, their XHR streams moved
// (_move) as soon as each may be.
carrier._proven = function () {
  var c = this, sub;
  [c._polls, c._old].map(function (l) {
    if (l) l._moving = 1;
  });
  for (sub in c._subs) c._move(sub);
  if (c._polls && !c._polls._n) {
    c._polls._retire();
    c._polls = null;
  }
  if (c._old && !c._old._n) {
    c._old._retire();
    c._old = null;
  }
};

// _move ends sub-request sub cleanly, for its request to attach again on
// the proven stream, if it is an XHR stream of a link being left that has
// its head, is settled (SETTLED) and is at a line's end; one that is not
// yet is tried again at its next frame.
carrier._move = function (sub) {
  var c = this, s = c._subs[sub];
  if (s && s._stream && s._head && s._line && s._link._moving && (s._d || c._h._now() - s._at >= SETTLED)) {
    s._link._abort(sub);
    c._hand(sub, 'e', 200, '');
  }
};

// link: one carrier of the server (Link), polls or a stream, and the
// decoding of its frames (PROTOCOL.md section 16).

// From other files: none.

// BUDGET: a carrier stream that has delivered this many characters is
// replaced by a fresh one, as the browser keeps all of a response's text.
var BUDGET = 1048576;

// PROOF: how long a carrier stream has to echo a ping before it is given
// up, for polls.
var PROOF = 2e3;

// MEMORY_TTL is how long the page remembers that streams do not work for
// an endpoint (localStorage), as comet.js remembers its transports.
var MEMORY_TTL = 864e5;

// Link is one carrier of the server: polls, or (stream set) a stream.
// Its ops wait for its hello, and are POSTed one batch at a time.
function Link(c, stream) {
  var l = this, h = c._h, seen = 0;
  l._c = c;
  l._h = h;
  l._stream = stream;
  l._id = '';
  l._state = 1; // 1 opening, 2 open, 3 ended
  l._ops = [];
  l._n = l._ack = l._sending = 0; // _n: its sub-requests
  if (!stream) return l._poll();
  l._req = request(h, l._url('&s=1'), function (status, text) {
    if (status == 200) read(text, 1);
    c._lost(l, status, text);
  }, read);
  // read reads the stream's new whole lines (with last, the rest too).
  function read(text, last) {
    var lines = text.slice(seen).split('\n'), i;
    if (!last) lines.pop();
    for (i = 0; i < lines.length && l._state < 3; i++) {
      seen += lines[i].length + 1;
      if (/\S/.test(lines[i])) l._frame(lines[i]);
    }
    if (seen > BUDGET) c._recycle(l);
  }
  l._timer = h._g.setTimeout(function () {
    // The hello or the ping's echo did not come: a proxy holds the
    // stream back. Polls alone then, for a day.
    remember(h);
    c._lost(l, 0, '');
  }, PROOF);
}

var link = Link.prototype;

// _url is a URL of the endpoint's carriers with params and a cache buster.
link._url = function (params) {
  var h = this._h;
  return h._base + '/share?v=1' + params + '&z=' + h._rand().toString(36).slice(2);
};

// _queue sends op once the link is open.
link._queue = function (op) {
  this._ops.push(op);
  this._flush();
};

// _abort aborts sub-request sub: not sent yet, it is not sent; sent, the
// server ends it.
link._abort = function (sub) {
  var l = this, n = l._ops.length;
  l._ops = l._ops.filter(function (op) {
    return op[0] != sub;
  });
  if (l._ops.length == n) l._queue([+sub, 'x']);
};

// _frame handles one line of the link.
link._frame = function (line) {
  var l = this, c = l._c, f = decodeCarrierFrame(line);
  if (!f) return c._lost(l, 0, '');
  if (f.o) {
    l._id = f.o;
    l._max = f.max;
    if (!l._stream) {
      l._state = 2;
      return l._flush();
    }
    // Prove the stream: the ping's echo must come on it promptly.
    l._sending = 1;
    return l._send([[0, 'p']], 0);
  }
  l._ack = f.n;
  if (f.kind == 'p') c._pong();
  if (f.kind == 'p' && l._state == 1) {
    // Proven: new sub-requests go here.
    l._h._g.clearTimeout(l._timer);
    l._state = 2;
    c._proven();
    return l._flush();
  }
  if (f.sub) {
    c._hand(f.sub, f.kind, f.status, f.text);
    if (l._moving) c._move(f.sub);
  }
};

// _poll polls the link (the first poll opens it) until it ends. A poll
// that fails is sent again, twice: what it lost is answered again.
link._poll = function (tries) {
  var l = this, c = l._c;
  l._req = request(l._h, l._url(l._id ? '&c=' + l._id + '&n=' + l._ack : ''), function (status, text) {
    if (status != 200) {
      if (!status && l._id && (tries || 0) < 2) return l._poll((tries || 0) + 1);
      return c._lost(l, status, text);
    }
    text.split('\n').map(function (line) {
      if (l._state < 3 && /\S/.test(line)) l._frame(line);
    });
    if (l._state < 3) l._poll();
  });
};

// _flush sends the ops waiting, one POST at a time, within the server's
// bound.
link._flush = function () {
  var l = this, batch = [], size = 2, op, s;
  if (l._sending || l._state != 2) return;
  while (l._ops.length) {
    op = l._ops[0];
    s = JSON.stringify(op).length + 1;
    if (batch.length && size + s > l._max) break;
    l._ops.shift();
    if (size + s > l._max) {
      // Larger than the server takes (which comet.js, keeping each POST
      // within maxBatch, never sends): it fails rather than wait forever.
      l._c._hand(op[0], 'f', 0, '');
      continue;
    }
    batch.push(op);
    size += s;
  }
  if (!batch.length) return;
  l._sending = 1;
  l._send(batch, 0);
};

// _send POSTs a batch of ops. One that fails is sent again, twice: the
// server starts nothing twice.
link._send = function (batch, tries) {
  var l = this, c = l._c;
  request(l._h, l._url('&c=' + l._id), function (status, text) {
    if (l._state == 3) return;
    if (!status && tries < 2) return l._send(batch, tries + 1);
    l._sending = 0;
    if (status == 200) {
      l._flush();
      if (l._retiring && !l._sending) l._end();
      return;
    }
    if (status == 404 || !status) return c._lost(l, status, text);
    // A refusal of the body itself: its sub-requests fail.
    batch.map(function (op) {
      c._hand(op[0], 'f', 0, '');
    });
    l._flush();
  }, 0, JSON.stringify(batch));
};

// _retire ends the link once the ops it holds (aborts) are sent.
link._retire = function () {
  var l = this;
  l._retiring = 1;
  if (!l._sending && (!l._ops.length || l._state != 2)) l._end();
};

// _end stops the link's requests and timer.
link._end = function () {
  var l = this;
  l._state = 3;
  l._h._g.clearTimeout(l._timer);
  if (l._req) l._req.close();
};

// decodeCarrierFrame decodes a line of a carrier (PROTOCOL.md section
// 16): the hello as {o: id, max}, another frame as {n, sub, kind, status,
// text}; undefined for anything else.
function decodeCarrierFrame(line) {
  var f, kind;
  try {
    f = JSON.parse(line);
  } catch (e) {
    return;
  }
  if (!Array.isArray(f)) return;
  if (f[0] === 'o') {
    return f.length == 3 && typeof f[1] == 'string' && f[1] && whole(f[2]) ? { o: f[1], max: f[2] } : undefined;
  }
  kind = f[2];
  // Compared only as a string: an array would be turned into one, which
  // for a deeply nested one overflows the stack.
  if (!whole(f[0]) || !whole(f[1]) || typeof kind != 'string') return;
  if (kind == 'h' && f.length == 4 && whole(f[3]) && f[1]) return { n: f[0], sub: f[1], kind: kind, status: f[3] };
  if (kind == 'd' && f.length == 4 && typeof f[3] == 'string' && f[1]) {
    return { n: f[0], sub: f[1], kind: kind, text: f[3] };
  }
  if (f.length == 3 && (kind == 'e' && f[1] || (kind == 'p' || kind == 'k') && !f[1])) {
    return { n: f[0], sub: f[1], kind: kind };
  }
}

// whole reports whether v is an integer from 0 to 2^53-1.
function whole(v) {
  return typeof v == 'number' && v >= 0 && v <= 9007199254740991 && Math.floor(v) === v;
}

// request sends one XMLHttpRequest of the carrier to the network: a GET,
// or with a body a text/plain POST (CORS-simple). done(status, text)
// runs once; progress, if set, gets the growing responseText. It returns
// an object whose close aborts the request without calling done.
function request(h, url, done, progress, body) {
  var x = new h._g.XMLHttpRequest(), over;
  x.open(body == null ? 'GET' : 'POST', url, true);
  x.withCredentials = h._creds;
  if (body != null) x.setRequestHeader('Content-Type', 'text/plain;charset=UTF-8');
  x.onreadystatechange = function () {
    var text;
    if (x.readyState < 3 || over) return;
    try {
      text = x.responseText;
    } catch (e) {
      return;
    }
    if (progress && x.status == 200 && x.readyState == 3) progress(text);
    if (x.readyState == 4) {
      over = 1;
      done(x.status, text);
    }
  };
  x.send(body);
  return {
    close: function () {
      if (!over) {
        over = 1;
        x.abort();
      }
    }
  };
}

// recall reports whether the page found this endpoint's carrier streams
// held back, within MEMORY_TTL; remember records it. Storage may throw
// anywhere, which only forgets.
function recall(h) {
  try {
    return +h._g.localStorage.getItem('comet-share-polls:' + h._base) > h._now();
  } catch (e) {}
}

function remember(h) {
  try {
    h._g.localStorage.setItem('comet-share-polls:' + h._base, h._now() + MEMORY_TTL);
  } catch (e) {}
}

return Comet;
}));
