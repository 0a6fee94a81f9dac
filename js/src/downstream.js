// downstream: the frames that arrive on an attachment (PROTOCOL.md
// sections 5 to 7): the open frame, the sequence rules, heartbeats, probe
// echoes and the server's close.

// _live reports whether att is still one of the session's attachments;
// callbacks from any other (a superseded or abandoned attempt) are ignored.
proto._live = function (att) {
  return this._atts.indexOf(att) >= 0;
};

// _data applies a batch that arrived on att.
proto._data = function (att, text) {
  var c = this, frames, i, f, now = c._now();
  if (!c._live(att)) return;
  debug(c, 'down ' + att.tr.name + ' ' + att.a, text);
  try {
    frames = decodeBatch(text);
  } catch (e) {
    return c._fail(e.code, e.message);
  }
  for (i = 0; i < frames.length && c._live(att); i++) {
    f = frames[i];
    if (!att.op) {
      // The first frame of every downstream is its open frame; one naming
      // another attempt is a stale response a proxy released late.
      if (f[0] != 'o' || f[1] != att.a) return c._gone(att, { why: att.tr == websocket ? 'ws_silent' : '' });
      c._opened(att, f);
      continue;
    }
    att.last = now;
    switch (f[0]) {
      case 'm':
      case 'b':
      case 'c':
        c._message(f);
        break;
      case 'a':
        c._ackUp(f[1]);
        break;
      case 'h':
        c._ackNow = 1;
        // Heartbeats leave the server at least an interval apart; two that
        // arrive together were held back by something on the way.
        if (att.tr != websocket && att.tr != longpoll && now - att.hb < att.iv / 2 && !att.late) {
          return c._gone(att, { why: 'stream_buffered', buffered: 1 });
        }
        att.hb = now;
        break;
      case 'e':
        if (f[1] == att.pr) c._proven(att);
        break;
      case 's':
        return c._gone(att, { superseded: 1 });
      default:
        return c._fail(1002, 'unexpected frame');
    }
  }
  c._flush();
};

// _message applies a sequenced frame: a message or the server's close.
proto._message = function (f) {
  var c = this, seq = f[1], size;
  if (seq <= c._n) {
    c._ackNow = 1; // a resend: the server may have missed our ack
    return;
  }
  if (seq > c._n + 1) return c._fail(1002, 'sequence gap');
  if (c._rc) return c._fail(1002, 'after close');
  c._n = seq;
  if (f[0] == 'c') return c._remoteClose(f);
  size = f[0] == 'm' ? utf8Length(f[2]) : f[2].length / 4 * 3;
  if (size > c._lim.maxMessage + 2) return c._fail(1009, 'message too big');
  if (!c._owe++) c._since = c._now();
  c._oweBytes += size;
  // After close() the application reads nothing more, as with WebSocket;
  // messages are still acknowledged.
  if (c.readyState == 1) c._emit('message', { data: f[0] == 'm' ? f[2] : c._binary(f[2]) });
};

// _binary converts a base64 payload to what binaryType asks for.
proto._binary = function (b64) {
  var g = this._g, bytes = fromBase64(b64, g.atob, g.Uint8Array);
  return this.binaryType == 'blob' && g.Blob ? new g.Blob([bytes]) : bytes.buffer;
};

// _remoteClose accepts the server's close: one we did not start is
// answered with the same code; ours is the answer we were waiting for.
proto._remoteClose = function (f) {
  var c = this;
  c._rc = f;
  c._ackNow = 1;
  if (!c._cs) c._closeWith(f[2], '', 1);
  c._finish();
};
