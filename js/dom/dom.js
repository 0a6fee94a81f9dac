// dom: comet-dom.js, the parts of the WHATWG WebSocket standard and of the
// DOM's event model that most pages never notice, kept out of comet.js to
// hold its byte budget. Loaded after comet.js, it makes every Comet exact
// where comet.js alone is close (README.md, "comet-dom.js"):
// - events are real Event, MessageEvent (with origin and lastEventId) and
//   CloseEvent objects where the browser constructs them;
// - on<type> handlers run in registration order with the listeners, at
//   the position where each was first set, and a value that is not an
//   object makes one null;
// - listeners may be objects with handleEvent, the once option works, and
//   a listener removed during a dispatch is skipped;
// - binaryType ignores a value other than 'blob' and 'arraybuffer';
// - send() without an argument throws TypeError; send() and close() turn
//   lone surrogates into U+FFFD (USVString) before measuring;
// - the exceptions of send() and close() are real DOMExceptions;
// - close() while connecting leaves the Comet CLOSING and fires error and
//   close later, in a task of their own, so that a handler set just after
//   close() still runs;
// - a subprotocol that is not an RFC 6455 token, or is repeated, throws
//   SyntaxError.
// comet.js dispatches every event through dispatchEvent, which this file
// replaces, and checks subprotocols with Comet.token when it is set. The
// state this file keeps on a Comet is in properties starting with $,
// which the minifier of comet.js never gives to its own fields.
//
// Comet is the shim's constructor: build.js's wrapper passes it, under
// CommonJS from require of the shim beside this file, in a browser the
// page's global Comet, which must therefore be loaded first.

if (typeof Comet != 'function') throw new TypeError('comet-dom.js: load comet.js first');

// EVENTS are the event types, each with its on<type> handler property.
// topicgap is comet-topics.js's.
var EVENTS = ['open', 'message', 'error', 'close', 'transport', 'reconnecting', 'gap', 'drain', 'topicgap'];

// TOKEN is an RFC 7230 token, what RFC 6455 requires of a subprotocol.
var TOKEN = /^[\w!#$%&'*+.^`|~-]+$/;

var proto = Comet.prototype;
var send = proto.send;
var close = proto.close;

// usv converts s to a USVString, as Web IDL does: each lone surrogate
// becomes U+FFFD, pairs stay.
function usv(s) {
  return String(s).replace(/[\ud800-\udbff][\udc00-\udfff]|[\ud800-\udfff]/g, function (m) {
    return m[1] ? m : '\ufffd';
  });
}

// domError returns a DOMException where the browser constructs one (with
// its legacy code), else an Error of that name.
function domError(name, msg) {
  var e;
  try {
    return new ROOT.DOMException(msg, name);
  } catch (x) {
    e = new Error(msg);
    e.name = name;
    return e;
  }
}

// exact calls fn on c with args, and throws what comet.js throws as a
// DOMException of the same name.
function exact(fn, c, args) {
  try {
    return fn.apply(c, args);
  } catch (e) {
    throw e instanceof TypeError ? e : domError(e.name, e.message);
  }
}

// Comet.token checks subprotocol s, the i-th of all, as new WebSocket
// does, and returns it as a string.
Comet.token = function (s, i, all) {
  s = String(s);
  if (!TOKEN.test(s) || all.map(String).indexOf(s) < i) throw domError('SyntaxError', 'Comet: subprotocol ' + s);
  return s;
};

// real returns the event comet.js made as plain object e as a real Event,
// MessageEvent or CloseEvent where the browser constructs one, with the
// plain object's other fields added; else e itself.
function real(c, e) {
  var type = e.type, ev, k;
  if (type == 'message') {
    // The origin of the URL, with its scheme ws: or wss:.
    e.origin = /^\w+:\/\/[^\/?#]+/.exec(c.url)[0].replace(/^http/i, 'ws');
    e.lastEventId = '';
  }
  try {
    ev = new ROOT[type == 'message' ? 'MessageEvent' : type == 'close' ? 'CloseEvent' : 'Event'](type, e);
  } catch (x) {
    return e;
  }
  for (k in e) {
    if (!(k in ev)) ev[k] = e[k];
  }
  return ev;
}

// listeners returns the listener entries of type on c, in order: {$fn,
// $once} for a listener, {$handler} for an on<type> handler.
function listeners(c, type) {
  var all = c.$listeners || (c.$listeners = {});
  return all[type] || (all[type] = []);
}

// entry returns the entry of listener fn in list l.
function entry(l, fn) {
  return l.filter(function (x) {
    return x.$fn === fn;
  })[0];
}

// unlisten removes entry x, if any, from type's listeners; a dispatch
// under way skips it from then on.
function unlisten(c, type, x) {
  var l = listeners(c, type);
  if (x) {
    x.$removed = 1;
    l.splice(l.indexOf(x), 1);
  }
}

// dispatchEvent runs the listeners of e.type in order, over the list as
// it was when the dispatch began, and returns false if one cancelled e.
// An event comet.js made (a plain object) becomes a real one first. A
// listener's exception is reported on its own, as the DOM does.
proto.dispatchEvent = function (e) {
  var c = this;
  if (c.$queue) return c.$queue.push(e); // close() while connecting
  if (!ROOT.Event || !(e instanceof ROOT.Event)) e = real(c, e);
  ['target', 'currentTarget'].map(function (k) {
    Object.defineProperty(e, k, { value: c, configurable: true });
  });
  listeners(c, e.type).slice().map(function (x) {
    var f = x.$handler || x.$fn;
    if (x.$removed) return;
    if (x.$once) unlisten(c, e.type, x);
    try {
      // A handler that is an object but not a function does nothing.
      if (typeof f == 'function') f.call(c, e);
      else if (x.$fn) f.handleEvent(e);
    } catch (err) {
      ROOT.setTimeout(function () {
        throw err;
      }, 0);
    }
  });
  return !e.defaultPrevented;
};

proto.addEventListener = function (type, fn, options) {
  var l = listeners(this, type);
  if (fn && !entry(l, fn)) l.push({ $fn: fn, $once: !!(options && options.once) });
};

proto.removeEventListener = function (type, fn) {
  unlisten(this, type, entry(listeners(this, type), fn));
};

// accessor defines the property name of every Comet by get and set.
function accessor(name, get, set) {
  Object.defineProperty(proto, name, { get: get, set: set, configurable: true });
}

// An on<type> handler is a listener of its own (the HTML standard's
// event handler); setting null or any value that is not an object
// removes it, and one set again takes a new position.
EVENTS.map(function (type) {
  accessor('on' + type, function () {
    var h = (this.$handlers || {})[type];
    return h ? h.$handler : null;
  }, function (v) {
    var c = this, all = c.$handlers || (c.$handlers = {}), h = all[type];
    if (v !== Object(v)) {
      unlisten(c, type, h);
      all[type] = null;
    } else if (h) {
      h.$handler = v;
    } else {
      listeners(c, type).push(all[type] = { $handler: v });
    }
  });
});

accessor('binaryType', function () {
  return this.$binaryType;
}, function (v) {
  if (/^(blob|arraybuffer)$/.test(v += '')) this.$binaryType = v;
});

proto.send = function (data) {
  if (!arguments.length) throw new TypeError('Comet: send needs data');
  return exact(send, this, [data instanceof Object ? data : usv(data)]);
};

// close() while connecting: comet.js fails the session at once; its
// events wait for a task of their own, the Comet CLOSING until then.
proto.close = function (code, reason) {
  var c = this, q = c.readyState ? 0 : c.$queue = [];
  try {
    exact(close, c, [code, reason === undefined ? reason : usv(reason)]);
  } finally {
    c.$queue = 0;
  }
  if (q && q.length) {
    c.readyState = 2;
    ROOT.setTimeout(function () {
      c.readyState = 3;
      q.map(c.dispatchEvent, c);
    }, 0);
  }
};

// The constructor: what comet.js throws for a bad URL or option becomes a
// DOMException of the same name, as new WebSocket throws. The Comet this
// file returns (and in a browser puts in the page's global Comet) is that
// constructor, sharing the shim's prototype and its constants, so that
// instanceof, subclasses and Comet.OPEN work as before.
var Shim = Comet, k;
Comet = function Comet(url, protocols, options) {
  exact(Shim, this, arguments);
};
for (k in Shim) Comet[k] = Shim[k];
Comet.prototype = proto;
