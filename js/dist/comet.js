/*! comet-shim 0.1.0 */
(function (root, factory) {
  if (typeof module == 'object' && module.exports) module.exports = factory(root);
  else root.Comet = factory(root);
}(typeof globalThis != 'undefined' ? globalThis : self, function (ROOT) {
'use strict';

// policy: the timing and classification decisions of the session, as pure
// functions of measured values, so that tests can state them as tables.

// From other files: none.

// EARLY is the lifetime under which an attachment's death counts as early.
var EARLY = 1e4;
// STABLE is the lifetime after which an attachment's drop is resumed at
// once, and the backoff starts over; a shorter one is a failure in a row,
// so that a server that accepts and drops at once meets a growing wait.
var STABLE = 1e3;
// CLOSE_WAIT bounds a closing handshake.
var CLOSE_WAIT = 5e3;
// TICKET_TTL: the server honours a ticket 60 s; trusting it for less
// leaves time for the attach that uses it to arrive.
var TICKET_TTL = 5e4;

// attachTimeout derives the attach timeout from the negotiate round trip
// (PROTOCOL.md section 8): minTimeout + 4×RTT, capped at maxTimeout. The
// floor pays for a cold WebSocket's TCP, TLS and upgrade.
function attachTimeout(rtt, lo, hi) {
  return Math.min(lo + 4 * rtt, hi);
}

// headStart is how long WebSocket runs alone before an HTTP transport
// races it: long enough for a healthy upgrade and probe (a few round
// trips), short enough that a refused, hung or black-holed WebSocket
// costs little.
function headStart(rtt) {
  return Math.max(250, 3 * rtt);
}

// backoff returns the wait before retry n (from 0): doubling from lo,
// capped at hi, half fixed and half drawn from r in [0, 1) ("equal
// jitter"), so that clients cut by one outage do not return together.
function backoff(n, r, lo, hi) {
  var d = Math.min(hi, lo * (1 << Math.min(n, 20)));
  return Math.round(d / 2 + r * d / 2);
}

// nextPause is the pause before resending what a full server inbound did
// not accept (PROTOCOL.md section 6): base at first, doubling to 1 s.
function nextPause(p, base) {
  return Math.min(p ? 2 * p : base, 1e3);
}

// keepalive classifies the unexpected death of an attachment that lived
// life ms and had been silent downstream for idle ms (both Date.now
// deltas) under heartbeat interval iv; k carries the history (_silence:
// the silence before the previous death, _early: early deaths in a row).
// It returns {_why, _heartbeat} for an idle cut — two deaths after the
// same silence, a proxy's idle timeout: ask for heartbeats at half that
// silence instead of leaving the transport — or {_why, _demote} after
// three early deaths in a row that no shorter heartbeat explains.
// Otherwise {}.
function keepalive(k, life, idle, iv, minHb) {
  var r = {}, hb = Math.floor(idle / 2);
  k._early = life < EARLY ? (k._early || 0) + 1 : 0;
  if (idle >= 1e3 && k._silence && Math.abs(idle - k._silence) <= Math.max(1e3, k._silence / 10) && hb >= minHb && hb < iv) {
    r._why = 'idle_cut';
    r._heartbeat = hb;
    k._early = 0;
  } else if (k._early >= 3) {
    r._why = 'early_death';
    r._demote = 1;
    k._early = 0;
  }
  k._silence = idle >= 1e3 ? idle : 0;
  return r;
}

// RECONNECT lists the close codes after which a fresh session may be
// opened (PROTOCOL.md section 10), with the reconnect option.
var RECONNECT = { 1011: 1, 3000: 1, 3001: 1, 3002: 1, 3004: 1, 3006: 1 };

// REFUSED maps the error codes of refused requests (PROTOCOL.md section 2)
// that end the session to their close codes.
var REFUSED = {
  session_not_found: 3000, origin_refused: 3005, unauthorized: 3003, forbidden: 3003,
  malformed: 1002, invalid_payload: 1007, payload_too_large: 1009, bad_secret: 1008, bad_request: 1002
};

// codec: frames and batches of PROTOCOL.md section 4.
//
// A frame is handled as the array it is on the wire: [type, field...].
// Text travels as JavaScript strings: a browser has decoded the UTF-8 of
// every WebSocket message, event and response before the shim sees it, so
// the codec works on UTF-16 and checks what UTF-16 can get wrong (lone
// surrogates). Binary payloads stay base64 strings until delivery, or
// arrive raw, in binary WebSocket messages of their own, where negotiate
// agreed to that.

// From other files: parseJSON (env).

// SCHEMA gives the fields of each frame type a client receives (the
// upstream-only key, probe and commit frames are malformed downstream): n
// an unsigned integer, s a string (for b, a base64 one).
var SCHEMA = { o: 'nnsn', m: 'ns', b: 'ns', a: 'n', h: '', e: 's', s: '', c: 'nnsn', t: 's' };

var MAX_SAFE = 9007199254740991;

var BASE64 = /^([A-Za-z\d+\/]{4})*([A-Za-z\d+\/]{2}==|[A-Za-z\d+\/]{3}=)?$/;

// quote returns s as a JSON string literal escaped as the Go encoder does:
// \n \r \t in short form, the other control characters as \u00XX (so not
// \b and \f), and U+2028/U+2029, which end lines in JavaScript and would
// split an SSE data line.
function quote(s) {
  // Escapes come in pairs (\x) or as \uXXXX; matching each backslash with
  // the character after it keeps an escaped backslash whole.
  return JSON.stringify(s).replace(/\\([\s\S])|[\u2028\u2029]/g, function (m, c) {
    return c ? c == 'b' ? '\\u0008' : c == 'f' ? '\\u000c' : m : '\\u' + m.charCodeAt(0).toString(16);
  });
}

// encodeFrame returns the wire form of frame f, without a newline: its
// strings quoted, its numbers as they are.
function encodeFrame(f) {
  return '[' + f.map(function (v) {
    return typeof v == 'string' ? quote(v) : v;
  }) + ']';
}

// codecError is a decoding failure; code is the close code it stands for:
// 1002 for a malformed frame, 1007 for text that is not valid Unicode.
function codecError(code) {
  var e = new Error(code == 1007 ? 'invalid UTF-8' : 'malformed frame');
  e.code = code;
  return e;
}

// FRAME is the grammar of a frame as strictly as the Go decoder reads it,
// once JSON.parse has checked every string and number and each string is
// blanked to "": unsigned integers, spaces and tabs between tokens,
// nothing else.
var FRAME = /^[ \t]*\[[ \t]*""([ \t]*,[ \t]*(""|\d+))*[ \t]*\][ \t]*$/;

// decodeFrame decodes one frame, as strictly as the Go decoder: the
// grammar, then each type's fields (PROTOCOL.md section 4). It throws a
// codecError.
function decodeFrame(line) {
  var f = parseJSON(line), t = f && f[0], kinds;
  // The grammar leaves strings and unsigned integers only: the fields'
  // kinds, n for a safe integer, x for a larger one, must be the type's.
  // Inherited names (toString, __proto__) are not strings: refused too.
  // The type is looked up only once the grammar has made it a string: a
  // lookup converts its key to a string first, and a deeply nested array
  // converts recursively, past the end of the stack.
  // Only a line JSON.parse accepted is blanked: in one with an unclosed
  // string, the blanking would restart at every escaped quote and scan
  // to the end each time, quadratic in the line's length.
  if (!f || !FRAME.test(line.replace(/"([^"\\]|\\.)*"/g, '""')) || typeof (kinds = SCHEMA[t]) != 'string' || f.map(function (v) {
    return typeof v == 'string' ? 's' : v > MAX_SAFE ? 'x' : 'n';
  }).join('') != 's' + kinds || /[mbc]/.test(t) && !f[1] || t == 'c' && f[2] > 4999 ||
    t == 'b' && !BASE64.test(f[2])) {
    throw codecError(1002);
  }
  // Frames hold one string besides the type, so joining them cannot pair
  // two lone surrogates.
  if (hasLoneSurrogate(f.join(''))) throw codecError(1007);
  return f;
}

// decodeBatch decodes the frames of a batch: lines ended by \n (the last
// one optional), skipping padding lines of spaces only; each with decode
// where given (comet-topics.js's), else decodeFrame.
function decodeBatch(text, decode) {
  return text.split('\n').filter(function (line) {
    return /[^ ]/.test(line);
  }).map(decode || decodeFrame);
}

// utf8Length counts the UTF-8 bytes of s, the unit of maxMessage; a lone
// surrogate, which has no UTF-8 form, makes it Infinity.
function utf8Length(s) {
  try {
    return encodeURIComponent(s).replace(/%../g, '.').length;
  } catch (e) {
    return 1 / 0;
  }
}

// hasLoneSurrogate reports whether s holds a lone surrogate: the server
// would refuse it and close the session with 1007.
function hasLoneSurrogate(s) {
  return utf8Length(s) == 1 / 0;
}

// toBase64 encodes bytes (a Uint8Array) as padded base64, with btoa.
function toBase64(bytes, btoa) {
  for (var s = '', i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192));
  }
  return btoa(s);
}

// RAW is the header line of a raw binary message (PROTOCOL.md section 4),
// in its one form: no whitespace, no leading zero.
var RAW = /^\["r",([1-9]\d*)\]$/;

// encodeRaw returns the raw binary WebSocket message of message seq
// holding bytes (a Uint8Array): the ASCII header, \n, the bytes.
function encodeRaw(seq, bytes, U8) {
  var h = '["r",' + seq + ']\n', out = new U8(h.length + bytes.length), i;
  for (i = 0; i < h.length; i++) out[i] = h.charCodeAt(i);
  out.set(bytes, h.length);
  return out;
}

// decodeRaw decodes a raw binary WebSocket message (an ArrayBuffer) into
// the frame ['b', seq, payload], the payload an ArrayBuffer of its own. A
// header that is not ["r",seq] then \n within 23 bytes throws a
// codecError (1002), as in the Go decoder.
function decodeRaw(buf, U8) {
  var head = new U8(buf.slice(0, 23)), nl = [].indexOf.call(head, 10);
  var m = nl > 0 && RAW.exec(String.fromCharCode.apply(null, head.subarray(0, nl)));
  if (!m || m[1] > MAX_SAFE) throw codecError(1002);
  return ['b', +m[1], buf.slice(nl + 1)];
}

// fromBase64 decodes a base64 string the decoder has checked into a
// Uint8Array, with atob.
function fromBase64(s, atob, U8) {
  s = atob(s);
  for (var out = new U8(s.length), i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

// env: everything the shim takes from its environment. Browser globals are
// injected (options.globals) so that tests can pass fakes; by default they
// are read from the global object when present.

// From other files: none.

// The globals the shim uses: WebSocket, EventSource, XMLHttpRequest,
// setTimeout, clearTimeout, localStorage, navigator, location, URL,
// document, addEventListener, removeEventListener, FileReader, Blob,
// ArrayBuffer, Uint8Array, atob and btoa; options.globals, when set,
// replaces the global object for all of them, and may add now and random
// (Date.now and Math.random by default). Every use of an optional one is
// feature-checked.

// domError returns an exception named like the browser's DOMException.
function domError(name, msg) {
  var e = new Error('Comet: ' + msg);
  e.name = name;
  return e;
}

// resolveURL resolves url against the page (g.location) and returns
// [resolved, mount] where mount is the http(s) URL of the Comet endpoint,
// without its query: requests carry only protocol parameters. ws: and
// wss: map to http: and https:, so code written for WebSocket keeps its
// URLs. The URL constructor resolves, or in browsers older than it an
// anchor element. It throws a SyntaxError like the WebSocket constructor
// for anything else, a URL with a fragment included.
function resolveURL(url, g) {
  var loc = g.location, a = g.document;
  url = String(url);
  try {
    if (g.URL) {
      url = new g.URL(url, loc && loc.href).href;
    } else if (a) {
      a = a.createElement('a');
      a.href = url;
      url = a.href;
    }
  } catch (e) {}
  if (!/^(https?|wss?):\/\/[^\/?#][^#]*$/i.test(url)) throw domError('SyntaxError', 'bad URL ' + url);
  return [url, url.replace(/^ws/i, 'http').replace(/[?].*/, '').replace(/\/+$/, '')];
}

// request sends one XMLHttpRequest: a GET, or with a body a text/plain
// POST (CORS-simple unless headers add to it). done(status, text) runs
// once: status 0 for a network failure, an abort by timeout or a CORS
// refusal. progress, if set, receives the growing responseText of a 200
// response. It returns an object whose close aborts the request without
// calling done.
function request(c, url, done, progress, body, headers, timeout) {
  var g = c._globals, x = new g.XMLHttpRequest(), over, timer, k;
  // stop ends the request's callbacks and timer, and reports whether it
  // was still running.
  function stop() {
    if (over) return;
    over = 1;
    g.clearTimeout(timer);
    x.onreadystatechange = null;
    return 1;
  }
  x.open(body ? 'POST' : 'GET', url, true);
  x.withCredentials = !!c._options.withCredentials;
  if (body) headers = assign({ 'Content-Type': 'text/plain;charset=UTF-8' }, headers);
  for (k in headers) x.setRequestHeader(k, headers[k]); // a plain object the shim made
  x.onreadystatechange = function () {
    var text;
    if (x.readyState < 3 || over) return;
    try {
      text = x.responseText;
    } catch (e) {
      return; // old browsers refuse responseText while loading
    }
    if (progress && x.status == 200) progress(text);
    if (x.readyState == 4 && stop()) done(x.status, text);
  };
  if (timeout) {
    timer = g.setTimeout(function () {
      if (stop()) {
        done(0, '');
        x.abort();
      }
    }, timeout);
  }
  x.send(body);
  return {
    close: function () {
      if (stop()) x.abort();
    }
  };
}

// assign copies the enumerable properties of from onto to, and returns to.
function assign(to, from) {
  for (var k in from) to[k] = from[k];
  return to;
}

// parseJSON returns the value text holds, or undefined.
function parseJSON(text) {
  try {
    return JSON.parse(text);
  } catch (e) {}
}

// refusalOf describes a refused request: its status and the code of the
// JSON error body of PROTOCOL.md section 2, if any.
function refusalOf(status, text) {
  var body = parseJSON(text);
  return { _status: status, _code: body && body.code || '' };
}

// The transport memory (localStorage) maps an endpoint to what worked on
// this network; every access may throw (privacy modes, quotas, sandboxed
// frames), which makes the memory empty, never the session fail.
var MEMORY_TTL = 864e5; // a day: networks change, and WebSocket is re-probed anyway

function recall(g, key, now) {
  try {
    var m = JSON.parse(g.localStorage.getItem(key));
    return m && m.x > now && m;
  } catch (e) {}
}

function remember(g, key, m, now) {
  try {
    m.x = now + MEMORY_TTL;
    g.localStorage.setItem(key, JSON.stringify(m));
  } catch (e) {}
}

// sse: the Server-Sent Events transport (PROTOCOL.md section 5.1). Every
// frame is one event of the default type. On error the EventSource is
// closed: its own reconnect would reuse a spent ticket, so the session
// attaches again itself, with a fresh ticket and its ack.

// From other files: _data (downstream); _gone (resume).
var sse = {
  _name: 'sse',
  _need: 'EventSource',
  _stream: 1,
  _open: function (c, att, url) {
    // The options are the EventSourceInit: EventSource reads only their
    // withCredentials, as a boolean.
    var es = att._handle = new c._globals.EventSource(url, c._options);
    es.onmessage = function (e) {
      _data(c, att, e.data);
    };
    es.onerror = function () {
      _gone(c, att, {});
    };
  }
};

// websocket: the WebSocket transport (PROTOCOL.md section 5). Each text
// WebSocket message is one batch, both ways; a binary one is a raw binary
// message, where negotiate agreed to them. The transport only adapts the
// wire; proving, racing and resuming are the session's.

// From other files: _wsOpen (attach); _data, _raw (downstream);
// _fail (lifecycle); _gone (resume).
var websocket = {
  _name: 'websocket',
  _need: 'WebSocket',
  _open: function (c, att, url) {
    var ws = att._handle = new c._globals.WebSocket(url.replace(/^http/, 'ws'));
    ws.onopen = function () {
      _wsOpen(c, att);
    };
    ws.binaryType = 'arraybuffer';
    ws.onmessage = function (e) {
      if (typeof e.data == 'string') _data(c, att, e.data);
      else if (c._binary) _raw(c, att, e.data);
      else _fail(c, 1002, 'binary message');
    };
    // Browsers hide why a handshake failed; before onopen it is a refusal.
    ws.onerror = ws.onclose = function () {
      _gone(c, att, { _why: att._socketOpen ? '' : 'ws_refused' });
    };
  }
};

// streaming: the XHR streaming transport (PROTOCOL.md section 5.1), for
// browsers without EventSource: one long GET read as its responseText
// grows. The server recycles the response after a byte budget, always at
// a frame boundary; the session then attaches again.

// From other files: xhrTransport (lines).
var streaming = xhrTransport('streaming', 1);

// longpoll: the long-polling transport (PROTOCOL.md section 5). Each poll
// is an attachment of its own, one batch in one response; the session
// starts the next poll when one ends.

// From other files: xhrTransport (lines).
var longpoll = xhrTransport('longpoll');

// fallback: the transports in their fallback order.

// From other files: longpoll (longpoll); sse (sse); streaming (streaming);
// websocket (websocket).

// TRANSPORTS by name, in the fallback order, best first (PROTOCOL.md
// section 8); options.transports orders them for a session:
// WebSocket, then the streams (SSE where EventSource exists, otherwise XHR
// streaming), then long-polling, which works wherever XMLHttpRequest does.
var TRANSPORTS = { websocket: websocket, sse: sse, streaming: streaming, longpoll: longpoll };

// Each transport has a _name, _need (the global it needs: its capability
// check), _stream (set for SSE and XHR streaming, the streams: proven by a
// probe echoed on them, and judged buffered when heartbeats arrive in a
// burst) and _open(session, attachment, url).

// transportNamed returns the transport module called name, or false; an
// inherited name (toString, __proto__) has no _need.
function transportNamed(name) {
  var t = TRANSPORTS[name];
  return t && t._need && t;
}

// downstream: the frames that arrive on an attachment (PROTOCOL.md
// sections 5 to 7): the open frame, the sequence rules, heartbeats, probe
// echoes and the server's close.

// From other files: _opened, _proven (attach); decodeBatch, decodeRaw,
// fromBase64, utf8Length (codec); _emit, debug (comet); _closeWith, _fail,
// _finish (lifecycle); _gone (resume); _ackUp,
// _flush (upstream); websocket (websocket).

// _live reports whether att is still one of the session's attachments;
// callbacks from any other (a superseded or abandoned attempt) are ignored.
function _live(c, att) {
  return c._attachments.indexOf(att) >= 0;
}

// _data applies a batch that arrived on att.
function _data(c, att, text) {
  var frames;
  if (!_live(c, att)) return;
  debug(c, 'down ' + att._transport._name + ' ' + att._attempt, text);
  if ((frames = _decode(c, text))) _apply(c, att, frames);
}

// _raw applies a raw binary message (an ArrayBuffer) that arrived on
// att's WebSocket (PROTOCOL.md section 4).
function _raw(c, att, buf) {
  var f;
  if (!_live(c, att)) return;
  try {
    f = decodeRaw(buf, c._globals.Uint8Array);
  } catch (e) {
    return _fail(c, e.code, e.message);
  }
  _apply(c, att, [f]);
}

// _apply applies the frames that arrived on att, in order.
function _apply(c, att, frames) {
  var i, f, now = c._now();
  for (i = 0; i < frames.length && _live(c, att); i++) {
    f = frames[i];
    if (!att._openedAt) {
      // The first frame of every downstream is its open frame; one naming
      // another attempt is a stale response a proxy released late.
      if (f[0] != 'o' || f[1] != att._attempt) return _gone(c, att, { _why: att._transport == websocket ? 'ws_silent' : '' });
      _opened(c, att, f);
      continue;
    }
    att._heardAt = now;
    switch (f[0]) {
      case 'm':
      case 'b':
      case 'c':
        _message(c, f);
        break;
      case 'a':
        _ackUp(c, f[1]);
        break;
      case 'h':
        c._ackNow = 1;
        // Heartbeats leave the server at least an interval apart; two that
        // arrive together were held back by something on the way.
        if (att._transport._stream && now - att._heartbeatAt < att._interval / 2 && !att._late) {
          return _gone(c, att, { _why: 'stream_buffered' });
        }
        att._heartbeatAt = now;
        break;
      case 'e':
        if (f[1] == att._probeToken) _proven(c, att);
        break;
      case 's':
        return _gone(c, att, { _superseded: 1 });
      default:
        return _fail(c, 1002, 'unexpected frame');
    }
  }
  _flush(c);
}

// _decode returns the frames of a batch, or fails the session for a
// malformed one and returns nothing. A session whose server agreed to
// topic positions decodes with comet-topics.js's decoder (its $decode).
function _decode(c, text) {
  try {
    return decodeBatch(text, c._limits.positions && c.$decode);
  } catch (e) {
    _fail(c, e.code, e.message);
  }
}

// _message applies a sequenced frame: a message or the server's close.
function _message(c, f) {
  var seq = f[1], size;
  if (seq <= c._received) {
    c._ackNow = 1; // a resend: the server may have missed our ack
    return;
  }
  if (seq > c._received + 1) return _fail(c, 1002, 'sequence gap');
  if (c._serverClose) return _fail(c, 1002, 'after close');
  c._received = seq;
  if (f[0] == 'c') return _remoteClose(c, f);
  size = f[0] == 'm' ? utf8Length(f[2]) : f[2].byteLength == null ? f[2].length / 4 * 3 : f[2].byteLength;
  if (size > c._limits.maxMessage + 2) return _fail(c, 1009, 'message too big');
  if (!c._owed++) c._owedSince = c._now();
  c._owedBytes += size;
  // After close() the application reads nothing more, as with WebSocket;
  // messages are still acknowledged. A frame of comet-topics.js's decoder
  // dispatches its own event (its $on).
  if (c.readyState == 1) (f.$on || _emit)(c, 'message', { data: f[0] == 'm' ? f[2] : _binary(c, f[2]) });
}

// _binary converts a payload, base64 or a raw message's ArrayBuffer, to
// what binaryType asks for.
function _binary(c, data) {
  var g = c._globals, bytes = typeof data == 'string' ? fromBase64(data, g.atob, g.Uint8Array) : new g.Uint8Array(data);
  return c.binaryType == 'blob' && g.Blob ? new g.Blob([bytes]) : bytes.buffer;
}

// _remoteClose accepts the server's close: one we did not start is
// answered with the same code; ours is the answer we were waiting for.
function _remoteClose(c, f) {
  c._serverClose = f;
  c._ackNow = 1;
  if (!c._closeSeq) _closeWith(c, f[2], '', 1);
  _finish(c);
}

// lines: the reader of an XHR stream's growing responseText (PROTOCOL.md
// section 5.1). A response grows by arbitrary chunks; only whole lines are
// decoded, and a partial line waits for its newline.

// From other files: _data (downstream); refusalOf, request (env);
// _gone (resume).

// lineReader returns a function that takes the whole text so far and
// returns the complete lines it adds, newline-terminated ('' if none yet);
// called with no argument, it reports whether the text ended in the middle
// of a line that is not padding: a cut connection, so a dead path, not a
// malformed frame. decodeBatch skips the padding lines.
function lineReader() {
  var seen = 0, part = '';
  return function (text) {
    if (text == null) return /[^ ]/.test(part);
    var s = part + text.slice(seen), i = s.lastIndexOf('\n');
    seen = text.length;
    part = s.slice(i + 1);
    return s.slice(0, i + 1);
  };
}

// xhrTransport returns the XHR transport called name: one GET per
// attachment, read as a stream as its responseText grows, or else as one
// batch when it ends (long-polling). A stream that ends at a frame
// boundary was recycled by the server; one cut mid-line is a dead path.
function xhrTransport(name, stream) {
  return {
    _name: name,
    _need: 'XMLHttpRequest',
    _stream: stream,
    _open: function (c, att, url) {
      var lines = lineReader();
      att._handle = request(c, url, function (status, text) {
        if (status != 200) return _gone(c, att, refusalOf(status, text));
        if (!stream) _data(c, att, text);
        _gone(c, att, { _ok: !lines() });
      }, stream && function (text) {
        var batch = lines(text);
        if (batch) _data(c, att, batch);
      });
    }
  };
}

// lifecycle: the end of a session (PROTOCOL.md section 10) — the closing
// handshake, protocol violations, the page going away — and the reconnect
// option, which opens a fresh session after an end that allows it.

// From other files: _each, _kill (attach); encodeFrame (codec); _emit,
// debug (comet); _connect, _url (negotiate); CLOSE_WAIT, EARLY, RECONNECT,
// backoff (policy); _batch, _flush (upstream).

// _closeWith queues our close frame in sequence, after every message sent
// before it, and bounds the handshake by CLOSE_WAIT.
// A close without a code (1005) travels as 1000 to a server that did not
// agree to 1005 at negotiate (PROTOCOL.md section 10).
function _closeWith(c, code, reason, remote) {
  c.readyState = 2;
  c._closeSeq = ++c._seq;
  c._outbox.push({ _seq: c._closeSeq, _size: 0, _isClose: 1, _frame: encodeFrame(['c', c._closeSeq, code != 1005 || c._limits.noStatus ? code : 1000, reason, 0]) });
  debug(c, 'closing', { code: code, remote: !!remote });
  _timer(c, 'close', CLOSE_WAIT, function () {
    _closed(c, 0);
  });
  _flush(c);
}

// _finish ends the session once its closing handshake is done: our close
// has reached the server, and the server's close has arrived and been
// acknowledged.
function _finish(c) {
  if (c._sessionId && c._closeDelivery == 1 && c._serverClose && c._ackSent >= c._received) _closed(c, 1);
}

// _closed ends a closing session: with the server's close, if it came,
// the code and reason being the page's own when the page closed first
// (what a server echoing the close frame returns); else with 1006.
function _closed(c, clean) {
  var r = c._serverClose, e = c._mine || r;
  if (r) _end(c, e[2], e[3], clean, 0, r[4]);
  else _end(c, 1006, 'close timeout');
}

// _fail ends the session for the server's violation of the protocol at
// once: an answer from a broken peer is not worth waiting for. The server
// is told by a beacon, after what it has not acknowledged. The page going
// away and close() while connecting end the same way: clean says whether
// the end is clean, told the code the beacon tells (default: code).
function _fail(c, code, reason, clean, told) {
  debug(c, 'abort', reason);
  if (c._sessionId) _beacon(c, told || code);
  _end(c, code, reason, clean);
}

// _end ends the session: everything stops, then error (for an unclean
// end) and close, unless the reconnect option opens a fresh session.
function _end(c, code, reason, clean, status, retry) {
  var o = c._options, ev = { code: code, reason: reason || '', wasClean: !!clean }, k, delay, now = c._now();
  if (c.readyState == 3) return;
  debug(c, 'end', ev);
  if (status) ev.status = status;
  if (retry) ev.retry = retry;
  _each(c, _kill);
  if (c._post) c._post.close();
  c._post = null;
  c._sessionId = '';
  c._ticketWaiters = [];
  for (k in c._timers) _clear(c, k);
  if (o.reconnect && RECONNECT[code] && !c._userClosed) {
    // The old session is gone, and with it whatever it did not
    // acknowledge: the gap event says how many messages that was.
    if (c._openedAt && now - c._openedAt > EARLY) c._reconnects = 0;
    delay = Math.max(retry || 0, backoff(c._reconnects++, c._rand(), o.reconnectDelay, o.reconnectMaxDelay));
    if (c._openedAt) {
      c.readyState = 1;
      c._gap = { code: code, reason: ev.reason, dropped: c._outbox.filter(function (m) {
        return !m._isClose;
      }).length };
    }
    c._outbox = [];
    c._seq = c._acked = c._sent = c.bufferedAmount = c._openedAt = 0;
    _emit(c, 'reconnecting', { reason: 'session_ended', code: code, fresh: true, delay: delay });
    return _timer(c, 'fresh', delay, _connect);
  }
  c.readyState = 3;
  while (c._unlisten.length) c._unlisten.pop()();
  if (!clean) _emit(c, 'error', ev);
  _emit(c, 'close', ev);
}

// _bye runs on pagehide: the page is going away, so the server is told at
// once (a beacon survives the unload) instead of holding the session for
// its grace period.
function _bye(c) {
  if (c.readyState > 2) return;
  c._userClosed = 1;
  _fail(c, 1001, 'page hidden', 1);
}

// _beacon sends what the server has not acknowledged, then a close, in
// one POST that outlives the page, where navigator.sendBeacon exists.
function _beacon(c, code) {
  var nav = c._globals.navigator, url = _url(c, c._base, 'send', { s: c._sessionId }), body;
  c._sent = c._acked;
  body = encodeFrame(['k', c._secret, c._received, 0]) + '\n' + _batch(c);
  if (!c._closeSeq || c._sent < c._closeSeq) body += encodeFrame(['c', c._sent + 1, code, '', 0]);
  if (nav && nav.sendBeacon) nav.sendBeacon(url, body);
}

// _online resumes at once when the browser says the network is back,
// instead of waiting out a backoff.
function _online(c) {
  var t = c._timers.resume;
  if (t) {
    _clear(c, 'resume');
    t._fn(c);
  }
}

// _listen calls fn(c) on each event type on the window, until the session
// ends.
function _listen(c, type, fn) {
  var g = c._globals;
  function on() {
    fn(c);
  }
  if (g.addEventListener) {
    g.addEventListener(type, on);
    c._unlisten.push(function () {
      g.removeEventListener(type, on);
    });
  }
}

// _timer arms the session's timer called name, replacing any armed one.
function _timer(c, name, ms, fn) {
  _clear(c, name);
  c._timers[name] = {
    _fn: fn, _id: c._globals.setTimeout(function () {
      delete c._timers[name];
      fn(c);
    }, ms)
  };
}

function _clear(c, name) {
  var t = c._timers[name];
  if (t) {
    c._globals.clearTimeout(t._id);
    delete c._timers[name];
  }
}

// negotiate: creating the session (PROTOCOL.md section 3) and the attach
// tickets it hands out (section 5).

// From other files: _start (attach); decodeFrame (codec); debug (comet); assign, parseJSON,
// request (env); _end (lifecycle); TICKET_TTL, attachTimeout (policy);
// _flush (upstream).

// _connect starts a session: fresh session state, then negotiate. The
// outbox is kept: messages sent while a fresh session is being opened
// (the reconnect option) go to the new session.
function _connect(c) {
  c._sessionId = c._inUse = '';
  c._tickets = []; // unused tickets, oldest first: {_token, _gotAt}
  c._ticketWaiters = []; // callbacks waiting for a ticket
  // The attempt counters: _polls for the early chain's polls (see _start),
  // _attempts for every other attach.
  c._attempts = c._polls = 0;
  c._attachments = []; // live attachments; callbacks of any other are ignored
  c._current = c._wsUpstream = c._post = c._serverClose = null;
  c._controls = []; // control frames for the next POST
  // _received: the sequence number of the last message received (what we
  // ack); _ackSent: the last ack sent; _owed, _owedBytes: messages and
  // bytes received since that ack; _ackNow: an ack is due at once;
  // _closeSeq: the sequence number of our close frame; _closeDelivery: 2
  // while a batch carries our close, 1 once it has reached the server;
  // _httpStarted: an HTTP candidate has started; _openedAt: when the
  // session first opened (Date.now).
  c._received = c._ackSent = c._owed = c._owedBytes = c._ackNow = c._closeSeq = c._closeDelivery = c._userClosed = c._httpStarted = c._openedAt = 0;
  _negotiate(c, c._base, '', 0);
}

// _url returns the URL of endpoint path under the mount URL with params
// and a cache buster.
function _url(c, base, path, params) {
  var u = base + '/' + path + '?v=1', k;
  for (k in params) {
    if (params[k] !== '') u += '&' + k + '=' + encodeURIComponent(params[k]);
  }
  return u + '&z=' + _nonce(c);
}

// _nonce returns a fresh token: a cache buster, a probe's.
function _nonce(c) {
  return (c._now() + c._rand()).toString(36);
}

// LIMITS are the session parameters of the negotiate response (PROTOCOL.md
// section 3) with their defaults, filled into the response kept as c._limits.
var LIMITS = {
  heartbeat: 25e3, minHeartbeat: 1e3, hold: 25e3, grace: 3e4, ackDelay: 200, minTimeout: 300, maxTimeout: 1e4,
  maxMessage: 65536, maxBatch: 1048576, windowMessages: 1024, windowBytes: 1048576
};

// _negotiate creates the session at base, following at most 3 redirects.
// It times the request: the round trip sets every timeout after it. The
// request is CORS-simple (a text/plain body) unless the application adds
// headers: a refused preflight would hide the server's answer (an Origin
// refusal) from the page (PROTOCOL.md section 11). The body asks for raw
// binary messages, a close without a code (noStatus), and carries the
// subprotocols and the relay's target (options.target) when given:
// JSON.stringify leaves out what is undefined. With the topics option it
// also carries what comet-topics.js's $topics returns (positions: true,
// and the positions to present); without comet-topics.js that throws.
function _negotiate(c, base, token, hops) {
  var t0 = c._now(), h = assign({}, c._options.headers), g = c._globals;
  // Raw binary WebSocket messages (PROTOCOL.md section 4), unless the
  // application opts out or the browser lacks typed arrays.
  var ask = c._options.binaryFrames !== false && !!g.Uint8Array && !!g.ArrayBuffer;
  if (token) h['Comet-Redirect-Token'] = token;
  debug(c, 'negotiate', base);
  // The negotiate is the session's one request in flight, as c._post: no
  // POST /send goes before a session exists.
  c._post = request(c, _url(c, base, 'negotiate', {}), function (status, text) {
      var r = parseJSON(text), k;
      c._post = null;
      if (status != 200 || !(r instanceof Object)) return _refused(c, status, r);
      if (r.url) {
        if (hops >= 3) return _end(c, 3004, 'redirects');
        return _negotiate(c, String(r.url).replace(/\/+$/, ''), r.token, hops + 1);
      }
      if (r.v != 1 || !r.sid || !r.secret || !(r.transports instanceof Array)) return _end(c, 1002, 'bad negotiate');
      c._base = base;
      c._sessionId = r.sid;
      c._secret = r.secret;
      c._rtt = c._now() - t0;
      // Not a negated comparison: the minifier may turn !(x > 0) into
      // x <= 0, false for undefined.
      for (k in LIMITS) r[k] = r[k] > 0 ? r[k] : LIMITS[k];
      c._limits = r;
      c._binary = ask && r.binary === true;
      // A subprotocol asked for must be chosen (PROTOCOL.md section 3):
      // otherwise the session fails as a WebSocket's handshake would.
      c.protocol = r.protocol || '';
      if (c._protocols[0] && !r.protocol) return _end(c, 1006);
      c._attachTimeout = c._options.attachTimeout || attachTimeout(c._rtt, c._limits.minTimeout, c._limits.maxTimeout);
      (r.tickets || []).map(function (t) {
        _addTicket(c, t);
      });
      c._offer = c._order.filter(function (t) {
        return r.transports.indexOf(t) >= 0;
      });
      debug(c, 'negotiated', { rtt: c._rtt, timeout: c._attachTimeout, transports: c._offer });
      if (!c._offer.length) return _end(c, 3004, 'unreachable');
      _start(c);
    }, 0, JSON.stringify(assign({
      transports: c._order, binary: ask || undefined, target: c._options.target,
      protocols: c._protocols.length ? c._protocols : undefined, noStatus: true
    }, c._options.topics && c.$topics(c._options, decodeFrame))), h, c._options.timeout);
}

// _refused ends a session whose negotiate failed: 401 and 403 with 3003
// (unauthorized), an Origin refusal with 3005, no subprotocol in common
// with 1006 (a WebSocket's failed handshake), 429 and 503 with 3006
// (overloaded), anything else, a network failure included, with 3004
// (unreachable). The HTTP status rides on the error and close events.
function _refused(c, status, body) {
  var code = body && body.code, close = code == 'origin_refused' ? 3005 : code == 'no_protocol' ? 1006 :
    { 401: 3003, 403: 3003, 429: 3006, 503: 3006 }[status];
  _end(c, close || 3004, 'negotiate ' + status, 0, status);
}

// _addTicket keeps a ticket, dropping the oldest beyond 8 as the server
// does, and hands fresh ones to the attaches waiting for one, oldest
// first: a ticket from an open frame (the early probe's, say) serves a
// candidate that waits, before a later attach takes it.
function _addTicket(c, t) {
  if (t) c._tickets.push({ _token: t, _gotAt: c._now() });
  if (c._tickets.length > 8) c._tickets.shift();
  while (c._ticketWaiters.length && _fresh(c)) c._ticketWaiters.shift()(c._tickets.pop()._token);
}

// _fresh returns how many fresh tickets are left, dropping stale ones.
function _fresh(c) {
  var now = c._now();
  while (c._tickets.length && now - c._tickets[0]._gotAt >= TICKET_TTL) c._tickets.shift();
  return c._tickets.length;
}

// _ticket passes an unused ticket to done: the newest from the pool, or
// one from a key-only POST with wantTicket; null if that POST failed.
function _ticket(c, done) {
  if (_fresh(c)) return done(c._tickets.pop()._token);
  c._ticketWaiters.push(done);
  _flush(c);
}

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

// upstream: the outbox and the paths to the server (PROTOCOL.md section 6).
// Every message sent stays in the outbox until the server acknowledges it,
// and is sent again on the next path after a drop; the server drops what
// it already has by sequence number. The path is the delivering WebSocket
// when there is one, otherwise POST P/send, one POST at a time.

// From other files: _probed (attach); encodeFrame, encodeRaw, toBase64 (codec); _emit,
// debug (comet); _decode (downstream); refusalOf, request (env); _clear, _end,
// _fail, _finish, _timer (lifecycle); _addTicket, _fresh, _url (negotiate);
// REFUSED, backoff, nextPause (policy).

// _batch returns the messages after the path's cursor, up to maxBatch
// bytes, and moves the cursor: their frames, each with its newline, in
// one string; or with raw set (a WebSocket that agreed to raw binary
// messages), the WebSocket messages that carry them: strings of frames,
// and a Uint8Array per binary message. It stops at a Blob still being
// read, so that order is kept.
function _batch(c, raw) {
  var out = c._outbox, g = c._globals, parts = [], b = '', n = 0, i, m, f;
  if (c._sent < c._acked) c._sent = c._acked;
  for (i = c._sent - c._acked; i < out.length; i++) {
    m = out[i];
    if (!m._frame && !m._bytes) break;
    f = raw && m._bytes ? encodeRaw(m._seq, m._bytes, g.Uint8Array) :
      m._frame || (m._frame = encodeFrame(['b', m._seq, toBase64(m._bytes, g.btoa)]));
    if (n && n + f.length > c._limits.maxBatch - 64) break;
    n += f.length;
    if (typeof f == 'string') {
      b += f + '\n';
    } else {
      if (b) parts.push(b);
      parts.push(f);
      b = '';
    }
    c._sent = m._seq;
    if (m._seq == c._closeSeq) c._closeDelivery = 2; // our close is on its way
  }
  if (!raw) return b;
  if (b) parts.push(b);
  return parts;
}

// _ackDue reports whether an ack is due now by the cadence of PROTOCOL.md
// section 6, and otherwise arms the timer for when it will be.
function _ackDue(c) {
  var wait;
  if (c._received <= c._ackSent) return c._ackNow;
  if (c._ackNow || c._owed >= c._limits.windowMessages / 2 || c._owedBytes >= c._limits.windowBytes / 2) return 1;
  wait = c._owedSince + c._limits.ackDelay - c._now();
  if (wait <= 0) return 1;
  if (!c._timers.ack) _timer(c, 'ack', wait, _flush);
  return 0;
}

// _sentAck records that ack n was sent to the server. An ack due at once
// (after a heartbeat, a resend, the server's close) stays due until one
// covering everything received has gone: a POST answered after the
// server's close arrived carried an older ack.
function _sentAck(c, n) {
  if (n >= c._ackSent) {
    c._ackSent = n;
    _clear(c, 'ack');
  }
  if (c._ackSent >= c._received) c._owed = c._owedBytes = c._ackNow = 0;
}

// _flush sends what is due upstream: messages, acks, control frames, and
// a ticket request when an attach waits for one.
function _flush(c) {
  var b, ack, last;
  if (!c._sessionId || c.readyState > 2) return;
  if (c._wsUpstream) {
    b = c._binary ? _batch(c, 1) : [_batch(c)].filter(String);
    last = b.length - 1;
    // An ack rides on a batch of frames written anyway; raw binary
    // messages alone send it only when the cadence makes it due.
    if (_ackDue(c) || typeof b[last] == 'string' && c._received > c._ackSent) {
      ack = encodeFrame(['a', c._received]) + '\n';
      if (typeof b[last] == 'string') b[last] += ack;
      else b.push(ack);
      _sentAck(c, c._received);
    }
    if (b.length) {
      debug(c, 'up ws', b);
      b.map(function (m) {
        c._wsUpstream._handle.send(m);
      });
      if (c._closeDelivery) c._closeDelivery = 1;
      _finish(c);
    }
    if (!c._ticketWaiters.length) return;
  }
  if (c._post) return;
  // On long-polling, acks ride on the polls; a POST for one alone is due
  // only once the server's close has arrived, since no poll will follow.
  ack = _ackDue(c) && (c._inUse != 'longpoll' || c._serverClose);
  b = c._wsUpstream ? '' : _batch(c);
  if (b || ack || c._controls.length || c._ticketWaiters.length) _postNow(c, b);
}

// _postNow POSTs one batch: the key frame (secret, our ack, whether we
// want a ticket), then control frames (commits, probes), then messages:
// controls apply even when the server's inbound refuses a message.
function _postNow(c, msgs) {
  var ack = c._received, last = c._sent, ctl = c._controls, want = c._ticketWaiters.length || _fresh(c) < 2 ? 1 : 0;
  var body = [encodeFrame(['k', c._secret, ack, want])].concat(ctl, msgs).join('\n');
  c._controls = [];
  _clear(c, 'pause');
  debug(c, 'up post', body);
  c._post = request(c, _url(c, c._base, 'send', { s: c._sessionId }), function (status, text) {
    var frames, fail, r, wait;
    c._post = null;
    if (c.readyState > 2) return;
    if (status == 200) {
      if (!(frames = _decode(c, text))) return;
      _sentAck(c, ack);
      frames.map(function (f) {
        if (f[0] == 'a') _ackUp(c, f[1]);
        else if (f[0] == 't') _addTicket(c, f[1]);
      });
      c._postFailures = 0;
      if (c._closeDelivery == 2 && c._acked >= c._closeSeq) c._closeDelivery = 1;
      _probed(c, ctl);
      // The server accepts while its inbound has room: resend the rest
      // after a pause (PROTOCOL.md section 6).
      wait = c._pause = c._acked < last ? nextPause(c._pause, c._limits.ackDelay) : 0;
    } else {
      r = refusalOf(status, text);
      fail = REFUSED[r._code] || (status == 413 ? 1009 : 0);
      if (fail) return _end(c, fail, 'POST ' + (r._code || status), 0, status);
      // A failed POST may or may not have arrived: send it all again, after
      // a backoff; the server drops what it has.
      c._controls = ctl.concat(c._controls);
      while (c._ticketWaiters.length && !c._wsUpstream) c._ticketWaiters.shift()(null);
      wait = backoff(c._postFailures++, c._rand(), 250, 5e3);
    }
    if (wait) {
      c._sent = c._acked;
      _timer(c, 'pause', wait, _flush);
    } else {
      _flush(c);
    }
    _finish(c);
  }, 0, body, 0, c._limits.heartbeat + c._limits.hold + c._attachTimeout);
}

// _ackUp applies the server's cumulative ack n of upstream messages: they
// leave the outbox, and bufferedAmount with them; drain fires when
// everything sent has been acknowledged.
function _ackUp(c, n) {
  var before = c.bufferedAmount;
  if (n > c._seq) return _fail(c, 1002, 'bad ack');
  while (c._outbox.length && c._outbox[0]._seq <= n) c.bufferedAmount -= c._outbox.shift()._size;
  if (n > c._acked) c._acked = n;
  if (before && !c.bufferedAmount && c.readyState == 1) _emit(c, 'drain');
}

// attach: choosing, proving and keeping a transport (PROTOCOL.md sections
// 5, 7 and 8). Every attach is an attachment object with its own attempt
// number; callbacks of one that is no longer live are ignored. Candidates
// attach as probes (d=0) and are committed once proven; resumes deliver at
// once (d=1). While the first race goes on, an early chain of polls may
// deliver (see _start).

// From other files: encodeFrame (codec); _emit, debug (comet);
// _live (downstream); recall, remember (env); transportNamed (fallback);
// _clear, _end, _timer (lifecycle); longpoll (longpoll); _addTicket, _nonce,
// _ticket, _url (negotiate); headStart (policy); _failed, _gone (resume);
// _ackUp, _flush, _sentAck (upstream);
// websocket (websocket).

// _start begins after negotiate. WebSocket gets a head start; if it is
// not proven by then, an HTTP transport races it, and the first proven
// wins. A transport remembered for this network starts at once, while
// WebSocket is probed in the background to upgrade to.
//
// Unless a transport is remembered for this network, a long-poll probe
// starts beside the first candidate, WebSocket or a stream (PROTOCOL.md
// section 8, early delivery): once it has been answered three times in a
// row (see _proven), the session opens on a chain of polls that delivers
// while the race goes on, and the candidate that wins takes over as an
// upgrade. The chain's polls are numbered below every candidate (from 1,
// the candidates from 1e9 + 1), so that committing a candidate fences a
// poll still on its way.
function _start(c) {
  var o = c._offer, mem = c._options.remember && recall(c._globals, c._memoryKey, c._now()), ws = o[0] == 'websocket';
  c._raceFailed = {};
  c._noWebSocket = mem && mem.nw;
  if (mem && mem.hb && !c._options.heartbeat) c._heartbeat = mem.hb;
  if (mem && mem.t != 'websocket' && o.indexOf(mem.t) >= 0) {
    _http(c, mem.t, '');
    if (ws && !c._noWebSocket) _attach(c, 'websocket', 0, 'upgraded');
  } else {
    c._attempts = 1e9;
    if (ws) {
      _attach(c, 'websocket', 0, '');
      _timer(c, 'race', headStart(c._rtt), function () {
        _http(c, null, (c._attachments[0] || {})._socketOpen ? 'ws_silent' : 'ws_hung');
      });
    } else {
      _http(c, null, '');
    }
    if (!mem && o.indexOf('longpoll') > 0) _attach(c, 'longpoll', 0, '', 1);
  }
}

// _http starts the HTTP candidate name, or the next one not yet failed.
function _http(c, name, why) {
  _clear(c, 'race');
  name = name || c._offer.filter(function (t) {
    return t != 'websocket' && !c._raceFailed[t];
  })[0];
  c._httpStarted = 1;
  if (name) _attach(c, name, 0, why);
  else if (!c._attachments.length) _end(c, 3004, 'unreachable');
}

// _attach attaches with transport name: d=1 delivers at once, d=0 probes.
// why tells the server why the client left its previous transport.
// The attachment object holds: _attempt, its attempt number; _transport,
// the transport module; _delivering, the d parameter; _why; _ack, the ack
// the attach carried; _handle, the transport's WebSocket, EventSource or
// request; _socketOpen, a WebSocket's handshake succeeded; _probeToken,
// the token of the probe awaiting its echo (0 once proven); _probePosted,
// that probe's frame when it went by POST; _probeArrived, that POST was
// answered; _openedAt, _heardAt, _heartbeatAt, when (Date.now) its open
// frame, its last frame and its last heartbeat arrived; _interval, the
// heartbeat interval of its open frame; _late, a timer on it fired late;
// _ahead, for the early long-poll probe, which of its three rounds it is.
function _attach(c, name, d, why, ahead) {
  var tr = transportNamed(name), gen = c._generation;
  _ticket(c, function (t) {
    var att;
    if (gen != c._generation || c.readyState > 2) return;
    if (!t) return _failed(c, { _transport: tr, _delivering: d, _why: why }, {});
    att = {
      _attempt: d && c._chain ? ++c._polls : ++c._attempts, _transport: tr, _delivering: d,
      _why: why, _ack: c._received, _ahead: ahead
    };
    c._attachments.push(att);
    debug(c, 'attach ' + name + ' ' + att._attempt, { d: d, why: why });
    // A delivering poll answers within its hold; everything else must
    // show its open frame within the attach timeout.
    _at(c, att, (tr == longpoll && d ? c._limits.hold : 0) + c._attachTimeout, function () {
      _gone(c, att, { _why: tr == websocket ? (att._socketOpen ? 'ws_silent' : 'ws_hung') : tr._stream ? 'stream_buffered' : '' });
    });
    tr._open(c, att, _url(c, c._base, name, { s: c._sessionId, t: t, a: att._attempt, ack: att._ack, d: d, hb: c._heartbeat || '', why: why }));
  });
}

// _wsOpen runs when a WebSocket's handshake succeeded (101): a candidate
// sends its probe at once; the echo will prove the path both ways.
function _wsOpen(c, att) {
  if (!_live(c, att)) return;
  att._socketOpen = 1;
  if (!att._delivering) att._handle.send(_probeFrame(c, att));
}

// _probeFrame draws a fresh probe token for att and returns its probe frame.
function _probeFrame(c, att) {
  return encodeFrame(['p', att._attempt, att._probeToken = _nonce(c)]);
}

// _opened applies an attachment's open frame: the server's ack of our
// messages, a fresh ticket, and our ack, which the attach carried.
function _opened(c, att, f) {
  var tr = att._transport;
  att._openedAt = att._heardAt = c._now();
  att._interval = f[4] || (tr == longpoll ? c._limits.hold : c._limits.heartbeat);
  _addTicket(c, f[3]);
  _sentAck(c, att._ack);
  _ackUp(c, f[2]);
  if (tr._stream) {
    // A stream is proven by a probe echoed on it, which a buffering proxy
    // holds back (PROTOCOL.md section 8); the deadline starts once the
    // POST carrying the probe has arrived.
    _clear(c, att._attempt);
    _probe(c, att);
  }
  if (att._delivering) _use(c, att);
}

// _probe asks the server to echo a token on stream att, by POST.
function _probe(c, att) {
  c._controls.push(att._probePosted = _probeFrame(c, att));
  _flush(c);
}

// _probed arms the echo deadline of every probe in a POST that arrived.
function _probed(c, ctl) {
  _each(c, function (c, att) {
    if (att._probeToken && ctl.indexOf(att._probePosted) >= 0) {
      att._probeArrived = 1;
      _at(c, att, c._attachTimeout, function () {
        _gone(c, att, { _why: 'stream_buffered' });
      });
    }
  });
}

// _each calls fn(c, att) for every live attachment.
function _each(c, fn) {
  c._attachments.slice().map(function (att) {
    fn(c, att);
  });
}

// _proven takes an echo (or a probe poll's answer) as proof that att's
// path works: a candidate is committed, a delivering stream watched.
function _proven(c, att) {
  var u = encodeFrame(['u', att._attempt]);
  att._probeToken = 0;
  if (att._delivering) return _watch(c, att);
  // The early probe is sent three times in a row, round trip after round
  // trip, so that a healthy WebSocket or stream, which needs two or three,
  // opens the session itself; the third answered starts the chain of
  // polls. Any other proven candidate ends the chain.
  if (att._ahead % 3) return _attach(c, 'longpoll', 0, '', att._ahead + 1);
  c._chain = att._ahead;
  if (att._transport == websocket) att._handle.send(u + '\n');
  else if (att._transport != longpoll) c._controls.push(u);
  _commit(c, att);
  if (att._transport == longpoll) _poll(c);
}

// _commit makes att the delivering attachment and closes every other one
// but a background upgrade probe; for a hung WebSocket that matters, since
// browsers allow one connecting WebSocket per host. The early probe
// closes nothing: the candidates race on, and the first proven ends the
// chain. What is committed is remembered, even where the chain ran on the
// same transport (the race ended on long-polling).
function _commit(c, att) {
  if (!c._chain) {
    c._generation++;
    _each(c, function (c, other) {
      if (other != att && other._why != 'upgraded') _kill(c, other);
    });
    _clear(c, 'race');
  }
  att._delivering = 1;
  _use(c, att);
  _mem(c);
}

// _use makes att the attachment in use and reports a change of transport.
// The open and transport events carry the negotiate round trip and the
// heartbeat interval in force (long-polling: the hold), for inspectors.
function _use(c, att) {
  var from = c._inUse, name = att._transport._name, up = att._transport == websocket ? att : null, gap = c._gap,
    ev = { transport: name, from: from, reason: att._why || '', rtt: c._rtt, heartbeat: att._interval };
  c._current = att;
  c._lostAt = 0;
  if (up || c._wsUpstream) c._sent = c._acked;
  c._wsUpstream = up;
  c._inUse = c.transport = name;
  if (!att._probeToken) _watch(c, att);
  if (from != name) {
    _mem(c);
    _emit(c, 'transport', ev);
  }
  if (!c._openedAt) c._openedAt = c._now();
  if (c.readyState == 0) {
    c.readyState = 1;
    _emit(c, 'open', ev);
  } else if (gap) {
    c._gap = null;
    _emit(c, 'gap', gap);
  }
  _flush(c);
}

// _mem remembers what works on this network for the next page load; not
// the early chain of polls, which says nothing about the race.
function _mem(c) {
  if (c._options.remember && !c._chain) remember(c._globals, c._memoryKey, { t: c._inUse, hb: c._heartbeat, nw: c._noWebSocket }, c._now());
}

// _poll starts the next delivering poll, carrying our ack.
function _poll(c) {
  if (!c._serverClose) _attach(c, 'longpoll', 1, '');
}

// _at arms att's one timer, the session timer named by its attempt
// number. A timer that fires late (a background tab, a
// frozen page) proves nothing about the network: the attachment gets one
// more period instead of a verdict, and is marked so that no verdict on
// it demotes a transport or changes the heartbeat.
function _at(c, att, ms, fn) {
  var due = c._now() + ms;
  _timer(c, att._attempt, ms, function () {
    if (c._now() - due > Math.max(1e3, ms / 2) && !att._late) {
      att._late = 1;
      return _at(c, att, ms, fn);
    }
    fn();
  });
}

// _watch checks a delivering stream by the silence of its downstream,
// measured with Date.now: after a quiet interval it sends a probe; an
// interval plus the attach timeout without a byte means the stream is
// dead (PROTOCOL.md section 7), or, if the probe's POST went through,
// held back by a proxy.
function _watch(c, att) {
  function check() {
    var quiet = c._now() - att._heardAt, ws = att._transport == websocket;
    if (quiet < att._interval) return _at(c, att, att._interval - quiet, check);
    if (!att._probeToken) {
      if (ws) att._handle.send(_probeFrame(c, att) + '\n');
      else _probe(c, att);
      return _at(c, att, c._attachTimeout, check);
    }
    if (quiet < att._interval + c._attachTimeout) return _at(c, att, att._interval + c._attachTimeout - quiet, check);
    _gone(c, att, { _why: ws ? 'ws_silent' : att._probeArrived ? 'stream_buffered' : '', _silent: 1 });
  }
  if (att._transport != longpoll && _live(c, att)) _at(c, att, att._interval, check);
}

// _kill closes att and forgets it. Every transport's handle (WebSocket,
// EventSource, request) has a close and only on* callbacks.
function _kill(c, att) {
  var x = att._handle;
  c._attachments.splice(c._attachments.indexOf(att), 1); // only live ones are killed
  _clear(c, att._attempt);
  if (x) {
    x.onopen = x.onmessage = x.onerror = x.onclose = null;
    try {
      x.close();
    } catch (e) {}
  }
}

// resume: what happens when an attachment ends (PROTOCOL.md sections 8
// and 9). The next poll, a recycled stream, a failed candidate, a failed
// resume and a dropped transport each have their rule; a drop is resumed
// on the same session, with nothing lost or duplicated either way.

// From other files: _attach, _http, _kill, _mem, _proven (attach);
// _emit, debug (comet); _live (downstream); _end, _timer (lifecycle);
// longpoll (longpoll); REFUSED, STABLE, backoff, keepalive (policy);
// _flush (upstream).

// _gone handles the end of att; info says how: _ok (ended normally),
// _superseded, _silent, _why (the reason to report; stream_buffered makes
// it _buffered), and for a refused request its _status and _code. A refused
// ticket (403 bad_ticket: a browser's retried GET reuses its URL) is an
// attach failure like any other, but says the pool is out of step with
// the server: it is emptied, so the next attach asks for a fresh ticket.
function _gone(c, att, info) {
  var tr = att._transport, fatal = REFUSED[info._code];
  if (!_live(c, att)) return;
  _kill(c, att);
  if (info._code == 'bad_ticket') c._tickets = [];
  info._buffered = info._why == 'stream_buffered';
  debug(c, 'gone ' + tr._name + ' ' + att._attempt, info);
  if (c.readyState > 2) return;
  if (fatal > 2999) { // 3000, 3003, 3005: the session, its page or its user is refused
    return _end(c, fatal, 'attach: ' + info._code, 0, info._status);
  }
  if (att == c._current) {
    // Only the XHR transports end ok: the next poll, or a recycled stream.
    if (info._ok && !c._serverClose) return _attach(c, tr._name, 1, '');
    return _dropped(c, att, info);
  }
  if (!att._delivering && att._openedAt && info._ok && tr == longpoll) return _proven(c, att);
  _failed(c, att, info);
}

// _failed handles an attach that did not succeed.
function _failed(c, att, info) {
  var name = att._transport._name, why = info._why || '';
  if (att._delivering) {
    _retry(c, _after(c, name, info._buffered, !info._buffered), why);
  } else if (!c._inUse || c._chain) {
    // The first race, which goes on while the early chain of polls
    // delivers: a failed WebSocket starts HTTP at once; a buffered stream
    // goes to long-polling; any other failure to the next in line.
    c._raceFailed[name] = 1;
    if (info._buffered) c._raceFailed.sse = c._raceFailed.streaming = 1;
    if (name == 'websocket' && c._httpStarted) {
      if (!c._attachments.length) _http(c, null, why);
    } else {
      _http(c, null, why);
    }
  }
  // A background probe that failed leaves the transport in use as it is.
}

// _dropped handles the loss of the attachment in use: the reconnecting
// event, then a resume, after deciding from Date.now deltas whether the
// drop was a proxy's idle cut (ask for shorter heartbeats) or one early
// death too many (demote the transport for this network). A verdict
// reached by a late timer is never used for either.
function _dropped(c, att, info) {
  var now = c._now(), name = att._transport._name, k = {}, why;
  c._current = c._wsUpstream = null;
  c._sent = c._acked;
  c._generation++;
  // After the server's close nothing more comes down (the server forgets
  // the session once its close is acknowledged, and ends the stream): what
  // is left to send, our close or our ack, goes by POST.
  if (c._serverClose) return _flush(c);
  if (!att._late && !info._silent && !info._superseded) {
    k = keepalive(c._keepalive, now - att._openedAt, now - att._heardAt, att._interval, c._limits.minHeartbeat);
  }
  why = k._why || info._why || '';
  if (k._heartbeat) c._heartbeat = k._heartbeat;
  if (k._demote || info._buffered && !att._late) {
    if (name == 'websocket') c._noWebSocket = 1;
    name = _after(c, name, info._buffered);
  }
  _mem(c);
  c._lostAt = c._lostAt || now;
  if (now - att._openedAt >= STABLE) c._flaps = 0; // _retry counts the rest
  _emit(c, 'reconnecting', { reason: why || 'dropped', transport: c._inUse, heartbeat: c._heartbeat });
  _retry(c, name, why);
}

// _retry attaches again with name, at once after a first drop, after a
// backoff that grows with the early drops and failed attaches in a row
// otherwise, until the grace period is over: then the
// server has forgotten the session (3000). The grace clock starts at the
// first loss, whether a drop or a failed resume.
function _retry(c, name, why) {
  var n = c._flaps, now = c._now();
  if (now - (c._lostAt = c._lostAt || now) > c._limits.grace) return _end(c, 3000, 'grace over');
  c._flaps = n + 1;
  _timer(c, 'resume', n ? backoff(n - 1, c._rand(), 100, 5e3) : 0, function () {
    _attach(c, name, 1, why);
  });
}

// _after returns the transport to try after name: long-polling for a
// buffered stream, the next offered one after a demotion, and in rotation
// after a failed resume. A client forced to one transport keeps it.
function _after(c, name, buffered, rotate) {
  var o = c._offer, i = o.indexOf(name);
  if (buffered && o.indexOf('longpoll') > i) return 'longpoll';
  return o[i + 1] || (rotate ? o[0] : name);
}

return Comet;
}));
