// share.js: the page of the cross-tab tests (share_test.go). It loads
// after comet.js and comet-share.js, opens one Comet on the endpoint the
// query names (default /comet), and keeps in window.state what the test
// reads: when the session opened and when its first message came (ms
// since navigation start), every message sent and received, and the
// reconnecting and close events, and how often the leader of the
// endpoint's tabs changed once the session was open. It logs the tabs'
// election messages and each reconnecting event to the console, which a
// failing test prints.
(function () {
  'use strict';
  var q = new URLSearchParams(location.search);
  var st = window.state = { opened: 0, first: 0, sent: [], got: [], reconnecting: 0, closes: [], transport: '', leaderChanges: 0 };
  var endpoint = q.get('endpoint') || '/comet';
  // The tabs' channel (comet-share.js): a leader says so ('L') and
  // resigns ('B'). A change of leader fails the requests the last one
  // carried: its resignation, or another tab's 'L' without one (a tab
  // that took over from a leader that did not answer).
  var leader = '';
  var ch = new BroadcastChannel('comet-share ' + new URL(endpoint, location.href).href.replace(/\/+$/, ''));
  ch.onmessage = function (e) {
    var m = e.data || {};
    if (m.t == 'L' || m.t == 'B' || m.t == 'K' || m.t == 'P' || m.t == 'O') {
      console.log('share ' + m.t + ' from ' + m.from + (m.to ? ' to ' + m.to : ''));
    }
    if (m.t == 'B' && leader && m.from == leader) {
      if (st.opened) st.leaderChanges++;
      leader = '';
    }
    if (m.t == 'L' && m.from != leader) {
      if (leader && st.opened) st.leaderChanges++;
      leader = m.from;
    }
  };
  ch.postMessage({ t: '?', from: 'page' }); // the leader, if any, says who it is
  var c = window.comet = new Comet(endpoint, q.get('share') == '0' ? { share: false } : {});
  function send(m) {
    st.sent.push(m);
    c.send(m);
  }
  c.onopen = function () {
    st.opened = performance.now();
    st.transport = c.transport;
    if (q.get('hello')) send(q.get('hello'));
  };
  c.onmessage = function (e) {
    if (!st.first) st.first = performance.now();
    st.got.push(e.data);
  };
  c.addEventListener('reconnecting', function (e) {
    console.log('reconnecting ' + e.reason + ' ' + (e.transport || ''));
    st.reconnecting++;
  });
  c.addEventListener('transport', function () {
    st.transport = c.transport;
  });
  c.onclose = function (e) {
    st.closes.push([e.code, e.reason]);
  };
  // traffic sends n messages named prefix0, prefix1, … one every ms while
  // the session is open, and resolves once all are sent.
  window.traffic = function (prefix, n, ms) {
    return new Promise(function (resolve) {
      var i = 0;
      (function next() {
        if (i == n) return resolve(true);
        if (c.readyState == 1) send(prefix + i++);
        setTimeout(next, ms);
      })();
    });
  };
  // until resolves with true once cond() holds, or false after ms.
  window.until = function (cond, ms) {
    var t0 = Date.now();
    return new Promise(function (resolve) {
      (function check() {
        if (cond()) return resolve(true);
        if (Date.now() - t0 > ms) return resolve(false);
        setTimeout(check, 20);
      })();
    });
  };
})();
