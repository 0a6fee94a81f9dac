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
