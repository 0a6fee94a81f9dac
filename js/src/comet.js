// comet: the public API, which mirrors the browser's WebSocket: the
// constructor, readyState and its constants, send, close, bufferedAmount
// and the events. The session itself is in the files after this one.

// From other files: encodeFrame, utf8Length (codec); assign,
// domError, resolveURL (env); TRANSPORTS, transportNamed (fallback); _bye, _closeWith,
// _fail, _listen, _online (lifecycle); _connect (negotiate);
// _flush (upstream); ROOT (build.js).

// DEFAULTS are the options that do not default to undefined; README.md
// documents them all.
var DEFAULTS = {
  transports: Object.keys(TRANSPORTS), // all, best first
  timeout: 1e4, // negotiate
  maxBuffered: 8388608, // bytes sent and not yet acknowledged
  reconnectDelay: 1e3,
  reconnectMaxDelay: 3e4,
  remember: true
};

// Comet opens a session with the Comet server mounted at url (http:,
// https:, ws: or wss:, or relative to the page), as new WebSocket(url,
// protocols) does: protocols is a subprotocol or a list of them, and
// options may follow it or take its place (an object that is not an
// array is options).
function Comet(url, protocols, options) {
  var c = this, o, u;
  if (protocols && typeof protocols == 'object' && !Array.isArray(protocols)) {
    options = protocols;
    protocols = [];
  }
  c._options = o = assign(assign({}, DEFAULTS), options);
  c._globals = o.globals || ROOT;
  c._now = c._globals.now || Date.now;
  c._rand = c._globals.random || Math.random;
  u = resolveURL(url, c._globals);
  // comet-dom.js, where loaded, checks each as new WebSocket does.
  c._protocols = [].concat(protocols || []).map(Comet.token || String);
  c.url = u[0];
  c._base = u[1];
  c._memoryKey = 'comet:' + c._base;
  c._order = o.transports.filter(function (name) {
    var t = transportNamed(name);
    if (!t) throw new TypeError('Comet: unknown transport ' + name);
    return c._globals[t._need];
  });
  c.readyState = c.bufferedAmount = 0;
  c.binaryType = c._globals.Blob ? 'blob' : 'arraybuffer';
  c.protocol = c.extensions = c.transport = '';
  c.onopen = c.onmessage = c.onerror = c.onclose = null;
  c._listeners = {}; // by event type
  c._timers = {}; // by name: {_fn, _id}
  // messages not yet acknowledged: {_seq, _size, _frame, _bytes, _isClose};
  // a binary message keeps its _bytes (sent raw on a WebSocket that agreed
  // to that) and gets its base64 _frame when a path first needs it
  c._outbox = [];
  // _seq: the sequence number of the last message queued; _acked: the
  // server's ack of them; _sent: the last one sent on the current path;
  // _reconnects: fresh sessions in a row; _generation: bumped when the
  // attachments change hands, so that a stale ticket callback is dropped;
  // _flaps: drops and failed resumes in a row; _postFailures: POSTs failed
  // in a row, which the POST's backoff grows with.
  c._seq = c._acked = c._sent = c._reconnects = c._generation = c._flaps = c._postFailures = 0;
  c._keepalive = {}; // the history keepalive() judges deaths by
  c._heartbeat = o.heartbeat || 0; // the heartbeat interval asked for, or 0
  c._unlisten = []; // removers of the window listeners
  _listen(c, 'online', _online);
  _listen(c, 'pagehide', _bye);
  _connect(c);
}

// proto is Comet.prototype, which holds only the public API. The session's
// internals are plain functions of the session (c, first), spread over the
// files after this one, one concern each: unlike methods, the minifier can
// rename and inline them.
var proto = Comet.prototype;
['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'].map(function (name, state) {
  Comet[name] = proto[name] = state;
});

// send queues data for the server: a string as text; an ArrayBuffer, a
// typed array, a DataView or a Blob as binary. Order is kept even while a
// Blob is read. As WebSocket's, it throws while connecting, and after
// close() it discards the data and grows bufferedAmount. While open it
// throws rather than drop anything: for a message above the server's
// maxMessage, when bufferedAmount would pass options.maxBuffered, and for
// text with a lone surrogate, which has no UTF-8.
proto.send = function (data) {
  var c = this, g = c._globals, m = { _seq: c._seq + 1 }, blob = g.Blob && data instanceof g.Blob, r;
  function binary(bytes) {
    // Copied, so that later changes to it do not change the message. It
    // goes raw on a WebSocket that agreed to that, as base64 otherwise.
    m._bytes = new g.Uint8Array(bytes);
  }
  if (blob) {
    m._size = data.size;
  } else if (data && data.byteLength != null) {
    // An ArrayBuffer, a typed array or a DataView.
    if (!g.Uint8Array || !g.btoa) throw new TypeError('Comet: no typed arrays');
    binary(data = new g.Uint8Array(data.buffer || data, data.byteOffset || 0, data.byteLength));
    m._size = data.length;
  } else {
    data = String(data);
    if ((m._size = utf8Length(data)) == 1 / 0) throw new TypeError('Comet: lone surrogate');
    m._frame = encodeFrame(['m', m._seq, data]);
  }
  if (c.readyState != 1) {
    if (!c.readyState) throw domError('InvalidStateError', 'not open');
    c.bufferedAmount += m._size;
    return;
  }
  if (m._size > c._limits.maxMessage) {
    throw domError('SyntaxError', 'over maxMessage');
  }
  if (c.bufferedAmount + m._size > c._options.maxBuffered) {
    throw domError('QuotaExceededError', 'over maxBuffered');
  }
  c._seq = m._seq;
  c._outbox.push(m);
  c.bufferedAmount += m._size;
  if (blob) {
    r = new g.FileReader();
    r.onload = function () {
      binary(new g.Uint8Array(r.result));
      _flush(c);
    };
    r.onerror = function () {
      _fail(c, 1011, 'Blob unreadable');
    };
    r.readAsArrayBuffer(data);
  }
  _flush(c);
};

// close ends the session with the browser's rules: no code, 1000 or
// 3000–4999, and a reason of at most 123 bytes of UTF-8. Messages sent
// before it are delivered first. Closing while connecting fails the
// session like a WebSocket's: error, then close with 1006. The close
// event of a close the page started carries the page's code (1005 for
// none) and reason, as a server echoing the close frame gives a WebSocket.
proto.close = function (code, reason) {
  var c = this;
  if (code !== undefined && (code !== (code | 0) || code != 1000 && (code < 3000 || code > 4999))) {
    throw domError('InvalidAccessError', 'close code ' + code);
  }
  reason = reason === undefined ? '' : String(reason);
  if (utf8Length(reason) > 123) {
    throw domError('SyntaxError', 'reason too long');
  }
  if (c.readyState > 1) return;
  c._userClosed = 1;
  // Without a code no reason is sent either (the standard's close frame).
  if (!code) reason = '';
  c._mine = [0, 0, code = code || 1005, reason];
  if (!c.readyState) return _fail(c, 1006, '', 0, 1000);
  _closeWith(c, code, reason);
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

// dispatchEvent dispatches event e to the on<type> handler, then the
// listeners, and returns nothing. A listener's exception is reported on its own (like the
// DOM's) and does not disturb the session. comet-dom.js replaces it with
// the DOM's exact dispatch (README.md).
proto.dispatchEvent = function (e) {
  var c = this;
  [c['on' + e.type]].concat(c._listeners[e.type] || []).map(function (f) {
    try {
      if (typeof f == 'function') f.call(c, e);
    } catch (err) {
      c._globals.setTimeout(function () {
        throw err;
      }, 0);
    }
  });
};

// _emit dispatches the event type with the fields props, as a plain
// object (comet-dom.js makes it a real Event).
function _emit(c, type, props) {
  c.dispatchEvent(assign({ type: type, target: c }, props));
}

// debug reports to options.debug; the minified build drops every call.
function debug(c, msg, data) {
  if (c._options.debug) c._options.debug(msg, data);
}
