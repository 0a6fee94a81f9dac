// carrier: the leader's carrier (Carrier), which starts the tabs'
// requests as sub-requests on its links and hands each its response.

// From other files: Link, recall (link).

// SETTLED: an XHR stream attached this long ago (or to deliver, d=1) is
// no longer a probe of comet.js's first race, which ending would fail:
// it may be moved to a fresh carrier stream.
var SETTLED = 5e3;

// Carrier is the leader's end of the sharing: it starts the tabs'
// requests as sub-requests on a link to the server, and hands each its
// response. A link is a carrier of the server (PROTOCOL.md section 16):
// polls, whose hello comes back in one round trip through any proxy, and
// a stream, tried beside them, which once proven by a ping's echo takes
// every new sub-request (the polls end when their last sub-request
// does), as comet.js's early delivery does with its transports. Where
// the stream's proof failed the page polls alone, for a day. A stream
// past its BUDGET is replaced the same way. Once a stream is proven, each
// session's XHR stream carried by the polls or the stream it replaces is
// ended cleanly, at a line's end, as the server recycles a stream:
// comet.js attaches again, on the proven one, from its ack. The old link
// ends with its last sub-request.
function Carrier(h) {
  var c = this;
  c._h = h;
  c._subs = {}; // by sub-request number: {_from: tab id, '' for this tab, _r: its request number, _link, _stream, _line}
  c._byTab = {}; // sub-request numbers by tab and request: 'tab r' -> sub
  c._sub = 0;
  c._polls = c._stream = c._old = null;
}

var carrier = Carrier.prototype;

// _start starts request r of tab from (or of this tab, from '') on the
// carrier's best link, opening links as needed.
carrier._start = function (r, method, target, body, from) {
  var c = this, h = c._h, sub = ++c._sub, l = open(c._stream) || open(c._old) || c._polls;
  function open(l) {
    return l && l._state == 2 && l;
  }
  if (!l) {
    l = c._polls = new Link(c, 0);
    if (!c._stream && !recall(h)) c._stream = new Link(c, 1);
  }
  c._subs[sub] = {
    _from: from, _r: r, _link: l, _stream: /^[^?]*\/streaming\?/.test(target), _line: 1, _at: h._now(),
    _d: /[?&]d=1(&|$)/.test(target)
  };
  c._byTab[from + ' ' + r] = sub;
  l._n++;
  l._queue(method == 'POST' ? [sub, method, target, body] : [sub, method, target]);
};

// _abortFrom aborts the sub-request of request r of tab from.
carrier._abortFrom = function (from, r) {
  var c = this, sub = c._byTab[from + ' ' + r], s = sub && c._drop(sub);
  if (s) s._link._abort(sub);
};

// _forget aborts every sub-request of a tab that has gone.
carrier._forget = function (from) {
  var c = this, sub;
  for (sub in c._subs) {
    if (c._subs[sub]._from == from) c._abortFrom(from, c._subs[sub]._r);
  }
};

// _drop forgets sub-request sub; a link of polls that the stream
// replaced ends with its last one.
carrier._drop = function (sub) {
  var c = this, s = c._subs[sub], l = s && s._link;
  if (s) {
    delete c._subs[sub];
    delete c._byTab[s._from + ' ' + s._r];
    if (!--l._n && (l == c._polls || l == c._old) && c._stream && c._stream._state == 2) {
      l._retire();
      if (l == c._polls) c._polls = null;
      else c._old = null;
    }
  }
  return s;
};

// _knock puts a ping on the carrier for tab from, which _pong answers
// when its echo comes: the carrier delivers.
carrier._knock = function (from) {
  var c = this, l = [c._stream, c._old, c._polls].filter(function (l) {
    return l && l._state == 2;
  })[0];
  (c._knocks = c._knocks || {})[from] = 1;
  if (l) l._queue([0, 'p']);
  // Otherwise a link is opening: its hello or proof comes first, or the
  // asker takes over.
};

carrier._pong = function () {
  var c = this, from;
  for (from in c._knocks) c._h._post({ t: 'P', to: from });
  c._knocks = {};
};

// _hand gives a frame of sub-request sub's response to its request.
carrier._hand = function (sub, kind, status, text) {
  var c = this, s = c._subs[sub];
  if (!s) return;
  if (kind == 'h') s._head = 1;
  if (kind == 'd') s._line = /\n$/.test(text);
  if (kind == 'e' || kind == 'f' || kind == 'o') c._drop(sub);
  if (!s._from) return c._h._deliver(s._r, kind, status, text);
  c._h._post({ t: 'R', to: s._from, r: s._r, k: kind, s: status, d: text });
};

// _lost ends link l: its sub-requests fail, and the next request opens
// links again. Those of a link that never opened were not carried: they
// go to the network, each from its tab. A server that does not share (a
// 404 to the opening, not share_not_found) is told to every tab, whose
// requests then all go to the network.
carrier._lost = function (l, status, text) {
  var c = this, h = c._h, sub, body;
  try {
    body = JSON.parse(text);
  } catch (e) {}
  l._end();
  if (c._polls == l) c._polls = null;
  if (c._stream == l) c._stream = null;
  if (c._old == l) c._old = null;
  if (status == 404 && !l._id && !(body && body.code == 'share_not_found')) {
    h._off = 1;
    h._post({ t: 'O' });
  }
  for (sub in c._subs) {
    if (c._subs[sub]._link == l) c._hand(sub, l._id ? 'f' : 'o', 0, '');
  }
};

// _end ends the carrier: this tab no longer leads. The tabs' requests
// fail by the leader's change.
carrier._end = function () {
  var c = this;
  [c._polls, c._stream, c._old].map(function (l) {
    if (l) l._end();
  });
};

// _recycle replaces stream l, past its budget, by a fresh one.
carrier._recycle = function (l) {
  var c = this;
  if (c._stream != l || c._old) return;
  c._old = l;
  c._stream = new Link(c, 1);
};

// _proven moves to the stream just proven: the polls, and a stream it
// replaces, end with their last sub-request, their XHR streams moved
// (_move) as soon as each may be.
carrier._proven = function () {
  var c = this, sub;
  [c._polls, c._old].map(function (l) {
    if (l) l._moving = 1;
  });
  for (sub in c._subs) c._move(sub);
  if (c._polls && !c._polls._n) {
    c._polls._retire();
    c._polls = null;
  }
  if (c._old && !c._old._n) {
    c._old._retire();
    c._old = null;
  }
};

// _move ends sub-request sub cleanly, for its request to attach again on
// the proven stream, if it is an XHR stream of a link being left that has
// its head, is settled (SETTLED) and is at a line's end; one that is not
// yet is tried again at its next frame.
carrier._move = function (sub) {
  var c = this, s = c._subs[sub];
  if (s && s._stream && s._head && s._line && s._link._moving && (s._d || c._h._now() - s._at >= SETTLED)) {
    s._link._abort(sub);
    c._hand(sub, 'e', 200, '');
  }
};
