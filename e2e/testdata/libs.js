// libs.js is the page script of the library cases (libs_*_test.go). The
// page loads the shim from the Comet handler, then three WebSocket
// libraries as their packages publish them for browsers
// (reconnecting-websocket, @stomp/stompjs, graphql-ws, pinned in
// e2e/browserlibs), then this script. The Go test calls
//
//	scenario(name, params)
//
// whose promise resolves with what the library saw. Each library is given
// Comet where it takes a WebSocket class or factory, and is otherwise used
// as its documentation shows; the one thing added is a watch on the Comets
// it makes, to tell the test about the transport drops the library must not
// see. params.transport is the one transport each Comet is forced onto;
// the server cuts every connection once half of params.n messages have
// crossed, and with params.drop the page waits for the drop that causes
// before it sends the second half (on long-poll the browser hides it).
(function () {
  'use strict';

  // Watch holds what a scenario waits on: until(what, cond) resolves once
  // cond() is true, checked again at every poke(), which every event
  // handler calls. The test's timeout bounds each wait; the console says
  // which wait it was.
  function Watch() {
    this.made = 0; // Comets made by the library
    this.drops = []; // the reasons of their reconnecting events
    this.waiters = [];
  }
  Watch.prototype.poke = function () {
    this.waiters = this.waiters.filter(function (w) {
      if (!w.cond()) return true;
      w.resolve();
      return false;
    });
  };
  Watch.prototype.until = function (what, cond) {
    var self = this;
    console.log('waiting for ' + what);
    return new Promise(function (resolve) {
      self.waiters.push({ cond: cond, resolve: resolve });
      self.poke();
    });
  };

  // cometClass returns what the libraries are given as their WebSocket
  // class: new C(url[, protocols]) is a Comet forced onto p.transport. It
  // passes protocols on only when the library gives some, so that it runs
  // on a shim without subprotocols too, and it carries the WebSocket
  // class's state constants, which graphql-ws and reconnecting-websocket
  // check for.
  function cometClass(p, w) {
    function C(url, protocols) {
      var options = {
        transports: [p.transport],
        debug: function (msg, data) {
          console.debug('comet: ' + msg + (data === undefined ? '' : ' ' + JSON.stringify(data)));
        }
      };
      var c = protocols === undefined ? new Comet(url, options) : new Comet(url, protocols, options);
      w.made++;
      c.addEventListener('reconnecting', function (e) {
        console.log('comet: reconnecting (' + e.reason + ')');
        w.drops.push(e.reason);
        w.poke();
      });
      return c;
    }
    C.CONNECTING = Comet.CONNECTING;
    C.OPEN = Comet.OPEN;
    C.CLOSING = Comet.CLOSING;
    C.CLOSED = Comet.CLOSED;
    return C;
  }

  function closeOf(e) {
    return { code: e.code, reason: e.reason, wasClean: e.wasClean };
  }

  var scenarios = {};

  // reconnectingWebSocket: texts echoed, p.n of them, half sent before a
  // drop and half after it; then the server closes the session as a
  // restarting server would, and the library, seeing a WebSocket close,
  // connects again (a second Comet) and sends what was sent while it was
  // closed; then the page closes it with 1000.
  scenarios.reconnectingWebSocket = async function (p) {
    var w = new Watch(), r = { sent: [], got: [], opens: 0, closes: [] }, i;
    var rws = new ReconnectingWebSocket(p.url, undefined, {
      WebSocket: cometClass(p, w),
      // A forced long-poll on a loaded machine may take more than the
      // default 4 s to open.
      connectionTimeout: 10000,
      minReconnectionDelay: 10,
      maxReconnectionDelay: 100,
      maxRetries: 3
    });
    rws.addEventListener('open', function () {
      r.opens++;
      w.poke();
    });
    rws.addEventListener('close', function (e) {
      console.log('close ' + JSON.stringify(closeOf(e)));
      r.closes.push(closeOf(e));
      w.poke();
    });
    rws.addEventListener('message', function (e) {
      r.got.push(e.data);
      w.poke();
    });
    function send(m) {
      r.sent.push(m);
      rws.send(m);
    }
    await w.until('open', function () { return r.opens == 1; });
    for (i = 1; i <= p.n / 2; i++) send('m' + i);
    await w.until('the first half of the echoes', function () { return r.got.length >= p.n / 2; });
    if (p.drop) await w.until('a drop', function () { return w.drops.length > 0; });
    for (; i <= p.n; i++) send('m' + i);
    await w.until('every echo', function () { return r.got.length >= p.n; });
    rws.send('restart-me');
    await w.until('the restart close', function () { return r.closes.length == 1; });
    // Sent while closed: the library queues it for the next connection.
    send('after the restart');
    await w.until('the new open and its echo', function () { return r.opens == 2 && r.got.length > p.n; });
    rws.close(1000, 'done');
    await w.until('the close', function () { return r.closes.length == 2; });
    r.readyState = rws.readyState;
    r.made = w.made;
    r.drops = w.drops;
    return r;
  };

  // stomp: a STOMP session; the page subscribes, then publishes p.n
  // messages to the destination it listens on, each with a receipt and a
  // header that needs STOMP 1.2's escapes, half before a drop and half
  // after; it unsubscribes, publishes once more (a receipt, no message),
  // and disconnects. p.protocols: the factory passes the library's
  // subprotocols (v12.stomp, v11.stomp, v10.stomp) to Comet, as the
  // library does with a WebSocket it makes itself.
  scenarios.stomp = async function (p) {
    var w = new Watch(), C = cometClass(p, w), i, sub, client;
    var r = { connects: 0, sent: [], sentNotes: [], got: [], notes: [], receipts: [], errors: [] };
    client = new StompJs.Client({
      webSocketFactory: function () {
        return p.protocols ? new C(p.url, client.stompVersions.protocolVersions()) : new C(p.url);
      },
      debug: function (s) { console.debug('stomp: ' + s); },
      onConnect: function (frame) {
        r.connects++;
        r.version = frame.headers.version;
        w.poke();
      },
      onStompError: function (frame) {
        r.errors.push(frame.headers.message + ': ' + frame.body);
        w.poke();
      },
      onWebSocketClose: function (e) {
        console.log('close ' + JSON.stringify(closeOf(e)));
        r.close = closeOf(e);
        w.poke();
      }
    });
    function receipt(id) {
      client.watchForReceipt(id, function (frame) {
        r.receipts.push(frame.headers['receipt-id']);
        w.poke();
      });
      return id;
    }
    function publish(i) {
      // Every character STOMP 1.2 escapes in a header, but no backslash
      // before c, n or r: stompjs 7.5.0 reads \\c back as \: (it undoes
      // the escapes one kind at a time).
      var body = 'message ' + i + ': naïve café ✓ 𝄞', note = 'a:b\\ c\nd\r' + i;
      r.sent.push(body);
      r.sentNotes.push(note);
      client.publish({ destination: '/topic/e2e', body: body, headers: { receipt: receipt('r-' + i), note: note } });
    }
    client.activate();
    await w.until('CONNECTED', function () { return r.connects == 1; });
    r.protocol = client.webSocket.protocol;
    sub = client.subscribe('/topic/e2e', function (m) {
      r.got.push(m.body);
      r.notes.push(m.headers.note);
      w.poke();
    });
    for (i = 1; i <= p.n / 2; i++) publish(i);
    await w.until('the first half of the messages and receipts', function () {
      return r.got.length >= p.n / 2 && r.receipts.length >= p.n / 2;
    });
    if (p.drop) await w.until('a drop', function () { return w.drops.length > 0; });
    for (; i <= p.n; i++) publish(i);
    await w.until('every message and receipt', function () {
      return r.got.length >= p.n && r.receipts.length >= p.n;
    });
    sub.unsubscribe();
    client.publish({ destination: '/topic/e2e', body: 'unheard', headers: { receipt: receipt('r-last') } });
    await w.until('the last receipt', function () { return r.receipts.length > p.n; });
    // It resolves once the WebSocket has closed, after DISCONNECT's
    // receipt.
    await client.deactivate();
    r.made = w.made;
    r.drops = w.drops;
    return r;
  };

  // graphqlWs: a graphql-transport-ws session. The page subscribes to
  // ticks (the server sends 0 at once, then one per echo), then runs p.n
  // echo queries one after another, half before a drop and half after;
  // the server's ping is answered by the library. Ending the subscription
  // leaves the lazy client with nothing to do, and it closes the socket
  // with 1000 itself.
  scenarios.graphqlWs = async function (p) {
    var w = new Watch(), i;
    var r = { connected: 0, ticks: [], echoes: [], pings: 0, pongs: 0, errors: [], ticksCompleted: false };
    var client = graphqlWs.createClient({
      url: p.url,
      webSocketImpl: cometClass(p, w),
      // A drop must not need the library's retry: Comet hides it.
      retryAttempts: 0,
      on: {
        connected: function (socket) {
          r.connected++;
          r.protocol = socket.protocol;
          w.poke();
        },
        ping: function (received) {
          if (received) r.pings++;
          w.poke();
        },
        pong: function (received) {
          if (!received) r.pongs++;
          w.poke();
        },
        closed: function (e) {
          console.log('close ' + JSON.stringify(closeOf(e)));
          r.close = closeOf(e);
          w.poke();
        },
        error: function (err) {
          r.errors.push(String(err));
          w.poke();
        }
      }
    });
    function failed(what) {
      return function (err) {
        r.errors.push(what + ': ' + JSON.stringify(err && err.code ? closeOf(err) : err));
        w.poke();
      };
    }
    var stopTicks = client.subscribe({ query: 'subscription { ticks }' }, {
      next: function (v) {
        r.ticks.push(v.data.ticks);
        w.poke();
      },
      error: failed('ticks'),
      complete: function () {
        r.ticksCompleted = true;
        w.poke();
      }
    });
    function echo(text) {
      return new Promise(function (resolve, reject) {
        var got = null;
        client.subscribe({ query: 'query Echo($text: String!) { echo(text: $text) }', variables: { text: text } }, {
          next: function (v) { got = v.data.echo; },
          error: function (err) {
            failed('echo ' + text)(err);
            reject(new Error('echo ' + text + ' failed'));
          },
          complete: function () {
            r.echoes.push(got);
            resolve();
          }
        });
      });
    }
    await w.until('the first tick', function () { return r.ticks.length == 1; });
    for (i = 1; i <= p.n / 2; i++) await echo('q' + i);
    if (p.drop) await w.until('a drop', function () { return w.drops.length > 0; });
    for (; i <= p.n; i++) await echo('q' + i);
    await w.until('every tick, and a ping answered', function () {
      return r.ticks.length > p.n && r.pings > 0 && r.pongs > 0;
    });
    stopTicks();
    await w.until('the close', function () { return r.close && r.ticksCompleted; });
    await client.dispose();
    r.made = w.made;
    r.drops = w.drops;
    return r;
  };

  window.scenario = function (name, params) {
    var run = scenarios[name];
    if (!run) return Promise.reject(new Error('no scenario ' + name));
    return run(params);
  };
})();
