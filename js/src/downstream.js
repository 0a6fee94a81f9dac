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
