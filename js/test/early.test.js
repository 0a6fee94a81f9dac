'use strict';
// Early delivery (PROTOCOL.md section 8): a long-poll probe starts beside
// WebSocket, and once it is answered the session opens on a chain of polls
// that delivers while the race goes on; the candidate that wins takes over
// as an upgrade, and its commit fences the chain's polls by their numbers.

const test = require('node:test');
const assert = require('node:assert/strict');
const { BUILDS, start, negotiate, frames, wsFrames, openWebSocket, openFrame, postOK, proveStream } = require('./harness');

const CANDIDATES = 1e9; // the shim numbers its candidates above this, the chain's polls below

for (const [build, make] of Object.entries(BUILDS)) {
  const Comet = make();
  const it = (name, fn) => test(`${build}: ${name}`, fn);

  // answerProbes answers the early probe's three rounds and returns the
  // last.
  function answerProbes(t) {
    let probe;
    for (let round = 1; round <= 3; round++) {
      probe = t.net.last('longpoll');
      assert.ok(probe && !probe.done, `probe round ${round} is sent`);
      assert.deepEqual([probe.query.d, probe.query.why], ['0', undefined]);
      assert.ok(Number(probe.query.a) > CANDIDATES, 'the probe is numbered as a candidate');
      assert.equal(t.c.readyState, Comet.CONNECTING, `still connecting at round ${round}`);
      probe.respond(200, openFrame(probe, 0, 'TP' + round));
    }
    return probe;
  }

  // openEarly negotiates, answers the early probe and returns the
  // WebSocket candidate, still unproven, and the chain's first poll.
  function openEarly(t) {
    negotiate(t);
    const ws = t.net.last('websocket');
    assert.ok(t.net.last('longpoll'), 'the probe starts with WebSocket, not after its head start');
    assert.ok(Number(ws.query.a) > CANDIDATES, 'candidates are numbered high');
    const probe = answerProbes(t);
    const poll = t.net.last('longpoll');
    assert.notEqual(poll, probe);
    return { ws, poll };
  }

  it('the session opens on polls once the probe is answered three times, and they deliver while WebSocket is proven', () => {
    const t = start(Comet);
    const { ws, poll } = openEarly(t);
    assert.equal(t.c.readyState, Comet.OPEN);
    assert.equal(t.c.transport, 'longpoll');
    assert.deepEqual(t.events.map((e) => [e.type, e.transport]), [['transport', 'longpoll'], ['open', 'longpoll']]);
    assert.deepEqual([poll.query.d, poll.query.a], ['1', '1'], 'the chain delivers, numbered from 1');
    t.c.send('hi');
    const post = t.net.last('send');
    assert.deepEqual(frames(post.body).slice(1), [['m', 1, 'hi']], 'upstream goes by POST meanwhile');
    postOK(post, 1);
    poll.respond(200, openFrame(poll, 1) + '["m",1,"welcome"]\n');
    assert.deepEqual(t.messages(), ['welcome']);
    const next = t.net.last('longpoll');
    assert.deepEqual([next.query.d, next.query.a, next.query.ack], ['1', '2', '1']);
    assert.ok(!ws.closedByClient, 'the candidate races on');

    ws.open();
    const echo = wsFrames(ws).find((f) => f[0] === 'p');
    ws.message(openFrame(ws, 1) + `["e",${JSON.stringify(echo[2])}]\n`);
    assert.deepEqual(wsFrames(ws).pop(), ['u', Number(ws.query.a)], 'the commit fences every poll below it');
    assert.ok(Number(ws.query.a) > Number(next.query.a));
    assert.ok(next.aborted, 'the chain ends');
    assert.equal(t.c.transport, 'websocket');
    assert.deepEqual(t.of('transport').map((e) => [e.from, e.transport, e.reason]), [['', 'longpoll', ''], ['longpoll', 'websocket', '']]);
    ws.message('["m",2,"on ws"]\n');
    assert.deepEqual(t.messages(), ['welcome', 'on ws']);
    t.c.send('up');
    assert.deepEqual(wsFrames(ws).find((x) => x[0] === 'm'), ['m', 2, 'up'], 'upstream moves to the WebSocket');
    assert.equal(t.net.count('longpoll'), 5, 'three probes, two polls, and no poll after the commit');
    assert.equal(t.of('reconnecting').length, 0);
  });

  it('a WebSocket proven before the probe\'s third answer opens the session itself', () => {
    for (const answered of [0, 1, 2]) {
      const t = start(Comet);
      negotiate(t);
      for (let round = 1; round <= answered; round++) {
        const probe = t.net.last('longpoll');
        probe.respond(200, openFrame(probe));
      }
      const ws = t.net.last('websocket');
      ws.open();
      const echo = wsFrames(ws).find((f) => f[0] === 'p');
      ws.message(openFrame(ws) + `["e",${JSON.stringify(echo[2])}]\n`);
      assert.ok(t.net.last('longpoll').aborted, 'the probe in flight is closed');
      assert.deepEqual(t.of('transport').map((e) => [e.from, e.transport]), [['', 'websocket']], `after ${answered}`);
      assert.equal(t.net.count('longpoll'), answered + 1, 'no chain');
      assert.equal(t.of('open').length, 1);
    }
  });

  it('with WebSocket refused the streams race on beside the chain, and the one proven takes over', () => {
    const t = start(Comet);
    const { ws, poll } = openEarly(t);
    ws.fail();
    // The pool's tickets went to WebSocket, the probe and the chain: the
    // stream asks for one by POST.
    const ask = t.net.last('send');
    assert.equal(frames(ask.body)[0][3], 1);
    postOK(ask, 0, 'TT');
    const es = t.net.last('sse');
    assert.deepEqual([es.query.d, es.query.why], ['0', 'ws_refused']);
    assert.ok(Number(es.query.a) > CANDIDATES);
    proveStream(t, es);
    assert.deepEqual(frames(t.net.last('send').body).pop(), ['u', Number(es.query.a)]);
    assert.ok(poll.aborted);
    assert.equal(t.c.transport, 'sse');
    assert.deepEqual(t.of('transport').map((e) => [e.from, e.transport, e.reason]), [['', 'longpoll', ''], ['longpoll', 'sse', 'ws_refused']]);
  });

  it('a ticket an open frame brings goes to the candidate waiting for one, before the probe\'s next round', () => {
    const t = start(Comet);
    negotiate(t); // two tickets: WebSocket's and the probe's
    t.net.last('websocket').fail();
    assert.equal(t.net.count('sse'), 0, 'SSE waits for a ticket');
    const probe = t.net.last('longpoll');
    probe.respond(200, openFrame(probe, 0, 'FROM-PROBE'));
    assert.equal(t.net.last('sse').query.t, 'FROM-PROBE');
    assert.equal(t.net.count('longpoll'), 1, 'the next round waits for the POST\'s ticket');
    postOK(t.net.last('send'), 0, 'FROM-POST');
    assert.equal(t.net.last('longpoll').query.t, 'FROM-POST');
  });

  it('a hung WebSocket is raced after its head start while the chain delivers', () => {
    const t = start(Comet);
    const { ws, poll } = openEarly(t);
    t.clock.tick(249);
    assert.equal(t.net.count('sse'), 0, 'WebSocket keeps its head start');
    poll.respond(200, openFrame(poll, 0) + '["m",1,"early"]\n');
    assert.deepEqual(t.messages(), ['early']);
    t.clock.tick(1);
    // The pool's tickets went to the candidates and the chain: the stream
    // gets one from a POST.
    postOK(t.net.last('send'), 0, 'TT');
    const es = t.net.last('sse');
    assert.equal(es.query.why, 'ws_hung');
    proveStream(t, es);
    assert.equal(t.c.transport, 'sse');
    assert.ok(ws.closedByClient, 'the hung WebSocket is closed');
    assert.ok(t.net.last('longpoll').aborted);
  });

  it('a buffered stream leaves the session on long-polling, which a proven poll carries on', () => {
    const t2 = start(Comet);
    const { ws, poll } = openEarly(t2);
    ws.fail();
    postOK(t2.net.last('send'), 0, 'TT');
    const es = t2.net.last('sse');
    t2.clock.tick(420); // its open frame never comes: buffered
    assert.ok(es.closedByClient);
    postOK(t2.net.last('send'), 0, 'TL');
    const lp = t2.net.last('longpoll');
    assert.notEqual(lp, poll);
    assert.deepEqual([lp.query.d, lp.query.why], ['0', 'stream_buffered']);
    lp.respond(200, openFrame(lp));
    assert.ok(poll.aborted, 'the chain gives way to the proven poll\'s');
    const next = t2.net.last('longpoll');
    assert.equal(next.query.d, '1');
    assert.ok(Number(next.query.a) > CANDIDATES, 'the race is over: polls are numbered as candidates were');
    assert.equal(t2.c.transport, 'longpoll');
    assert.equal(t2.of('transport').length, 1);
    assert.match(t2.b.globals.localStorage.getItem('comet:https://example.test/comet'), /"t":"longpoll"/,
      'the race\'s verdict is remembered, though the chain was on long-polling already');
  });

  it('the chain is not remembered: only the transport that wins the race is', () => {
    const t = start(Comet);
    const { ws } = openEarly(t);
    const storage = t.b.globals.localStorage;
    const key = 'comet:https://example.test/comet';
    assert.equal(storage.getItem(key), null, 'a page closed now would race again on its next load');
    ws.fail();
    postOK(t.net.last('send'), 0, 'TT');
    proveStream(t, t.net.last('sse'));
    assert.match(storage.getItem(key), /"t":"sse"/);
  });

  it('WebSocket remembered to work here, or a list without long-polling, start no probe', () => {
    const first = start(Comet);
    openWebSocket(first);
    const storage = first.b.globals.localStorage;
    const t = start(Comet, { storage });
    negotiate(t);
    assert.equal(t.net.count('longpoll'), 0, 'remembered WebSocket');
    for (const transports of [['websocket'], ['websocket', 'sse', 'streaming'], ['longpoll']]) {
      const u = start(Comet, { options: { transports } });
      negotiate(u);
      assert.equal(u.net.count('longpoll'), transports[0] == 'longpoll' ? 1 : 0, String(transports));
    }
  });

  it('a page without WebSocket probes beside its first stream, which opens the session when proven first', () => {
    const t = start(Comet, { without: ['WebSocket'] });
    negotiate(t);
    const es = t.net.last('sse');
    const probe = t.net.last('longpoll');
    assert.ok(es && probe, 'SSE and the probe start together');
    assert.ok(Number(es.query.a) > CANDIDATES && Number(probe.query.a) > CANDIDATES);
    proveStream(t, es);
    assert.ok(probe.aborted);
    assert.deepEqual(t.of('transport').map((e) => [e.from, e.transport]), [['', 'sse']]);
  });

  it('a page without WebSocket behind a buffering proxy delivers by the chain until long-polling wins the race', () => {
    const t = start(Comet, { without: ['WebSocket', 'EventSource'] });
    negotiate(t);
    const xs = t.net.last('streaming');
    answerProbes(t);
    const poll = t.net.last('longpoll');
    assert.equal(t.c.transport, 'longpoll');
    poll.respond(200, openFrame(poll) + '["m",1,"early"]\n');
    assert.deepEqual(t.messages(), ['early']);
    xs.message(openFrame(xs)); // the preamble and open frame pass, the probe's echo never does
    postOK(t.net.last('send'), 0, 'TT');
    t.clock.tick(400);
    assert.ok(xs.aborted, 'the buffered stream is left');
    const lp = t.net.last('longpoll');
    assert.equal(lp.query.why, 'stream_buffered');
    lp.respond(200, openFrame(lp, 0));
    const next = t.net.last('longpoll');
    assert.ok(Number(next.query.a) > CANDIDATES, 'the race is over: its polls replace the chain');
    next.respond(200, openFrame(next, 0) + '["m",2,"later"]\n');
    assert.deepEqual(t.messages(), ['early', 'later']);
    assert.equal(t.of('transport').length, 1);
  });
}
