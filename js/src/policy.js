// policy: the timing and classification decisions of the session, as pure
// functions of measured values, so that tests can state them as tables.

// From other files: none.

// EARLY is the lifetime under which an attachment's death counts as early.
var EARLY = 1e4;
// STABLE is the lifetime after which an attachment's drop is resumed at
// once, and the backoff starts over; a shorter one is a failure in a row,
// so that a server that accepts and drops at once meets a growing wait.
var STABLE = 1e3;
// CLOSE_WAIT bounds a closing handshake.
var CLOSE_WAIT = 5e3;
// TICKET_TTL: the server honours a ticket 60 s; trusting it for less
// leaves time for the attach that uses it to arrive.
var TICKET_TTL = 5e4;

// attachTimeout derives the attach timeout from the negotiate round trip
// (PROTOCOL.md section 8): minTimeout + 4×RTT, capped at maxTimeout. The
// floor pays for a cold WebSocket's TCP, TLS and upgrade.
function attachTimeout(rtt, lo, hi) {
  return Math.min(lo + 4 * rtt, hi);
}

// headStart is how long WebSocket runs alone before an HTTP transport
// races it: long enough for a healthy upgrade and probe (a few round
// trips), short enough that a refused, hung or black-holed WebSocket
// costs little.
function headStart(rtt) {
  return Math.max(250, 3 * rtt);
}

// backoff returns the wait before retry n (from 0): doubling from lo,
// capped at hi, half fixed and half drawn from r in [0, 1) ("equal
// jitter"), so that clients cut by one outage do not return together.
function backoff(n, r, lo, hi) {
  var d = Math.min(hi, lo * (1 << Math.min(n, 20)));
  return Math.round(d / 2 + r * d / 2);
}

// nextPause is the pause before resending what a full server inbound did
// not accept (PROTOCOL.md section 6): base at first, doubling to 1 s.
function nextPause(p, base) {
  return Math.min(p ? 2 * p : base, 1e3);
}

// keepalive classifies the unexpected death of an attachment that lived
// life ms and had been silent downstream for idle ms (both Date.now
// deltas) under heartbeat interval iv; k carries the history (_silence:
// the silence before the previous death, _early: early deaths in a row).
// It returns {_why, _heartbeat} for an idle cut — two deaths after the
// same silence, a proxy's idle timeout: ask for heartbeats at half that
// silence instead of leaving the transport — or {_why, _demote} after
// three early deaths in a row that no shorter heartbeat explains.
// Otherwise {}.
function keepalive(k, life, idle, iv, minHb) {
  var r = {}, hb = Math.floor(idle / 2);
  k._early = life < EARLY ? (k._early || 0) + 1 : 0;
  if (idle >= 1e3 && k._silence && Math.abs(idle - k._silence) <= Math.max(1e3, k._silence / 10) && hb >= minHb && hb < iv) {
    r._why = 'idle_cut';
    r._heartbeat = hb;
    k._early = 0;
  } else if (k._early >= 3) {
    r._why = 'early_death';
    r._demote = 1;
    k._early = 0;
  }
  k._silence = idle >= 1e3 ? idle : 0;
  return r;
}

// RECONNECT lists the close codes after which a fresh session may be
// opened (PROTOCOL.md section 10), with the reconnect option.
var RECONNECT = { 1011: 1, 3000: 1, 3001: 1, 3002: 1, 3004: 1, 3006: 1 };

// REFUSED maps the error codes of refused requests (PROTOCOL.md section 2)
// that end the session to their close codes.
var REFUSED = {
  session_not_found: 3000, origin_refused: 3005, unauthorized: 3003, forbidden: 3003,
  malformed: 1002, invalid_payload: 1007, payload_too_large: 1009, bad_secret: 1008, bad_request: 1002
};
