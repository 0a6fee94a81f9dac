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
