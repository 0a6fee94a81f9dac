/*! comet-shim 0.1.0 comet-tcp */
(function (root, factory) {
  if (typeof module == 'object' && module.exports) module.exports = factory(root, require('./comet.js'));
  else root.CometTCP = factory(root);
}(typeof globalThis != 'undefined' ? globalThis : self, function (ROOT, Comet) {
'use strict';

// tcp: CometTCP, a TCP connection through the server's relay, with the
// shape of a WebSocket for bytes. It rides on one Comet session opened
// with the target option; the relay's sub-protocol (PROTOCOL.md, the TCP
// relay) is: a text message {"open":true} once the back end has accepted
// the connection, then binary messages holding its bytes; upstream, every
// message is bytes for the back end. Relay failures close the session
// with 3100–3106.
//
// Comet is the shim's constructor: build.js's wrapper passes it under
// CommonJS (require of the shim beside this file); in a browser it is the
// page's global Comet, looked up when a socket is made, so comet.js only
// has to be loaded by then.

// CHUNK is the largest message send hands to the session: a byte stream
// has no message boundaries, and the server refuses a message above its
// maxMessage (64 KiB by default), so a long write travels in pieces.
var CHUNK = 16384;

// MAX_BUFFERED is the shim's default of options.maxBuffered.
var MAX_BUFFERED = 8388608;

// OPEN_MESSAGE is the relay's first message: the back end is connected.
var OPEN_MESSAGE = '{"open":true}';

// REASONS are the readable reasons of the relay's close codes, for a close
// from the server that carries none.
var REASONS = {
  3100: 'target not allowed',
  3101: 'connection refused',
  3102: 'connect timed out',
  3103: 'host not found',
  3104: 'connection reset',
  3105: 'connection closed by the back end',
  3106: 'idle timeout'
};

// CometTCP connects to host:port through the relay of the Comet server
// mounted at url. options are the Comet options (globals included), less
// target, which host and port make, and reconnect, which is always off: a
// fresh session would be a fresh TCP connection, and the bytes in flight
// would be lost without a word.
function CometTCP(url, host, port, options) {
  var s = this, Shim = Comet || ROOT.Comet, o = {}, k, c;
  if (typeof Shim != 'function') throw new TypeError('CometTCP: load comet.js first');
  for (k in options) o[k] = options[k];
  host = String(host);
  // An IPv6 address is written in brackets, as in a URL.
  o.target = (host.indexOf(':') >= 0 && host.charAt(0) != '[' ? '[' + host + ']' : host) + ':' + port;
  o.reconnect = false;
  s.host = host;
  s.port = port;
  s.readyState = 0;
  s.onopen = s.ondata = s.onerror = s.onclose = s.ondrain = null;
  s._globals = o.globals || ROOT;
  s._maxBuffered = o.maxBuffered != null ? o.maxBuffered : MAX_BUFFERED;
  s._listeners = {};
  s.comet = c = new Shim(url, o);
  c.binaryType = 'arraybuffer';
  c.addEventListener('message', function (e) {
    _received(s, e.data);
  });
  c.addEventListener('drain', function () {
    if (s.readyState == 1) _emit(s, 'drain', {});
  });
  c.addEventListener('close', function (e) {
    _closed(s, e.code, e.reason, e.wasClean);
  });
}

CometTCP.closeReasons = REASONS;

var proto = CometTCP.prototype;
['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'].map(function (name, state) {
  CometTCP[name] = proto[name] = state;
});

// bufferedAmount is the session's: bytes sent and not yet acknowledged by
// the server.
Object.defineProperty(proto, 'bufferedAmount', {
  get: function () {
    return this.comet.bufferedAmount;
  }
});

// send writes data to the back end: the bytes of an ArrayBuffer, the exact
// range of a typed array or DataView, or the UTF-8 of a string (a lone
// surrogate becomes U+FFFD, as TextEncoder makes it). Empty data sends
// nothing. It throws InvalidStateError unless OPEN, QuotaExceededError
// when bufferedAmount would pass options.maxBuffered (nothing is sent
// then), and TypeError for any other kind of data.
proto.send = function (data) {
  var s = this, g = s._globals, bytes, i;
  if (s.readyState != 1) throw _domError(g, 'InvalidStateError', 'CometTCP: not open');
  if (typeof data == 'string') {
    bytes = _utf8(data, g);
  } else if (data && typeof data.byteLength == 'number') {
    bytes = new g.Uint8Array(data.buffer || data, data.byteOffset || 0, data.byteLength);
  } else {
    throw new TypeError('CometTCP: send takes a string, an ArrayBuffer or a view of one');
  }
  // Checked for the whole write, before any piece is queued: a write
  // is taken whole or not at all.
  if (s.comet.bufferedAmount + bytes.length > s._maxBuffered) {
    throw _domError(g, 'QuotaExceededError', 'CometTCP: over maxBuffered');
  }
  for (i = 0; i < bytes.length; i += CHUNK) s.comet.send(bytes.subarray(i, i + CHUNK));
};

// close ends the connection: the session closes with 1000, and the relay
// delivers what was sent before, then closes the back-end connection.
proto.close = function () {
  var s = this;
  if (s.readyState > 1) return;
  s.readyState = 2;
  s.comet.close(1000);
};

// addEventListener and removeEventListener behave as the DOM's for
// function listeners: a listener is added once.
proto.addEventListener = function (type, fn) {
  var l = this._listeners[type] || (this._listeners[type] = []);
  if (fn && l.indexOf(fn) < 0) l.push(fn);
};

proto.removeEventListener = function (type, fn) {
  var l = this._listeners[type] || [], i = l.indexOf(fn);
  if (i >= 0) l.splice(i, 1);
};

// _received handles a message of the session: the relay's open message
// while connecting, bytes once open. Anything else breaks the relay's
// protocol.
function _received(s, data) {
  if (s.readyState == 0 && data === OPEN_MESSAGE) {
    s.readyState = 1;
    _emit(s, 'open', {});
  } else if (s.readyState == 1 && typeof data != 'string') {
    _emit(s, 'data', { data: new s._globals.Uint8Array(data) });
  } else if (s.readyState < 2) {
    // The session's close codes leave 1002 to the server; the relay
    // needs only to hear that the client is gone.
    _closed(s, 1002, 'relay protocol error', false);
    s.comet.close(1000, 'relay protocol error');
  }
}

// _closed ends the socket once, with the relay's readable reason for a
// code the server gave none. As with a WebSocket, error comes first when
// the end is not clean.
function _closed(s, code, reason, wasClean) {
  var e = { code: code, reason: reason || REASONS[code] || '', wasClean: wasClean };
  if (s.readyState == 3) return;
  s.readyState = 3;
  if (!wasClean) _emit(s, 'error', e);
  _emit(s, 'close', e);
}

// _emit dispatches an event to the on<type> handler, then the listeners.
// A listener's exception is reported on its own (like the DOM's) and does
// not disturb the socket.
function _emit(s, type, props) {
  var e = { type: type, target: s, currentTarget: s }, k;
  for (k in props) e[k] = props[k];
  [s['on' + type]].concat(s._listeners[type] || []).map(function (f) {
    try {
      if (typeof f == 'function') f.call(s, e);
    } catch (err) {
      s._globals.setTimeout(function () {
        throw err;
      }, 0);
    }
  });
}

// _domError returns a DOMException where there is one, else an Error of
// that name.
function _domError(g, name, message) {
  var e;
  if (g.DOMException) return new g.DOMException(message, name);
  e = new Error(message);
  e.name = name;
  return e;
}

// _utf8 encodes s as UTF-8: with TextEncoder where there is one, else by
// hand, each lone surrogate as U+FFFD as TextEncoder does.
function _utf8(s, g) {
  var out = [], i, c, d;
  if (g.TextEncoder) return new g.TextEncoder().encode(s);
  for (i = 0; i < s.length; i++) {
    c = s.charCodeAt(i);
    if (c >= 0xd800 && c < 0xe000) {
      d = s.charCodeAt(i + 1);
      if (c < 0xdc00 && d >= 0xdc00 && d < 0xe000) {
        c = 0x10000 + (c - 0xd800) * 1024 + d - 0xdc00;
        i++;
      } else {
        c = 0xfffd;
      }
    }
    if (c < 0x80) {
      out.push(c);
    } else if (c < 0x800) {
      out.push(0xc0 | c >> 6, 0x80 | c & 63);
    } else if (c < 0x10000) {
      out.push(0xe0 | c >> 12, 0x80 | c >> 6 & 63, 0x80 | c & 63);
    } else {
      out.push(0xf0 | c >> 18, 0x80 | c >> 12 & 63, 0x80 | c >> 6 & 63, 0x80 | c & 63);
    }
  }
  return new g.Uint8Array(out);
}

return CometTCP;
}));
