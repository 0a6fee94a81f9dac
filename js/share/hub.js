// hub: a tab's end of the sharing of one endpoint (Hub): the election
// of the leader, the messages between tabs, and the tab's requests.

// From other files: Carrier (carrier); sharedGlobals (xhr).

// ASK: a follower whose oldest unanswered request waited this long asks
// the leader to prove that its carrier delivers, by a ping's round trip;
// ANSWER: how long the leader has to answer before another tab takes
// over. A frozen tab may still answer messages (Chromium runs a frozen
// page's BroadcastChannel handlers, not its network callbacks), so only
// the carrier's answer counts. CLAIM: how long a claim waits for an older
// one (without Web Locks).
var ASK = 3e3, ANSWER = 3e3, CLAIM = 150;

// Hub is one tab's end of the sharing of one endpoint: its requests, sent
// to the leader or, while it leads, carried itself.
function Hub(g, base, creds) {
  var h = this;
  h._g = g;
  h._base = base;
  h._creds = creds;
  h._now = g.now || Date.now;
  h._rand = g.random || Math.random;
  h._root = base.replace(/^(https?:\/\/[^\/]+).*$/, '$1');
  // The tab's id: unique among the tabs, so not from options.globals'
  // random, which a test may make the same in every tab.
  h._id = Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
  h._name = 'comet-share ' + base + (creds ? ' credentials' : '');
  h._reqs = {}; // this tab's requests in flight, by number
  h._n = 0;
  h._leader = ''; // the leader's id, while known
  h._lead = null; // the carrier, while this tab leads
  h._off = 0; // set when the server does not share
  h._ch = new g.BroadcastChannel(h._name);
  h._ch.onmessage = function (e) {
    h._receive(e.data || {});
  };
  h._globals = sharedGlobals(g, h);
  h._post({ t: '?' }); // the leader, if any, says who it is
  if (g.addEventListener) {
    g.addEventListener('pagehide', function () {
      // A follower's sub-requests end with it; its Comets close
      // themselves (comet.js: a beacon, which does not come here).
      if (!h._lead) h._post({ t: 'G' });
      h._resign();
    });
    g.addEventListener('freeze', function () {
      h._resign();
    });
    g.addEventListener('pageshow', function (e) {
      if (e && e.persisted) h._campaign();
    });
    g.addEventListener('resume', function () {
      h._campaign();
    });
  }
  h._campaign();
}

var hub = Hub.prototype;

// _post sends a message to the other tabs of this endpoint.
hub._post = function (m) {
  m.from = this._id;
  try {
    this._ch.postMessage(m);
  } catch (e) {}
};

// _locks returns the Web Locks API, where present.
hub._locks = function () {
  var n = this._g.navigator;
  return n && n.locks && n.locks.request && n.locks;
};

// _campaign stands for leader: with Web Locks, a request for the lock,
// granted when no other tab holds it (steal: taking it from one that
// does not answer); without, a claim.
hub._campaign = function (steal) {
  var h = this, locks = h._locks(), mine = {};
  if (h._lead) return;
  if (!locks) return h._claim();
  if (h._waiting && !steal) return;
  h._waiting = mine;
  locks.request(h._name, steal ? { steal: true } : {}, function () {
    if (h._waiting != mine) return; // resigned while it waited
    h._waiting = null;
    return new Promise(function (release) {
      h._release = release;
      h._becomeLeader();
    });
  })['catch'](function () {
    // Stolen from this tab, or refused: another tab leads.
    if (h._waiting == mine) h._waiting = null;
    h._resign(1);
  });
};

// _claim is the election without Web Locks: a tab that hears no leader
// claims, and leads unless an older claim, or a leader, answers within
// CLAIM; of two leaders the one with the smaller id stays.
hub._claim = function () {
  var h = this;
  if (h._claiming || h._lead) return;
  h._claiming = 1;
  h._post({ t: 'C' });
  h._g.setTimeout(function () {
    if (!h._claiming) return;
    h._claiming = 0;
    if (!h._leader) h._becomeLeader();
  }, CLAIM);
};

// _becomeLeader makes this tab the leader: it says so, and carries its
// own requests and the other tabs' from now on.
hub._becomeLeader = function () {
  var h = this, n;
  h._lead = new Carrier(h);
  h._leader = h._id;
  h._post({ t: 'L' });
  for (n in h._reqs) {
    if (h._reqs[n]._to) h._failReq(n); // sent to a leader that is gone
    else h._send(n);
  }
};

// _resign gives the leadership up (the page is hidden or frozen, or
// another tab took the lock): every request carried fails, so that each
// session attaches again through the next leader.
hub._resign = function (taken) {
  var h = this, lead = h._lead, n;
  h._waiting = null;
  if (h._release) h._release();
  h._release = null;
  if (lead) {
    h._lead = null;
    lead._end();
    if (!taken) h._post({ t: 'B' });
  }
  if (h._leader == h._id) h._leader = '';
  for (n in h._reqs) h._failReq(n);
  if (taken) {
    // The tab that took the lock said so while this one still led: ask.
    h._post({ t: '?' });
    h._campaign();
  }
};

// _receive handles a message from another tab.
hub._receive = function (m) {
  var h = this, lead = h._lead, r;
  switch (m.t) {
    case 'L': // a tab leads
      if (lead) {
        // With Web Locks the lock decides: a tab it was taken from hears
        // so from its request, and resigns. Without, the smaller id stays.
        if (h._locks()) return;
        if (m.from > h._id) return h._post({ t: 'L' });
        h._resign(1);
      }
      h._claiming = 0;
      if (h._leader != m.from) h._newLeader(m.from);
      return;
    case 'B': // the leader resigned
      if (h._leader == m.from) h._newLeader('');
      return h._campaign();
    case 'C': // a claim, without Web Locks
      if (lead) return h._post({ t: 'L' });
      if (h._claiming && m.from < h._id) h._claiming = 0;
      return;
    case '?': // who leads?
      if (lead) h._post({ t: 'L' });
      return;
    case 'K': // does the carrier deliver?
      if (lead && m.to == h._id) lead._knock(m.from);
      return;
    case 'P': // it does
      if (m.to == h._id && m.from == h._leader) h._alive = 1;
      return;
    case 'Q': // a request for the leader
      if (lead && m.to == h._id) lead._start(m.r, m.m, m.u, m.b, m.from);
      return;
    case 'A': // a request aborted
      if (lead && m.to == h._id) lead._abortFrom(m.from, m.r);
      return;
    case 'G': // a tab has gone
      if (lead) lead._forget(m.from);
      return;
    case 'R': // a response part, for one of this tab's requests
      r = m.to == h._id && h._reqs[m.r];
      if (r && r._to == m.from) h._deliver(m.r, m.k, m.s, m.d);
      return;
    case 'O': // the server does not share
      h._off = 1;
  }
};

// _newLeader records the leader's id: requests sent to another leader
// fail, and those waiting for one go.
hub._newLeader = function (id) {
  var h = this, n, r;
  h._leader = id;
  for (n in h._reqs) {
    r = h._reqs[n];
    if (r._to && r._to != id) h._failReq(n);
    else if (!r._to && id) h._send(n);
  }
};

// _request starts one of this tab's requests: cb gets (kind, status,
// text) for the head ('h'), each part ('d'), the end ('e'), a failure
// ('f'), or 'o' when the request was not carried and is to go to the
// network itself. It returns the request's number, for _abort.
hub._request = function (method, target, body, cb) {
  var h = this, n = ++h._n;
  h._reqs[n] = { _m: method, _u: target, _b: body, _cb: cb, _to: '', _at: h._now() };
  h._send(n);
  h._watch();
  return n;
};

// _send sends request n to the leader, or carries it while this tab
// leads; without a leader it waits, and the watch campaigns.
hub._send = function (n) {
  var h = this, r = h._reqs[n];
  if (h._lead) {
    r._to = h._id;
    return h._lead._start(n, r._m, r._u, r._b, '');
  }
  if (!h._leader) return h._campaign();
  r._to = h._leader;
  r._at = h._now();
  h._post({ t: 'Q', to: r._to, r: n, m: r._m, u: r._u, b: r._b });
};

// _abort ends request n: its client is gone.
hub._abort = function (n) {
  var h = this, r = h._reqs[n];
  if (!r) return;
  delete h._reqs[n];
  if (r._to == h._id && h._lead) h._lead._abortFrom('', n);
  else if (r._to) h._post({ t: 'A', to: r._to, r: n });
};

// _deliver gives a part of request n's response to it.
hub._deliver = function (n, kind, status, text) {
  var r = this._reqs[n];
  if (!r) return;
  r._heard = 1;
  if (kind == 'e' || kind == 'f' || kind == 'o') delete this._reqs[n];
  r._cb(kind, status, text);
};

hub._failReq = function (n) {
  this._deliver(n, 'f', 0, '');
};

// _watch checks, while this tab has requests the leader has not begun
// to answer, that the leader's carrier delivers: asked after ASK, a
// leader that does not answer within ANSWER is replaced.
hub._watch = function () {
  var h = this;
  if (h._watching) return;
  h._watching = 1;
  h._g.setTimeout(function check() {
    var n, r, waiting = 0, now = h._now(), knocked;
    for (n in h._reqs) {
      r = h._reqs[n];
      if (!r._heard && r._to != h._id && now - r._at >= ASK) waiting = 1;
    }
    if (!Object.keys(h._reqs).length || h._lead) {
      h._watching = 0;
      return;
    }
    if (waiting) {
      knocked = h._leader;
      h._alive = 0;
      h._post({ t: 'K', to: knocked });
      // Unless another tab took over meanwhile; a random part, so that
      // the tabs that knocked together do not all take over at once.
      h._g.setTimeout(function () {
        if (!h._lead && !h._alive && h._leader == knocked) {
          h._newLeader('');
          h._campaign(1);
        }
      }, ANSWER * (1 + h._rand() / 2));
    }
    h._g.setTimeout(check, ASK);
  }, ASK);
};
