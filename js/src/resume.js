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
