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
