// lifecycle: the end of a session (PROTOCOL.md section 10) — the closing
// handshake, protocol violations, the page going away — and the reconnect
// option, which opens a fresh session after an end that allows it.

// _closeWith queues our close frame in sequence, after every message sent
// before it, and bounds the handshake by CLOSE_WAIT.
proto._closeWith = function (code, reason, remote) {
  var c = this;
  c.readyState = 2;
  c._cs = ++c._seq;
  c._out.push({ s: c._cs, n: 0, c: 1, f: encodeFrame(['c', c._cs, code, reason, 0]) });
  debug(c, 'closing', { code: code, remote: !!remote });
  c._timer('close', CLOSE_WAIT, function () {
    var r = c._rc;
    c._end(r ? r[2] : 1006, r ? r[3] : 'close timed out', 0, 0, r && r[4]);
  });
  c._flush();
};

// _finish ends the session once its closing handshake is done: our close
// has reached the server, and the server's close has arrived and been
// acknowledged.
proto._finish = function () {
  var c = this, r = c._rc;
  if (c._sid && c._cw == 1 && r && c._ackd >= c._n) c._end(r[2], r[3], 1, 0, r[4]);
};

// _fail ends the session for the server's violation of the protocol at
// once: an answer from a broken peer is not worth waiting for. The server
// is told by a beacon, after what it has not acknowledged.
proto._fail = function (code, reason) {
  debug(this, 'violation', reason);
  if (this._sid) this._beacon(code);
  this._end(code, reason);
};

// _end ends the session: everything stops, then error (for an unclean
// end) and close, unless the reconnect option opens a fresh session.
proto._end = function (code, reason, clean, status, retry) {
  var c = this, o = c._o, ev = { code: code, reason: reason || '', wasClean: !!clean }, k, delay, now = c._now();
  if (c.readyState == 3) return;
  debug(c, 'end', ev);
  if (status) ev.status = status;
  if (retry) ev.retry = retry;
  c._each(function (att) {
    c._kill(att);
  });
  if (c._post) c._post.close();
  if (c._abortNeg) c._abortNeg.close();
  c._post = c._abortNeg = null;
  c._sid = '';
  c._tw = [];
  for (k in c._t) c._clear(k);
  if (o.reconnect && RECONNECT[code] && !c._user) {
    // The old session is gone, and with it whatever it did not
    // acknowledge: the gap event says how many messages that was.
    if (c._born && now - c._born > EARLY) c._rn = 0;
    delay = Math.max(retry || 0, backoff(c._rn++, c._rand(), o.reconnectDelay, o.reconnectMaxDelay));
    if (c._born) {
      c.readyState = 1;
      c._gap = { code: code, reason: ev.reason, dropped: 0 };
      for (k = 0; k < c._out.length; k++) c._gap.dropped += !c._out[k].c;
    }
    c._out = [];
    c._seq = c._acked = c._sent = c.bufferedAmount = c._born = 0;
    c._emit('reconnecting', { reason: 'session_ended', code: code, fresh: true, delay: delay });
    return c._timer('fresh', delay, c._connect);
  }
  c.readyState = 3;
  while (c._win.length) {
    k = c._win.pop();
    if (c._g.removeEventListener) c._g.removeEventListener(k[0], k[1]);
  }
  if (!clean) c._emit('error', ev);
  c._emit('close', ev);
};

// _bye runs on pagehide: the page is going away, so the server is told at
// once (a beacon survives the unload) instead of holding the session for
// its grace period.
proto._bye = function () {
  if (this.readyState > 2) return;
  this._user = 1;
  if (this._sid) this._beacon(1001);
  this._end(1001, 'page hidden', 1);
};

// _beacon sends what the server has not acknowledged, then a close, in
// one POST that outlives the page, where navigator.sendBeacon exists.
proto._beacon = function (code) {
  var c = this, nav = c._g.navigator, url = c._url(c._base, 'send', { s: c._sid }), body;
  c._sent = c._acked;
  body = encodeFrame(['k', c._sec, c._n, 0]) + '\n' + c._batch();
  if (!c._cs || c._sent < c._cs) body += encodeFrame(['c', c._sent + 1, code, '', 0]);
  if (nav && nav.sendBeacon) nav.sendBeacon(url, body);
};

// _online resumes at once when the browser says the network is back,
// instead of waiting out a backoff.
proto._online = function () {
  var t = this._t.resume;
  if (t) {
    this._clear('resume');
    t.f.call(this);
  }
};

// _listen adds a listener on the window, removed when the session ends.
proto._listen = function (type, fn) {
  if (this._g.addEventListener) {
    this._g.addEventListener(type, fn);
    this._win.push([type, fn]);
  }
};

// _timer arms the session's timer called name, replacing any armed one.
proto._timer = function (name, ms, fn) {
  var c = this;
  c._clear(name);
  c._t[name] = {
    f: fn, id: c._g.setTimeout(function () {
      delete c._t[name];
      fn.call(c);
    }, ms)
  };
};

proto._clear = function (name) {
  var t = this._t[name];
  if (t) {
    this._g.clearTimeout(t.id);
    delete this._t[name];
  }
};
