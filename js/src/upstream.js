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
