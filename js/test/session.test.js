'use strict';
// The session over fake globals, through the public API only, against the
// sources and both shipped files: choice and fallback, proof and commit,
// resume, acks, buffering, auth failure, memory and reconnect (closing is
// in close.test.js, the API's surface in api.test.js). Tests of the first
// race that answer no early long-poll probe start as a page that
// remembers WebSocket working (raceAlone), which sends none: they show the
// race alone, and early.test.js shows it beside the early chain.

const test = require('node:test');
const assert = require('node:assert/strict');
const { ThrowingStorage } = require('./fakes');
const { BUILDS, start, negotiate, frames, wsFrames, openWebSocket, openFrame, postOK, proveStream } = require('./harness');

for (const [build, make] of Object.entries(BUILDS)) {
  const Comet = make();
  const it = (name, fn) => test(`${build}: ${name}`, fn);

  it('WebSocket counts only after a probe echo, then is committed', () => {
    const t = start(Comet);
    negotiate(t);
    const ws = t.net.last('websocket');
    assert.equal(ws.url.slice(0, 30), 'wss://example.test/comet/webso');
    assert.equal(ws.query.d, '0');
    assert.equal(ws.query.t, 'T2');
    ws.open();
    ws.message(openFrame(ws));
    assert.equal(t.c.readyState, Comet.CONNECTING, 'the open frame alone proves nothing');
    const probe = wsFrames(ws).find((f) => f[0] === 'p');
    ws.message(`["e",${JSON.stringify(probe[2])}]`);
    assert.equal(t.c.readyState, Comet.OPEN);
    assert.deepEqual(wsFrames(ws).pop(), ['u', Number(ws.query.a)]);
    assert.equal(t.c.transport, 'websocket');
    assert.deepEqual(t.events.map((e) => e.type), ['transport', 'open']);
    assert.equal(t.net.count('sse'), 0, 'no HTTP transport raced a WebSocket proven in time');
    t.clock.tick(10000);
    assert.equal(t.net.count('sse'), 0);
  });

  it('open and transport carry the negotiate round trip and the heartbeat in force', () => {
    const t = start(Comet);
    openWebSocket(t);
    for (const e of [t.of('transport')[0], t.of('open')[0]]) {
      assert.deepEqual([e.transport, e.from, e.reason, e.rtt, e.heartbeat], ['websocket', '', '', 20, 25000], e.type);
    }
  });

  it('a transport event after a fallback carries the new transport\'s interval (long-polling: the hold)', () => {
    const t = start(Comet, { raceAlone: true, without: ['WebSocket', 'EventSource'] });
    negotiate(t, {}, 30);
    t.clock.tick(420); // the stream's open frame never arrives: minTimeout + 4 RTT
    const poll = t.net.last('longpoll');
    poll.respond(200, openFrame(poll, 0, 'TX', 20000));
    const e = t.of('transport')[0];
    assert.deepEqual([e.transport, e.reason, e.rtt, e.heartbeat], ['longpoll', 'stream_buffered', 30, 20000]);
    assert.equal(t.of('open')[0].heartbeat, 20000);
  });

  it('a refused WebSocket starts SSE at once, reporting ws_refused', () => {
    const t = start(Comet, { raceAlone: true });
    negotiate(t);
    t.net.last('websocket').fail();
    const es = t.net.last('sse');
    assert.ok(es, 'SSE started without waiting for the head start');
    assert.equal(es.query.why, 'ws_refused');
    proveStream(t, es);
    const commit = frames(t.net.last('send').body);
    assert.deepEqual(commit.pop(), ['u', Number(es.query.a)]);
    assert.equal(t.c.readyState, Comet.OPEN);
    assert.deepEqual(t.of('transport').map((e) => [e.transport, e.reason]), [['sse', 'ws_refused']]);
  });

  for (const [name, upgrade, why] of [['hung', false, 'ws_hung'], ['black-holed after 101', true, 'ws_silent']]) {
    it(`a ${name} WebSocket is raced after its head start and closed when HTTP wins`, () => {
      const t = start(Comet, { raceAlone: true });
      negotiate(t, {}, 20);
      const ws = t.net.last('websocket');
      if (upgrade) ws.open();
      t.clock.tick(249);
      assert.equal(t.net.count('sse'), 0, 'WebSocket has a head start');
      t.clock.tick(1);
      const es = t.net.last('sse');
      assert.equal(es.query.why, why);
      assert.equal(es.query.d, '0');
      proveStream(t, es);
      assert.equal(t.c.transport, 'sse');
      assert.ok(ws.closedByClient, 'the losing WebSocket is closed');
      ws.message(openFrame(ws));
      assert.equal(t.c.transport, 'sse', 'callbacks of the abandoned attempt are ignored');
      assert.ok(t.clock.t - 1_000_000 < 1000, 'open within a second');
    });
  }

  it('a WebSocket proven after HTTP started still wins, and the stream is closed', () => {
    const t = start(Comet, { raceAlone: true });
    negotiate(t);
    const ws = t.net.last('websocket');
    t.clock.tick(250);
    const es = t.net.last('sse');
    ws.open();
    const probe = wsFrames(ws).find((f) => f[0] === 'p');
    ws.message(openFrame(ws) + `["e",${JSON.stringify(probe[2])}]`);
    assert.equal(t.c.transport, 'websocket');
    assert.ok(es.closedByClient);
  });

  it('a stream whose open frame does not arrive in time goes to long-polling', () => {
    const t = start(Comet, { raceAlone: true, without: ['WebSocket', 'EventSource'] });
    negotiate(t, {}, 20);
    const xs = t.net.last('streaming');
    assert.ok(xs, 'XHR streaming where EventSource is missing');
    xs.progress(' '.repeat(2048) + '\n');
    t.clock.tick(380); // minTimeout + 4 RTT
    assert.ok(xs.aborted);
    const poll = t.net.last('longpoll');
    assert.equal(poll.query.why, 'stream_buffered');
    assert.equal(poll.query.d, '0');
    poll.respond(200, openFrame(poll));
    assert.equal(t.c.readyState, Comet.OPEN);
    assert.equal(t.c.transport, 'longpoll');
    const next = t.net.last('longpoll');
    assert.equal(next.query.d, '1');
    next.respond(200, openFrame(next) + '["m",1,"hi"]\n');
    assert.deepEqual(t.messages(), ['hi']);
    assert.equal(t.net.last('longpoll').query.ack, '1', 'the next poll carries the ack');
  });

  it('XHR streaming keeps partial lines across chunks', () => {
    const t = start(Comet, { without: ['WebSocket', 'EventSource'] });
    negotiate(t);
    const xs = t.net.last('streaming');
    xs.progress(' '.repeat(2048) + '\n' + openFrame(xs).slice(0, 7));
    xs.progress(openFrame(xs).slice(7));
    const post = t.net.last('send');
    const probe = frames(post.body).find((f) => f[0] === 'p');
    postOK(post, 0);
    xs.progress(`["e",${JSON.stringify(probe[2])}]\n["m",1,"he`);
    xs.progress('llo"]\n');
    assert.deepEqual(t.messages(), ['hello']);
  });

  it('a stream whose probe echo is late mid-session is left for long-polling', () => {
    const t = start(Comet, { without: ['WebSocket'] });
    negotiate(t);
    const es = proveStream(t, t.net.last('sse'));
    postOK(t.net.last('send'), 0);
    t.clock.tick(25000); // a quiet interval: probe
    const post = t.net.last('send');
    assert.ok(frames(post.body).some((f) => f[0] === 'p'));
    postOK(post, 0);
    t.clock.tick(500);
    assert.ok(es.closedByClient);
    const poll = t.net.last('longpoll');
    assert.equal(poll.query.why, 'stream_buffered');
    assert.equal(poll.query.d, '1');
    assert.deepEqual(t.of('reconnecting').map((e) => e.reason), ['stream_buffered']);
    assert.equal(t.c.readyState, Comet.OPEN, 'readyState stays OPEN while the transport is replaced');
  });

  it('heartbeats arriving in a burst mean a buffering proxy', () => {
    const t = start(Comet, { without: ['WebSocket'] });
    negotiate(t);
    const es = proveStream(t, t.net.last('sse'));
    t.clock.tick(20000);
    es.message('["h"]');
    es.message('["h"]');
    assert.ok(es.closedByClient);
    t.clock.tick(0);
    assert.equal(t.net.last('longpoll').query.why, 'stream_buffered');
  });

  it('a late timer never demotes a stream', () => {
    const t = start(Comet, { raceAlone: true, without: ['WebSocket'] });
    negotiate(t);
    const es = proveStream(t, t.net.last('sse'));
    postOK(t.net.last('send'), 0);
    t.clock.jump(120000); // a frozen page: the watchdog fires two minutes late
    t.clock.tick(0);
    assert.ok(!es.closedByClient, 'a late verdict is given another period');
    es.message('["h"]');
    t.clock.tick(20000);
    assert.ok(!es.closedByClient);
    assert.equal(t.net.count('longpoll'), 0);
  });

  it('resume after a drop loses and duplicates nothing, both ways', () => {
    const t = start(Comet);
    const ws = openWebSocket(t);
    t.c.send('u1');
    t.c.send('u2');
    ws.message('["a",1]\n["m",1,"d1"]\n["m",2,"d2"]\n');
    t.clock.tick(200);
    ws.fail();
    assert.deepEqual(t.of('reconnecting').map((e) => e.transport), ['websocket']);
    assert.equal(t.c.readyState, Comet.OPEN);
    t.c.send('u3');
    t.clock.tick(200); // a short-lived attachment's drop backs off a little
    const ws2 = t.net.last('websocket');
    assert.notEqual(ws2, ws);
    assert.equal(ws2.query.d, '1', 'a resume delivers at once');
    assert.equal(ws2.query.ack, '2');
    ws2.open();
    // The server had u1 only, and resends d2, which the client has.
    ws2.message(openFrame(ws2, 1) + '["m",2,"d2"]\n["m",3,"d3"]\n');
    t.clock.tick(200);
    const up = wsFrames(ws2).filter((f) => f[0] === 'm').map((f) => [f[1], f[2]]);
    assert.deepEqual(up, [[2, 'u2'], [3, 'u3']]);
    assert.deepEqual(t.messages(), ['d1', 'd2', 'd3']);
    assert.equal(t.of('close').length, 0);
  });

  it('bufferedAmount counts bytes until the server acknowledges them, then drain', () => {
    const t = start(Comet);
    const ws = openWebSocket(t);
    t.c.send('héllo'); // 6 bytes of UTF-8
    t.c.send(new Uint8Array([1, 2, 3]));
    assert.equal(t.c.bufferedAmount, 9);
    ws.message('["a",1]');
    assert.equal(t.c.bufferedAmount, 3);
    assert.equal(t.of('drain').length, 0);
    ws.message('["a",2]');
    assert.equal(t.c.bufferedAmount, 0);
    assert.equal(t.of('drain').length, 1);
    assert.deepEqual(wsFrames(ws).filter((f) => f[0] !== 'p' && f[0] !== 'u'), [['m', 1, 'héllo'], ['b', 2, 'AQID']]);
  });

  it('send refuses what it cannot deliver, with clear errors', () => {
    const t = start(Comet, { options: { maxBuffered: 10 } });
    assert.throws(() => t.c.send('x'), { name: 'InvalidStateError' });
    openWebSocket(t, { maxMessage: 8 });
    assert.throws(() => t.c.send('123456789'), { name: 'SyntaxError' });
    assert.throws(() => t.c.send('a\ud800'), TypeError);
    t.c.send('12345678');
    assert.throws(() => t.c.send('123'), { name: 'QuotaExceededError' });
    assert.equal(t.c.bufferedAmount, 8, 'nothing refused was queued');
  });

  it('limits missing from or invalid in the negotiate response take their defaults', () => {
    const t = start(Comet);
    openWebSocket(t, { maxMessage: undefined, maxBatch: 0, windowMessages: 'x' });
    t.c.send('a'.repeat(65536));
    assert.throws(() => t.c.send('a'.repeat(65537)), { name: 'SyntaxError' }, 'maxMessage defaults to 64 KiB');
  });

  it('binary without typed arrays throws a clear error', () => {
    const t = start(Comet, { without: ['ArrayBuffer', 'btoa'] });
    openWebSocket(t);
    assert.throws(() => t.c.send(new Uint8Array(2)), /typed arrays/);
  });

  it('a Blob read asynchronously keeps its place in the order', async () => {
    const t = start(Comet);
    const ws = openWebSocket(t);
    t.c.send('a');
    t.c.send(new Blob([new Uint8Array([255])]));
    t.c.send('c');
    assert.deepEqual(wsFrames(ws).filter((f) => f[0] === 'm' || f[0] === 'b').map((f) => f[1]), [1]);
    await t.b.reads.shift()();
    assert.deepEqual(wsFrames(ws).filter((f) => f[0] === 'm' || f[0] === 'b'), [['m', 1, 'a'], ['b', 2, '/w=='], ['m', 3, 'c']]);
  });

  it('binary messages follow binaryType', async () => {
    const t = start(Comet);
    const ws = openWebSocket(t);
    assert.equal(t.c.binaryType, 'blob');
    ws.message('["b",1,"AQID"]');
    t.c.binaryType = 'arraybuffer';
    ws.message('["b",2,"BAU="]');
    const [blob, buf] = t.messages();
    assert.deepEqual([...new Uint8Array(await blob.arrayBuffer())], [1, 2, 3]);
    assert.ok(buf instanceof ArrayBuffer);
    assert.deepEqual([...new Uint8Array(buf)], [4, 5]);
  });

  it('acks: at once at half the window, after ackDelay otherwise, and in reply to heartbeats', () => {
    const t = start(Comet);
    const ws = openWebSocket(t); // windowMessages 8
    const acks = () => wsFrames(ws).filter((f) => f[0] === 'a').map((f) => f[1]);
    ws.message('["m",1,"a"]');
    assert.deepEqual(acks(), []);
    t.clock.tick(199);
    assert.deepEqual(acks(), []);
    t.clock.tick(1);
    assert.deepEqual(acks(), [1]);
    ws.message('["m",2,"a"]\n["m",3,"a"]\n["m",4,"a"]\n["m",5,"a"]');
    assert.deepEqual(acks(), [1, 5]);
    ws.message('["h"]');
    assert.deepEqual(acks(), [1, 5, 5]);
  });

  it('tickets: a key-only POST asks for one when the pool is empty', () => {
    const t = start(Comet, { without: ['WebSocket', 'EventSource'] });
    negotiate(t, { tickets: [] });
    const post = t.net.last('send');
    assert.deepEqual(frames(post.body), [['k', 'K1', 0, 1]]);
    assert.equal(post.headers['Content-Type'], 'text/plain;charset=UTF-8');
    postOK(post, 0, 'FRESH');
    assert.equal(t.net.last('streaming').query.t, 'FRESH');
  });

  it('a refused ticket is an attach failure: the next attach takes a fresh one', () => {
    const t = start(Comet, { without: ['WebSocket', 'EventSource'] });
    negotiate(t);
    assert.equal(t.net.last('streaming').query.t, 'T2');
    t.net.last('streaming').respond(403, '{"code":"bad_ticket"}');
    const post = t.net.last('send');
    assert.deepEqual(frames(post.body), [['k', 'K1', 0, 1]], 'the pool is out of step: a key-only POST asks for a ticket');
    postOK(post, 0, 'FRESH');
    assert.equal(t.net.last('longpoll').query.t, 'FRESH');
    assert.equal(t.of('close').length, 0);
  });

  it('the first POST of a session that fails is sent again, after a backoff', () => {
    // Its failure count started undefined, and the backoff of NaN was no
    // wait at all: the message stayed counted as sent, and never went.
    const t = start(Comet, { options: { transports: ['longpoll'] } });
    negotiate(t);
    const first = t.net.last('longpoll');
    first.respond(200, openFrame(first, 0, 'T3'));
    t.c.send('one');
    const post = t.net.last('send');
    post.respond(0, '');
    t.clock.tick(300); // the first backoff is 125 to 250 ms
    const again = t.net.last('send');
    assert.notEqual(again, post, 'sent again');
    assert.deepEqual(frames(again.body).slice(1), [['m', 1, 'one']]);
  });

  it('a cut poll re-sent by the browser with its spent ticket resumes with a fresh ticket', () => {
    const t = start(Comet, { options: { transports: ['longpoll'] } });
    negotiate(t);
    const first = t.net.last('longpoll');
    first.respond(200, openFrame(first, 0, 'T3'));
    assert.equal(t.c.readyState, Comet.OPEN);
    const poll = t.net.last('longpoll');
    assert.equal(poll.query.d, '1');
    poll.respond(200, openFrame(poll, 0, 'T4') + '["m",1,"d1"]\n');
    const cut = t.net.last('longpoll');
    assert.notEqual(cut, poll);
    t.clock.tick(1000);
    // The connection was cut; the browser sent the GET again, ticket and
    // all, and the server refused the spent ticket.
    cut.respond(403, '{"code":"bad_ticket"}');
    assert.deepEqual(t.of('close'), [], 'not the end of the session');
    t.clock.tick(6000); // any backoff
    const post = t.net.last('send');
    assert.ok(post, 'a key-only POST asks for a fresh ticket');
    assert.deepEqual(frames(post.body)[0], ['k', 'K1', 1, 1]);
    postOK(post, 0, 'FRESH');
    t.clock.tick(6000);
    const again = t.net.last('longpoll');
    assert.notEqual(again, cut);
    assert.equal(again.query.t, 'FRESH');
    assert.equal(again.query.ack, '1');
    again.respond(200, openFrame(again, 0) + '["m",2,"d2"]\n');
    assert.deepEqual(t.messages(), ['d1', 'd2']);
    assert.equal(t.of('close').length, 0);
  });

  it('the grace clock starts at the first failed resume, not at a drop that never came', () => {
    const t = start(Comet, { options: { transports: ['longpoll'] } });
    negotiate(t);
    const first = t.net.last('longpoll');
    first.respond(200, openFrame(first));
    const t0 = t.clock.t;
    for (let i = 0; i < 100 && !t.of('close').length; i++) {
      const poll = t.net.last('longpoll');
      if (!poll.done) poll.respond(0, '');
      t.clock.tick(1000);
    }
    const [ev] = t.of('close');
    assert.equal(ev && ev.code, 3000);
    assert.ok(t.clock.t - t0 > 30000, 'only after the grace period');
  });

  it('an expired session at attach is reported as 3000', () => {
    const t = start(Comet, { without: ['WebSocket', 'EventSource'] });
    negotiate(t);
    const xs = proveStream(t, t.net.last('streaming'));
    xs.fail();
    t.clock.tick(150);
    const again = t.net.last('streaming');
    assert.notEqual(again, xs);
    assert.equal(again.query.d, '1');
    again.respond(404, '{"code":"session_not_found"}');
    assert.deepEqual(t.of('close').map((e) => [e.code, e.wasClean]), [[3000, false]]);
  });

  it('storage that throws leaves the session working', () => {
    const t = start(Comet, { storage: new ThrowingStorage() });
    openWebSocket(t);
    assert.equal(t.c.readyState, Comet.OPEN);
  });

  it('a remembered transport starts at once; WebSocket is probed in the background and upgrades live', () => {
    const first = start(Comet, { raceAlone: true });
    negotiate(first);
    first.net.last('websocket').fail();
    proveStream(first, first.net.last('sse'));
    const storage = first.b.globals.localStorage;
    const t = start(Comet, { storage });
    negotiate(t);
    const es = t.net.last('sse');
    const ws = t.net.last('websocket');
    assert.ok(es && ws, 'both start at once');
    assert.equal(ws.query.why, 'upgraded');
    proveStream(t, es);
    assert.equal(t.c.transport, 'sse');
    ws.open();
    const probe = wsFrames(ws).find((f) => f[0] === 'p');
    ws.message(openFrame(ws) + `["e",${JSON.stringify(probe[2])}]`);
    assert.equal(t.c.transport, 'websocket');
    assert.ok(es.closedByClient);
    assert.deepEqual(t.of('transport').map((e) => [e.from, e.transport, e.reason]), [['', 'sse', ''], ['sse', 'websocket', 'upgraded']]);
    assert.match(storage.getItem('comet:https://example.test/comet'), /"t":"websocket"/);
  });

  it('an idle cut shortens the heartbeat instead of demoting', () => {
    const t = start(Comet);
    let ws = openWebSocket(t);
    for (let i = 0; i < 2; i++) {
      t.clock.tick(15000);
      ws.fail();
      t.clock.tick(200);
      ws = t.net.last('websocket');
      ws.open();
      ws.message(openFrame(ws));
    }
    assert.equal(ws.query.why, 'idle_cut');
    assert.equal(ws.query.hb, '7500');
    assert.equal(t.c.transport, 'websocket');
    assert.deepEqual(t.of('reconnecting').map((e) => [e.reason, e.heartbeat]), [['dropped', 0], ['idle_cut', 7500]],
      'reconnecting says which heartbeat the resume asks for (0: the server\'s)');
  });

  it('a superseded downstream from an old attempt is discarded', () => {
    const t = start(Comet, { without: ['WebSocket', 'EventSource'] });
    negotiate(t);
    const xs = t.net.last('streaming');
    xs.progress(`["o",${Number(xs.query.a) + 7},0,"T",25000]\n["m",1,"from elsewhere"]\n`);
    assert.ok(xs.aborted, 'an open frame naming another attempt ends that downstream');
    assert.deepEqual(t.messages(), []);
  });

  it('reconnect opens a fresh session after an expiry and signals the gap', () => {
    const t = start(Comet, { options: { reconnect: true } });
    const ws = openWebSocket(t);
    t.c.send('lost?');
    ws.message('["c",1,3000,"expired",0]');
    assert.equal(t.c.readyState, Comet.OPEN);
    assert.equal(t.of('close').length, 0);
    const r = t.of('reconnecting').pop();
    assert.equal(r.fresh, true);
    t.c.send('queued for the new session');
    t.clock.tick(r.delay);
    negotiate(t, { sid: 'S2' });
    const ws2 = t.net.last('websocket');
    ws2.open();
    const probe = wsFrames(ws2).find((f) => f[0] === 'p');
    ws2.message(openFrame(ws2) + `["e",${JSON.stringify(probe[2])}]`);
    const [gap] = t.of('gap');
    assert.deepEqual([gap.code, gap.dropped], [3000, 1]);
    assert.deepEqual(wsFrames(ws2).find((f) => f[0] === 'm'), ['m', 1, 'queued for the new session']);
  });

  it('pagehide tells the server with a beacon', () => {
    const t = start(Comet);
    openWebSocket(t);
    t.c.send('unacked');
    t.b.fire('pagehide');
    const [beacon] = t.b.beacons;
    assert.equal(beacon.endpoint, 'send');
    assert.deepEqual(frames(beacon.body), [['k', 'K1', 0, 0], ['m', 1, 'unacked'], ['c', 2, 1001, '', 0]]);
    assert.deepEqual(t.of('close').map((e) => e.code), [1001]);
  });

  it('a drop resumes at once; only early drops in a row back off, and a resume up for a second starts over', () => {
    const t = start(Comet, { options: { transports: ['websocket'] } });
    let ws = openWebSocket(t);
    // waitForNext returns how long the next WebSocket took to be opened.
    const waitForNext = () => {
      const before = t.net.count('websocket');
      let waited = 0;
      while (t.net.count('websocket') === before && waited < 10000) {
        t.clock.tick(10);
        waited += 10;
      }
      ws = t.net.last('websocket');
      return waited;
    };
    t.clock.tick(3000);
    ws.fail(); // lived 3 s: resumed at once
    assert.equal(waitForNext(), 10, 'the first resume waits no backoff');
    const waits = [];
    for (let i = 0; i < 4; i++) {
      ws.open();
      ws.message(openFrame(ws, 0));
      t.clock.tick(200);
      ws.fail(); // accepted, then dropped at once: a failure in a row
      waits.push(waitForNext());
    }
    assert.ok(waits[0] <= 100 && waits[3] > waits[0], `early drops in a row back off, growing: ${waits}`);
    ws.open();
    ws.message(openFrame(ws, 0));
    t.clock.tick(1000); // up for a second
    ws.fail();
    assert.equal(waitForNext(), 10, 'a resume that stayed up starts the backoff over');
    assert.equal(t.of('close').length, 0);
  });

  it('online resumes at once instead of waiting out the backoff', () => {
    const t = start(Comet, { raceAlone: true });
    const ws = openWebSocket(t);
    ws.fail(); // an early death: the resume backs off
    t.clock.tick(0);
    t.net.last('websocket').fail();
    const before = t.net.count('websocket');
    t.b.fire('online');
    assert.equal(t.net.count('websocket') + t.net.count('sse'), before + 1);
  });

  it('withCredentials reaches every XHR and the EventSource, as a boolean', () => {
    for (const withCredentials of [undefined, false, true, 1]) {
      const t = start(Comet, { options: { withCredentials }, raceAlone: true });
      negotiate(t);
      t.net.last('websocket').fail();
      const es = t.net.last('sse');
      // EventSource converts its init's withCredentials to a boolean.
      assert.equal(!!es.init.withCredentials, !!withCredentials, String(withCredentials));
      assert.equal(t.net.last('negotiate').withCredentials, !!withCredentials, String(withCredentials));
    }
  });

  it('negotiate is CORS-simple unless the application adds headers', () => {
    let t = start(Comet);
    assert.deepEqual(t.net.last('negotiate').headers, { 'Content-Type': 'text/plain;charset=UTF-8' });
    assert.deepEqual(JSON.parse(t.net.last('negotiate').body), { transports: ['websocket', 'sse', 'streaming', 'longpoll'], binary: true, noStatus: true });
    t = start(Comet, { options: { headers: { Authorization: 'Bearer x' } } });
    assert.equal(t.net.last('negotiate').headers.Authorization, 'Bearer x');
  });

  it('the relay target rides in the negotiate body; without it the body is unchanged', () => {
    let t = start(Comet);
    assert.equal(t.net.last('negotiate').body, '{"transports":["websocket","sse","streaming","longpoll"],"binary":true,"noStatus":true}');
    t = start(Comet, { options: { target: 'db.internal:6379', transports: ['longpoll'] } });
    assert.equal(t.net.last('negotiate').body, '{"transports":["longpoll"],"binary":true,"target":"db.internal:6379","noStatus":true}');
    t = start(Comet, { options: { target: '[::1]:5432', transports: ['longpoll'] } });
    assert.equal(t.net.last('negotiate').body, '{"transports":["longpoll"],"binary":true,"target":"[::1]:5432","noStatus":true}');
    // The server judges the value.
    t = start(Comet, { options: { target: '', transports: ['longpoll'] } });
    assert.equal(t.net.last('negotiate').body, '{"transports":["longpoll"],"binary":true,"target":"","noStatus":true}');
  });

  it('control frames go right after the key frame, before messages', () => {
    const t = start(Comet, { without: ['WebSocket'] });
    negotiate(t);
    const es = t.net.last('sse');
    es.message(openFrame(es));
    const post = t.net.last('send');
    const probe = frames(post.body).find((f) => f[0] === 'p');
    es.message(`["e",${JSON.stringify(probe[2])}]`);
    t.c.send('m1');
    postOK(post, 0);
    const commit = frames(t.net.last('send').body);
    assert.deepEqual(commit.map((f) => f[0]), ['k', 'u', 'm']);
  });
}

test('debug hook receives diagnostics from the unminified build', () => {
  const lines = [];
  const t = start(BUILDS.dist(), { options: { debug: (msg) => lines.push(msg) } });
  openWebSocket(t);
  assert.ok(lines.includes('negotiate'));
  assert.ok(lines.some((l) => l.startsWith('attach websocket')));
});
