// lifecycle: the end of a session (PROTOCOL.md section 10) — the closing
// handshake, protocol violations, the page going away — and the reconnect
// option, which opens a fresh session after an end that allows it.

// _closeWith queues our close frame in sequence, after every message sent
// before it, and bounds the handshake by CLOSE_WAIT.
function _closeWith(c, code, reason, remote) {
  c.readyState = 2;
  c._cs = ++c._seq;
  c._out.push({ s: c._cs, n: 0, c: 1, f: encodeFrame(['c', c._cs, code, reason, 0]) });
  debug(c, 'closing', { code: code, remote: !!remote });
  _timer(c, 'close', CLOSE_WAIT, function () {
    var r = c._rc;
    _end(c, r ? r[2] : 1006, r ? r[3] : 'close timeout', 0, 0, r && r[4]);
  });
  _flush(c);
}

// _finish ends the session once its closing handshake is done: our close
// has reached the server, and the server's close has arrived and been
// acknowledged.
function _finish(c) {
  var r = c._rc;
  if (c._sid && c._cw == 1 && r && c._ackd >= c._n) _end(c, r[2], r[3], 1, 0, r[4]);
}

// _fail ends the session for the server's violation of the protocol at
// once: an answer from a broken peer is not worth waiting for. The server
// is told by a beacon, after what it has not acknowledged. The page going
// away and close() while connecting end the same way: clean says whether
// the end is clean, told the code the beacon tells (default: code).
function _fail(c, code, reason, clean, told) {
  debug(c, 'abort', reason);
  if (c._sid) _beacon(c, told || code);
  _end(c, code, reason, clean);
}

// _end ends the session: everything stops, then error (for an unclean
// end) and close, unless the reconnect option opens a fresh session.
function _end(c, code, reason, clean, status, retry) {
  var o = c._o, ev = { code: code, reason: reason || '', wasClean: !!clean }, k, delay, now = c._now();
  if (c.readyState == 3) return;
  debug(c, 'end', ev);
  if (status) ev.status = status;
  if (retry) ev.retry = retry;
  _each(c, _kill);
  if (c._post) c._post.close();
  c._post = null;
  c._sid = '';
  c._tw = [];
  for (k in c._t) _clear(c, k);
  if (o.reconnect && RECONNECT[code] && !c._user) {
    // The old session is gone, and with it whatever it did not
    // acknowledge: the gap event says how many messages that was.
    if (c._born && now - c._born > EARLY) c._rn = 0;
    delay = Math.max(retry || 0, backoff(c._rn++, c._rand(), o.reconnectDelay, o.reconnectMaxDelay));
    if (c._born) {
      c.readyState = 1;
      c._gap = { code: code, reason: ev.reason, dropped: c._out.filter(function (m) {
        return !m.c;
      }).length };
    }
    c._out = [];
    c._seq = c._acked = c._sent = c.bufferedAmount = c._born = 0;
    _emit(c, 'reconnecting', { reason: 'session_ended', code: code, fresh: true, delay: delay });
    return _timer(c, 'fresh', delay, _connect);
  }
  c.readyState = 3;
  while (c._win.length) c._win.pop()();
  if (!clean) _emit(c, 'error', ev);
  _emit(c, 'close', ev);
}

// _bye runs on pagehide: the page is going away, so the server is told at
// once (a beacon survives the unload) instead of holding the session for
// its grace period.
function _bye(c) {
  if (c.readyState > 2) return;
  c._user = 1;
  _fail(c, 1001, 'page hidden', 1);
}

// _beacon sends what the server has not acknowledged, then a close, in
// one POST that outlives the page, where navigator.sendBeacon exists.
function _beacon(c, code) {
  var nav = c._g.navigator, url = _url(c, c._base, 'send', { s: c._sid }), body;
  c._sent = c._acked;
  body = encodeFrame(['k', c._sec, c._n, 0]) + '\n' + _batch(c);
  if (!c._cs || c._sent < c._cs) body += encodeFrame(['c', c._sent + 1, code, '', 0]);
  if (nav && nav.sendBeacon) nav.sendBeacon(url, body);
}

// _online resumes at once when the browser says the network is back,
// instead of waiting out a backoff.
function _online(c) {
  var t = c._t.resume;
  if (t) {
    _clear(c, 'resume');
    t.f(c);
  }
}

// _listen calls fn(c) on each event type on the window, until the session
// ends.
function _listen(c, type, fn) {
  var g = c._g;
  function on() {
    fn(c);
  }
  if (g.addEventListener) {
    g.addEventListener(type, on);
    c._win.push(function () {
      g.removeEventListener(type, on);
    });
  }
}

// _timer arms the session's timer called name, replacing any armed one.
function _timer(c, name, ms, fn) {
  _clear(c, name);
  c._t[name] = {
    f: fn, id: c._g.setTimeout(function () {
      delete c._t[name];
      fn(c);
    }, ms)
  };
}

function _clear(c, name) {
  var t = c._t[name];
  if (t) {
    c._g.clearTimeout(t.id);
    delete c._t[name];
  }
}
