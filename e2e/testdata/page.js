// page.js is the one page script of the browser tests. The Go test loads
// a page with the shim and this script, then calls
//
//	scenario(name, params)
//
// whose promise resolves with a JSON-able result for the test to check (or
// rejects with what went wrong). params.url is the Comet mount URL and
// params.options the Comet options; the transport under test is chosen by
// options.transports, so every scenario runs on every transport unchanged.
// Diagnostics go to the console, which the test prints on failure.
(function () {
  'use strict';

  // connect opens a session and wraps it: messages queue until taken,
  // and every event is recorded.
  function connect(p) {
    var options = p.options || {};
    var s = { queue: [], waiters: [], transports: [], reconnecting: 0, drops: [], errors: [], outages: [], delivering: {} };
    options.debug = function (msg, data) {
      track(s, msg, data);
      // p.brief leaves out the frames: a thousand console lines slow the
      // page the test is timing.
      if (p.brief && /^(up|down) /.test(msg)) return;
      console.debug('comet: ' + msg + (data === undefined ? '' : ' ' + JSON.stringify(data)));
    };
    var c = s.c = new Comet(p.url, options);
    s.opened = new Promise(function (resolve, reject) {
      c.onopen = function () {
        console.log('open on ' + c.transport);
        resolve();
      };
      s.closed = new Promise(function (done) {
        c.onclose = function (e) {
          var ev = { code: e.code, reason: e.reason, wasClean: e.wasClean, status: e.status, readyState: c.readyState };
          console.log('close ' + JSON.stringify(ev));
          reject(new Error('closed before open: ' + JSON.stringify(ev)));
          done(ev);
          var w = s.waiters.splice(0);
          for (var i = 0; i < w.length; i++) w[i].reject(new Error('closed while waiting: ' + JSON.stringify(ev)));
        };
      });
    });
    c.onerror = function (e) {
      console.log('error ' + JSON.stringify({ code: e.code, reason: e.reason, status: e.status }));
      s.errors.push({ code: e.code, status: e.status });
    };
    c.onmessage = function (e) {
      // performance.now() counts from the navigation's start.
      if (s.first == null) s.first = performance.now();
      if (s.waiters.length) s.waiters.shift().resolve(e.data);
      else s.queue.push(e.data);
    };
    c.addEventListener('transport', function (e) {
      console.log('transport ' + e.from + ' -> ' + e.transport + ' (' + e.reason + ')');
      s.transports.push({ transport: e.transport, from: e.from, reason: e.reason });
      // Any transport but long-polling is a candidate's win; a move from
      // long-polling leaves the early chain.
      if (e.transport != 'longpoll' || e.from == 'longpoll') decided(s);
    });
    c.addEventListener('reconnecting', function (e) {
      console.log('reconnecting ' + e.reason + ' ' + (e.transport || ''));
      s.reconnecting++;
      s.drops.push(e.reason);
      if (s.lost == null) s.lost = performance.now();
    });
    return s;
  }

  // track follows, through the debug hook, when the session is without a
  // live transport: an outage starts at a reconnecting event (the
  // attachment in use dropped) and ends when the open frame of the next
  // delivering attachment arrives (an "attach <transport> <attempt>" with
  // d=1, then a "down <transport> <attempt>" batch holding its open frame
  // ["o",<attempt>,…]), which is when the shim resumes delivering on it.
  // s.outages lists them as {from, to}, in ms from the navigation's start.
  //
  // It also notes when the first race is decided (s.decided, then
  // s.onDecided): when a poll numbered as the shim numbers its candidates
  // (above 1e9, PROTOCOL.md section 8) delivers, the race having ended on
  // long-polling; the transport listener notes the other ends.
  function track(s, msg, data) {
    var m = /^attach \S+ (\d+)$/.exec(msg);
    if (m && data && data.d) s.delivering[m[1]] = true;
    if (m && data && data.d && +m[1] > 1e9) decided(s);
    m = /^down \S+ (\d+)$/.exec(msg);
    if (m && s.lost != null && s.delivering[m[1]] && new RegExp('(^|\n)\\["o",' + m[1] + ',').test(data)) {
      s.outages.push({ from: s.lost, to: performance.now() });
      s.lost = null;
    }
  }

  // decided notes that the first race of s is decided.
  function decided(s) {
    if (s.decided) return;
    s.decided = true;
    console.log('race decided');
    if (s.onDecided) s.onDecided();
  }

  // settle resolves once the first race of s is decided, or after cap ms,
  // with which: 'race' or 'cap'. The early chain of polls opens a session
  // before its race ends; a scenario that means to see the race's winner
  // waits for it.
  function settle(s, cap) {
    return new Promise(function (resolve) {
      if (s.decided) return resolve('race');
      var timer = setTimeout(function () {
        s.onDecided = null;
        resolve('cap');
      }, cap);
      s.onDecided = function () {
        clearTimeout(timer);
        resolve('race');
      };
    });
  }

  // next resolves with the next message of s.
  function next(s) {
    if (s.queue.length) return Promise.resolve(s.queue.shift());
    return new Promise(function (resolve, reject) {
      s.waiters.push({ resolve: resolve, reject: reject });
    });
  }

  // take resolves with the next n messages of s.
  function take(s, n) {
    var out = [];
    function loop() {
      if (out.length == n) return Promise.resolve(out);
      return next(s).then(function (m) {
        out.push(m);
        return loop();
      });
    }
    return loop();
  }

  // finish closes s normally and resolves with the common result fields.
  function finish(s, extra) {
    var closingAt = performance.now();
    // An outage still open when the page closes ends with the close.
    if (s.lost != null) s.outages.push({ from: s.lost, to: closingAt });
    s.lost = null;
    s.c.close(1000, 'done');
    return s.closed.then(function (close) {
      var r = { transport: s.c.transport, transports: s.transports, reconnecting: s.reconnecting, errors: s.errors, close: close,
        outages: s.outages, closingAt: closingAt };
      for (var k in extra) r[k] = extra[k];
      return r;
    });
  }

  function hex(buf) {
    var b = new Uint8Array(buf), out = '';
    for (var i = 0; i < b.length; i++) out += (b[i] < 16 ? '0' : '') + b[i].toString(16);
    return out;
  }

  // describe turns a message into something JSON can carry: text as is,
  // binary as {kind, hex}.
  function describe(m) {
    if (typeof m == 'string') return Promise.resolve({ kind: 'string', text: m });
    if (m instanceof ArrayBuffer) return Promise.resolve({ kind: 'arraybuffer', hex: hex(m) });
    if (m instanceof Blob) {
      return m.arrayBuffer().then(function (b) {
        return { kind: 'blob', hex: hex(b) };
      });
    }
    return Promise.resolve({ kind: typeof m + ':' + Object.prototype.toString.call(m) });
  }

  // sequence sends n messages and checks that the n echoes come back
  // exactly, in order. It reports only the count and the first mismatch:
  // the test needs no thousand-message result.
  function sequence(s, n, prefix) {
    var i;
    for (i = 0; i < n; i++) s.c.send(prefix + i);
    return take(s, n).then(function (got) {
      var bad = -1;
      for (i = 0; i < n && bad < 0; i++) if (got[i] !== prefix + i) bad = i;
      return { count: got.length, firstBad: bad, sample: bad < 0 ? '' : JSON.stringify(got.slice(bad, bad + 3)) };
    });
  }

  // sendRange sends m<from> to m<to-1>, then marker: p.batch messages every
  // p.every ms if p.every is set, otherwise all at once.
  function sendRange(s, from, to, marker, p) {
    return new Promise(function (resolve) {
      var i = from;
      (function tick() {
        var end = p.every ? Math.min(to, i + p.batch) : to;
        for (; i < end; i++) s.c.send('m' + i);
        if (i < to) return setTimeout(tick, p.every);
        s.c.send(marker);
        resolve();
      })();
    });
  }

  // until resolves with every message of s before marker, appended to got.
  function until(s, marker, got) {
    return next(s).then(function (m) {
      if (m === marker) return got;
      got.push(m);
      return until(s, marker, got);
    });
  }

  var TEXTS = ['hello', '', 'héllo wörld ✓ 😀', 'line\nbreak\r\ttab', 'sep\u2028\u2029', 'quote " back \\ slash', '{"json":[1,2]}'];

  var scenarios = {
    // echo sends a set of awkward texts and expects them back; with
    // p.settle, once the first race is decided (see settle; p.settle ms
    // at most).
    echo: function (p) {
      var s = connect(p), settled;
      return s.opened.then(function () {
        return p.settle && settle(s, p.settle);
      }).then(function (how) {
        settled = how;
        for (var i = 0; i < TEXTS.length; i++) s.c.send(TEXTS[i]);
        return take(s, TEXTS.length);
      }).then(function (got) {
        return finish(s, { sent: TEXTS, got: got, settled: settled });
      });
    },

    // binary sends binary in every form send takes and reads the echoes
    // as ArrayBuffer, then as Blob; text between keeps its place even
    // behind a Blob that must be read first.
    binary: function (p) {
      var s = connect(p), all = new Uint8Array(256), got = [];
      for (var i = 0; i < 256; i++) all[i] = i;
      function round(type) {
        s.c.binaryType = type;
        s.c.send(all.buffer);
        s.c.send(all.subarray(250, 256));
        s.c.send(new DataView(all.buffer, 1, 2));
        s.c.send(new Blob([all.subarray(0, 3)]));
        s.c.send('after blob');
        s.c.send(new ArrayBuffer(0));
        return take(s, 6).then(function (ms) {
          return Promise.all(ms.map(describe));
        }).then(function (ds) {
          got.push({ binaryType: type, messages: ds });
        });
      }
      return s.opened.then(function () {
        return round('arraybuffer');
      }).then(function () {
        return round('blob');
      }).then(function () {
        return finish(s, { rounds: got });
      });
    },

    // many sends n messages and expects n echoes, exact and in order.
    many: function (p) {
      var s = connect(p);
      return s.opened.then(function () {
        return sequence(s, p.n, 'm');
      }).then(function (r) {
        return finish(s, r);
      });
    },

    // exchange sends p.n messages (paced by p.every and p.batch) and
    // collects every echo, up to a marker sent last, so that the test can
    // count the lost, the duplicated and the out of order. The first goes
    // alone, and the rest once its echo is back, so that the time to the
    // first message is not the time to send them all. With p.idle it
    // stops halfway, collects the first half, and sends nothing for
    // p.idle ms; with p.settle it stops halfway until the first race is
    // decided (see settle; p.settle ms at most). It reports when the first
    // message arrived and when the session opened, in ms from the
    // navigation's start.
    exchange: function (p) {
      var s = connect(p), half = p.idle || p.settle ? p.n / 2 : p.n, got = [], opened, settled;
      return s.opened.then(function () {
        opened = performance.now();
        s.c.send('m0');
        return next(s);
      }).then(function (m) {
        got.push(m);
        return Promise.all([sendRange(s, 1, half, 'half', p), until(s, 'half', got)]);
      }).then(function () {
        if (p.settle) return settle(s, p.settle);
        if (!p.idle) return;
        console.log('idle for ' + p.idle + ' ms');
        return new Promise(function (resolve) {
          setTimeout(resolve, p.idle);
        });
      }).then(function (how) {
        settled = how;
        return Promise.all([sendRange(s, half, p.n, 'end', p), until(s, 'end', got)]);
      }).then(function () {
        return finish(s, { got: got, first: s.first, openedAt: opened, drops: s.drops, settled: settled });
      });
    },

    // closeByPage closes with p.code once an echo proved the session.
    closeByPage: function (p) {
      var s = connect(p);
      return s.opened.then(function () {
        s.c.send('hi');
        return next(s);
      }).then(function () {
        s.c.close(p.code, p.reason);
        return s.closed;
      });
    },

    // closeByServer asks the server to close and reports the close.
    closeByServer: function (p) {
      var s = connect(p);
      return s.opened.then(function () {
        s.c.send('close-me');
        return s.closed;
      });
    },

    // refused expects the session to end before it opens, and then
    // waits p.quiet ms for a retry that must not come (the test counts
    // the requests the server saw).
    refused: function (p) {
      var s = connect(p), opened = false;
      s.opened.then(function () {
        opened = true;
      }, function () {});
      return s.closed.then(function (close) {
        return new Promise(function (resolve) {
          setTimeout(function () {
            resolve({ opened: opened, close: close, errors: s.errors, reconnecting: s.reconnecting, readyState: s.c.readyState });
          }, p.quiet || 0);
        });
      });
    },

    // remembered reports what the shim keeps in localStorage.
    remembered: function () {
      var out = {};
      for (var i = 0; i < localStorage.length; i++) {
        var k = localStorage.key(i);
        if (k.indexOf('comet:') == 0) out[k] = JSON.parse(localStorage.getItem(k));
      }
      return Promise.resolve(out);
    }
  };

  window.scenario = function (name, p) {
    console.log('scenario ' + name + ' ' + JSON.stringify(p));
    return scenarios[name](p);
  };
})();
