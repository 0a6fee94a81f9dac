// attach: choosing, proving and keeping a transport (PROTOCOL.md sections
// 5, 7 and 8). Every attach is an attachment object with its own attempt
// number; callbacks of one that is no longer live are ignored. Candidates
// attach as probes (d=0) and are committed once proven; resumes deliver at
// once (d=1).

// _start begins after negotiate. WebSocket gets a head start; if it is
// not proven by then, an HTTP transport races it, and the first proven
// wins. A transport remembered for this network starts at once, while
// WebSocket is probed in the background to upgrade to.
proto._start = function () {
  var c = this, o = c._offer, mem = c._o.remember && recall(c._g, c._key, c._now()), ws = o[0] == 'websocket';
  c._bad = {};
  c._nw = mem && mem.nw;
  if (mem && mem.hb && !c._o.heartbeat) c._hb = mem.hb;
  if (mem && mem.t != 'websocket' && o.indexOf(mem.t) >= 0) {
    c._http(mem.t, '');
    if (ws && !c._nw) c._attach('websocket', 0, 'upgraded');
  } else if (ws) {
    c._attach('websocket', 0, '');
    c._timer('race', headStart(c._rtt), function () {
      c._http(null, (c._atts[0] || {}).up ? 'ws_silent' : 'ws_hung');
    });
  } else {
    c._http(null, '');
  }
};

// _http starts the HTTP candidate name, or the next one not yet failed.
proto._http = function (name, why) {
  var c = this, o = c._offer, i;
  c._clear('race');
  for (i = 0; !name && i < o.length; i++) {
    if (o[i] != 'websocket' && !c._bad[o[i]]) name = o[i];
  }
  c._hs = 1;
  if (name) c._attach(name, 0, why);
  else if (!c._atts.length) c._end(3004, 'unreachable');
};

// _attach attaches with transport name: d=1 delivers at once, d=0 probes.
// why tells the server why the client left its previous transport.
proto._attach = function (name, d, why) {
  var c = this, tr = transportNamed(name), gen = c._gen;
  c._ticket(function (t) {
    var att;
    if (gen != c._gen || c.readyState > 2) return;
    if (!t) return c._failed({ tr: tr, d: d, why: why }, {});
    att = { a: ++c._a, tr: tr, d: d, why: why, ack: c._n };
    c._atts.push(att);
    debug(c, 'attach ' + name + ' ' + att.a, { d: d, why: why });
    // A delivering poll answers within its hold; everything else must
    // show its open frame within the attach timeout.
    c._at(att, (tr == longpoll && d ? c._lim.hold : 0) + c._to, function () {
      var stream = tr == sse || tr == streaming;
      c._gone(att, { why: tr == websocket ? (att.up ? 'ws_silent' : 'ws_hung') : stream ? 'stream_buffered' : '', buffered: stream });
    });
    tr.open(c, att, c._url(c._base, name, { s: c._sid, t: t, a: att.a, ack: att.ack, d: d, hb: c._hb || '', why: why }));
  });
};

// _wsOpen runs when a WebSocket's handshake succeeded (101): a candidate
// sends its probe at once; the echo will prove the path both ways.
proto._wsOpen = function (att) {
  if (!this._live(att)) return;
  att.up = 1;
  if (!att.d) websocket.send(att, encodeFrame(['p', att.a, att.pr = this._token()]));
};

proto._token = function () {
  return Math.floor(this._rand() * 1e15).toString(36);
};

// _opened applies an attachment's open frame: the server's ack of our
// messages, a fresh ticket, and our ack, which the attach carried.
proto._opened = function (att, f) {
  var c = this, tr = att.tr;
  att.op = att.last = c._now();
  att.iv = f[4] || (tr == longpoll ? c._lim.hold : c._lim.heartbeat);
  c._addTicket(f[3]);
  c._sentAck(att.ack);
  c._ackUp(f[2]);
  if (tr == sse || tr == streaming) {
    // A stream is proven by a probe echoed on it, which a buffering proxy
    // holds back (PROTOCOL.md section 8); the deadline starts once the
    // POST carrying the probe has arrived.
    c._g.clearTimeout(att.tm);
    c._probe(att);
  }
  if (att.d) c._use(att);
};

// _probe asks the server to echo a token on stream att, by POST.
proto._probe = function (att) {
  att.pr = this._token();
  this._ctl.push(att.ps = encodeFrame(['p', att.a, att.pr]));
  this._flush();
};

// _probed arms the echo deadline of every probe in a POST that arrived.
proto._probed = function (ctl) {
  var c = this;
  c._each(function (att) {
    if (att.pr && ctl.indexOf(att.ps) >= 0) {
      att.pk = 1;
      c._at(att, c._to, function () {
        c._gone(att, { why: 'stream_buffered', buffered: 1 });
      });
    }
  });
};

proto._each = function (fn) {
  for (var l = this._atts.slice(), i = 0; i < l.length; i++) fn(l[i]);
};

// _proven takes an echo (or a probe poll's answer) as proof that att's
// path works: a candidate is committed, a delivering stream watched.
proto._proven = function (att) {
  var c = this;
  att.pr = 0;
  if (att.d) return c._watch(att);
  if (att.tr == websocket) websocket.send(att, '["u",' + att.a + ']\n');
  else if (att.tr != longpoll) c._ctl.push('["u",' + att.a + ']');
  c._commit(att);
  if (att.tr == longpoll) c._poll();
};

// _commit makes att the delivering attachment and closes every other one
// but a background upgrade probe; for a hung WebSocket that matters, since
// browsers allow one connecting WebSocket per host.
proto._commit = function (att) {
  var c = this;
  c._gen = (c._gen || 0) + 1;
  c._each(function (other) {
    if (other != att && other.why != 'upgraded') c._kill(other);
  });
  c._clear('race');
  att.d = 1;
  c._use(att);
};

// _use makes att the attachment in use and reports a change of transport.
proto._use = function (att) {
  var c = this, from = c._tr, name = att.tr.name, up = att.tr == websocket ? att : null, gap = c._gap;
  c._cur = att;
  c._lost = 0;
  if (up || c._up) c._sent = c._acked;
  c._up = up;
  c._tr = c.transport = name;
  if (!att.pr) c._watch(att);
  if (from != name) {
    c._mem();
    c._emit('transport', { transport: name, from: from, reason: att.why || '' });
  }
  if (!c._born) c._born = c._now();
  if (c.readyState == 0) {
    c.readyState = 1;
    c._emit('open');
  } else if (gap) {
    c._gap = null;
    c._emit('gap', gap);
  }
  c._flush();
};

// _mem remembers what works on this network for the next page load.
proto._mem = function () {
  if (this._o.remember) remember(this._g, this._key, { t: this._tr, hb: this._hb, nw: this._nw }, this._now());
};

// _poll starts the next delivering poll, carrying our ack.
proto._poll = function () {
  if (!this._rc) this._attach('longpoll', 1, '');
};

// _at arms att's one timer. A timer that fires late (a background tab, a
// frozen page) proves nothing about the network: the attachment gets one
// more period instead of a verdict, and is marked so that no verdict on
// it demotes a transport or changes the heartbeat.
proto._at = function (att, ms, fn) {
  var c = this, due = c._now() + ms;
  c._g.clearTimeout(att.tm);
  att.tm = c._g.setTimeout(function () {
    if (c._now() - due > Math.max(1e3, ms / 2) && !att.late) {
      att.late = 1;
      return c._at(att, ms, fn);
    }
    fn();
  }, ms);
};

// _watch checks a delivering stream by the silence of its downstream,
// measured with Date.now: after a quiet interval it sends a probe; an
// interval plus the attach timeout without a byte means the stream is
// dead (PROTOCOL.md section 7), or, if the probe's POST went through,
// held back by a proxy.
proto._watch = function (att) {
  var c = this;
  function check() {
    var quiet = c._now() - att.last, ws = att.tr == websocket;
    if (quiet < att.iv) return c._at(att, att.iv - quiet, check);
    if (!att.pr) {
      if (ws) websocket.send(att, encodeFrame(['p', att.a, att.pr = c._token()]) + '\n');
      else c._probe(att);
      return c._at(att, c._to, check);
    }
    if (quiet < att.iv + c._to) return c._at(att, att.iv + c._to - quiet, check);
    c._gone(att, { why: ws ? 'ws_silent' : att.pk ? 'stream_buffered' : '', buffered: !ws && att.pk, silent: 1 });
  }
  if (att.tr != longpoll && c._live(att)) c._at(att, att.iv, check);
};

// _kill closes att and forgets it. Every transport's handle (WebSocket,
// EventSource, request) has a close and only on* callbacks.
proto._kill = function (att) {
  var i = this._atts.indexOf(att), x = att.x;
  if (i >= 0) this._atts.splice(i, 1);
  this._g.clearTimeout(att.tm);
  if (x) {
    x.onopen = x.onmessage = x.onerror = x.onclose = null;
    try {
      x.close();
    } catch (e) {}
  }
};
