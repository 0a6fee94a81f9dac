// fidelity.js runs one script against the browser's own WebSocket and
// against Comet, and records what a WebSocket user can see: the events in
// order (type, readyState, code, reason, wasClean, data), what each call
// returned or threw, and which handler or listener ran. The Go test
// (fidelity_test.go) evaluates this file in a page that has loaded the
// shim, then calls
//
//	fidelity(kind, url, name)
//
// with kind 'native' (new WebSocket(url)) or a Comet transport name (new
// Comet(url, {transports: [kind]})), and diffs the two recordings.
(function () {
  'use strict';

  // TYPES are the event types recorded: WebSocket's, then Comet's own,
  // which the test expects only where its list of deviations says.
  var TYPES = ['open', 'message', 'error', 'close', 'transport', 'reconnecting', 'gap', 'drain'];

  // After the close event the recording goes on for SETTLE ms, so that an
  // event that should not come at all (a second close, a late message)
  // shows up as a difference. LIMIT bounds a scenario that never closes.
  var SETTLE = 200, LIMIT = 10000;

  function make(kind, url) {
    return kind == 'native' ? new WebSocket(url) : new Comet(url, { transports: [kind] });
  }

  // show turns message data into a string: text as is, binary as its
  // class and bytes.
  function show(v) {
    if (typeof v == 'string') return v;
    if (v instanceof ArrayBuffer) return 'ArrayBuffer [' + Array.prototype.join.call(new Uint8Array(v), ',') + ']';
    return Object.prototype.toString.call(v);
  }

  function repeat(s, n) {
    return new Array(n + 1).join(s);
  }

  // utf8 is the length of s in UTF-8, a lone surrogate taken as U+FFFD.
  function utf8(s) {
    return new TextEncoder().encode(s).length;
  }

  // run runs scenario name on a socket of kind at url and resolves with
  // the recording.
  function run(kind, url, name) {
    return new Promise(function (resolve) {
      var log = [], done = false, limit, k;
      function end() {
        if (done) return;
        done = true;
        setTimeout(function () {
          clearTimeout(limit);
          resolve(log);
        }, SETTLE);
      }
      limit = setTimeout(function () {
        log.push({ ev: 'no close within ' + LIMIT + ' ms' });
        done = true;
        resolve(log);
        if (k.s) k.s.close();
      }, LIMIT);
      k = {
        s: null,
        kind: kind,
        url: url,
        // detail adds the event objects' class, target and fields to
        // each event (the event-objects scenario).
        detail: false,
        end: end,
        // open creates the socket (at u, else url) and records every
        // event on it, by listeners added before any of the scenario's.
        open: function (u) {
          var s;
          try {
            s = make(kind, u || url);
          } catch (err) {
            log.push(thrown('new', err));
            return null;
          }
          k.s = s;
          log.push({ call: 'new', rs: s.readyState });
          TYPES.forEach(function (type) {
            s.addEventListener(type, function (e) {
              log.push(k.event(e));
              if (type == 'close') end();
            });
          });
          return s;
        },
        // event describes e as a WebSocket user sees it.
        event: function (e, by) {
          var s = k.s, x = { ev: e.type, rs: s.readyState };
          if (by) x.by = by;
          if (e.type == 'close') {
            x.code = e.code;
            x.reason = e.reason;
            x.wasClean = e.wasClean;
          }
          if (e.type == 'message') x.data = show(e.data);
          if (k.detail) {
            x.cls = Object.prototype.toString.call(e).slice(8, -1);
            x.target = e.target === s;
            x.currentTarget = e.currentTarget === s;
            x.timeStamp = typeof e.timeStamp;
            if (e.type == 'message') {
              x.origin = typeof e.origin;
              x.lastEventId = e.lastEventId;
            }
          }
          return x;
        },
        // mark returns a handler that records the event as seen by label.
        mark: function (label) {
          return function (e) {
            log.push(k.event(e, label));
          };
        },
        // call records fn(socket): what it returned (if anything) and the
        // readyState after it, or what it threw. It reports whether fn
        // returned.
        call: function (label, fn) {
          var v, x;
          try {
            v = fn(k.s);
          } catch (err) {
            log.push(thrown(label, err));
            return false;
          }
          x = { call: label, rs: k.s ? k.s.readyState : -1 };
          if (v !== undefined) x.value = v;
          log.push(x);
          return true;
        },
        // abandon closes a socket that a step left open where the
        // standard's would be closing (a call threw where it should
        // not): the close event then ends the recording, which differs
        // already, instead of the time limit.
        abandon: function () {
          if (k.s.readyState < 2) k.s.close();
        },
        // on runs fn(n) on each event of type after the recording, with n
        // counting them from 1.
        on: function (type, fn) {
          var n = 0;
          k.s.addEventListener(type, function () {
            fn(++n);
          });
        }
      };
      try {
        scenarios[name](k);
      } catch (err) {
        log.push(thrown('scenario ' + name, err));
        end();
      }
    });
  }

  // thrown records an exception: its name, and whether it is a
  // DOMException, with its legacy code.
  function thrown(label, err) {
    return { call: label, threw: err && err.name, dom: typeof DOMException == 'function' && err instanceof DOMException, excode: err && err.code };
  }

  // closeWith returns a step closing with the given arguments.
  function closeWith(k) {
    var args = Array.prototype.slice.call(arguments, 1);
    return function () {
      k.call('close(' + args.map(function (a) {
        return typeof a == 'string' && a.length > 16 ? JSON.stringify(a.slice(0, 3)) + '… (' + utf8(a) + ' bytes)' : JSON.stringify(a);
      }).join(', ') + ')', function (s) {
        s.close.apply(s, args);
      });
    };
  }

  var scenarios = {
    // open, an echo, close(1000, 'Clean Close'): the server answers with
    // the same code and reason, as RFC 6455 servers usually do.
    'echo-close': function (k) {
      k.open();
      k.on('open', function () {
        k.call("send('hello')", function (s) {
          s.send('hello');
        });
      });
      k.on('message', closeWith(k, 1000, 'Clean Close'));
    },

    // close() without a code: the close event reports 1005.
    'close-no-code': function (k) {
      k.open();
      k.on('open', closeWith(k));
    },

    // close() while CONNECTING goes to CLOSING, and error then close
    // fire later, as a task: handlers set after close() still run.
    'close-connecting': function (k) {
      var s = k.open();
      k.call('close()', function (s) {
        s.close();
      });
      s.onerror = k.mark('onerror set after close()');
      s.onclose = k.mark('onclose set after close()');
    },

    // A reason with an unpaired surrogate is converted to U+FFFD (a
    // USVString), and its length measured after: 121 bytes and one lone
    // surrogate make 124 (SyntaxError), 120 and one make 123 (sent).
    'lone-surrogate-reason': function (k) {
      k.open();
      k.on('open', function () {
        k.call("close(1000, 121×'x' + '\\uD800')", function (s) {
          s.close(1000, repeat('x', 121) + '\uD800');
        });
        k.call("close(1000, 120×'x' + '\\uD800')", function (s) {
          s.close(1000, repeat('x', 120) + '\uD800');
        });
        k.abandon();
      });
    },

    // send() of text with an unpaired surrogate sends U+FFFD in its place.
    'lone-surrogate-send': function (k) {
      k.open();
      k.on('open', function () {
        if (!k.call("send('a\\uD800b')", function (s) {
          s.send('a\uD800b');
        })) k.abandon();
      });
      k.on('message', closeWith(k, 1000));
    },

    // send() with no argument throws TypeError, even while CONNECTING:
    // the argument is checked before the state.
    'send-no-arg': function (k) {
      k.open();
      k.call('send() while connecting', function (s) {
        s.send();
      });
      k.on('open', function () {
        k.call('send() while open', function (s) {
          s.send();
        });
        closeWith(k, 1000)();
      });
    },

    // send() after close() does not throw (the standard discards the data
    // and counts it in bufferedAmount). The close has no reason, so that
    // this scenario does not depend on the server's echo of it.
    'send-after-close': function (k) {
      k.open();
      k.on('open', function () {
        closeWith(k, 1000)();
        k.call("send('late')", function (s) {
          s.send('late');
          return { buffered: s.bufferedAmount };
        });
      });
    },

    // An invalid binaryType is ignored: the attribute keeps its value.
    'binary-type': function (k) {
      k.open();
      k.call('binaryType', function (s) {
        return s.binaryType;
      });
      k.call("binaryType = 'arraybuffer'", function (s) {
        s.binaryType = 'arraybuffer';
        return s.binaryType;
      });
      k.call("binaryType = 'bogus'", function (s) {
        s.binaryType = 'bogus';
        return s.binaryType;
      });
      k.on('open', function () {
        k.call('send(Uint8Array [1,2,3])', function (s) {
          s.send(new Uint8Array([1, 2, 3]));
        });
      });
      k.on('message', closeWith(k, 1000));
    },

    // An event handler attribute set to a non-object becomes null.
    'handler-non-function': function (k) {
      k.open();
      k.call('onopen = 2', function (s) {
        s.onopen = 2;
        return String(s.onopen);
      });
      k.call("onmessage = 'text'", function (s) {
        s.onmessage = 'text';
        return String(s.onmessage);
      });
      k.call('onclose = a function, then 7', function (s) {
        s.onclose = k.mark('onclose');
        s.onclose = 7;
        return String(s.onclose);
      });
      k.on('open', closeWith(k, 1000));
    },

    // on<event> handlers run in registration order with the listeners,
    // at the place where the handler was first set; set to null and set
    // again, it goes to the end.
    'handler-order': function (k) {
      var s = k.open();
      s.addEventListener('open', k.mark('listener A'));
      s.onopen = k.mark('onopen B');
      s.addEventListener('open', k.mark('listener C'));
      s.onmessage = k.mark('onmessage M1');
      s.addEventListener('message', k.mark('listener M2'));
      s.onmessage = k.mark('onmessage M3');
      s.onclose = k.mark('onclose X');
      s.onclose = null;
      s.addEventListener('close', k.mark('listener Y'));
      s.onclose = k.mark('onclose Z');
      k.on('open', function () {
        k.call("send('x')", function (s) {
          s.send('x');
        });
      });
      k.on('message', closeWith(k, 1000));
    },

    // Listener objects with handleEvent, the once option, and
    // dispatchEvent.
    'listener-forms': function (k) {
      var s = k.open();
      s.addEventListener('message', { handleEvent: k.mark('listener object') });
      s.addEventListener('message', k.mark('once listener'), { once: true });
      s.addEventListener('custom', k.mark('custom listener'));
      k.call("dispatchEvent(new Event('custom'))", function (s) {
        return s.dispatchEvent(new Event('custom'));
      });
      k.on('open', function () {
        k.call("send('one')", function (s) {
          s.send('one');
        });
      });
      k.on('message', function (n) {
        if (n == 1) {
          k.call("send('two')", function (s) {
            s.send('two');
          });
        } else {
          closeWith(k, 1000)();
        }
      });
    },

    // The event objects: their class, target, currentTarget, timeStamp,
    // and a message's origin and lastEventId.
    'event-objects': function (k) {
      k.detail = true;
      k.open();
      k.on('open', function () {
        k.call("send('hi')", function (s) {
          s.send('hi');
        });
      });
      k.on('message', closeWith(k, 1000));
    },

    // A URL with a fragment, even an empty one, throws SyntaxError; the
    // same URL without it opens (Comet is given it as ws:, to check the
    // mapping to http:).
    'url-fragment': function (k) {
      var url = k.url.replace(/^http/, 'ws');
      [url + '#frag', url + '#'].forEach(function (u) {
        k.call('new (url' + u.slice(url.length) + ')', function () {
          var s = make(k.kind, u);
          s.close();
          return 'constructed';
        });
      });
      k.open(url);
      k.on('open', closeWith(k, 1000));
    },

    // The server closes with a code and reason.
    'server-close': function (k) {
      k.open();
      k.on('open', function () {
        k.call("send('close-me')", function (s) {
          s.send('close-me');
        });
      });
    },

    // close() with a code out of range throws InvalidAccessError; with a
    // reason over 123 bytes of UTF-8, SyntaxError; neither closes.
    'close-exceptions': function (k) {
      k.open();
      k.on('open', function () {
        closeWith(k, 999)();
        closeWith(k, 5000)();
        closeWith(k, 1000, repeat('x', 124))();
        closeWith(k, 4000, repeat('é', 62))();
        closeWith(k, 4000, repeat('é', 61) + 'x')();
        k.abandon();
      });
    }
  };

  window.fidelity = function (kind, url, name) {
    console.log('fidelity ' + kind + ' ' + name + ' ' + url);
    return run(kind, url, name);
  };
  window.fidelityScenarios = Object.keys(scenarios);
})();
