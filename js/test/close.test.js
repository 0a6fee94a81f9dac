'use strict';
// Closing over fake globals, through the public API only, against the
// sources and both shipped files: validation, the closing handshake both
// ways, bounds, and protocol errors.

const test = require('node:test');
const assert = require('node:assert/strict');
const { BUILDS, start, negotiate, frames, wsFrames, openWebSocket, postOK, proveStream } = require('./harness');

for (const [build, make] of Object.entries(BUILDS)) {
  const Comet = make();
  const it = (name, fn) => test(`${build}: ${name}`, fn);

  it('close validates like the browser and runs the closing handshake', () => {
    const t = start(Comet);
    const ws = openWebSocket(t);
    for (const code of [999, 1001, 2999, 5000, 1000.5]) {
      assert.throws(() => t.c.close(code), { name: 'InvalidAccessError' }, String(code));
    }
    assert.throws(() => t.c.close(1000, 'é'.repeat(62)), { name: 'SyntaxError' });
    t.c.send('last');
    t.c.close(4001, 'bye');
    assert.equal(t.c.readyState, Comet.CLOSING);
    t.c.close(); // idempotent
    t.c.send('late'); // discarded, as the standard says
    const sent = wsFrames(ws).filter((f) => f[0] === 'm' || f[0] === 'c');
    assert.deepEqual(sent, [['m', 1, 'last'], ['c', 2, 4001, 'bye', 0]]);
    ws.message('["m",1,"dropped after close"]\n["a",2]\n["c",2,4001,"",0]');
    assert.equal(t.messages().length, 0, 'no message events after close()');
    assert.deepEqual(wsFrames(ws).pop(), ['a', 2]);
    const [ev] = t.of('close');
    // The server's answer carried no reason: the event has the page's own,
    // as a server echoing the close frame gives a WebSocket.
    assert.deepEqual([ev.code, ev.reason, ev.wasClean], [4001, 'bye', true]);
    assert.equal(t.c.readyState, Comet.CLOSED);
    assert.equal(t.of('error').length, 0);
  });

  it('the server\'s answer echoing the close carries the page\'s code and reason into the close event', () => {
    const t = start(Comet);
    const ws = openWebSocket(t, { noStatus: true });
    t.c.close(1000, 'Clean Close');
    assert.deepEqual(wsFrames(ws).find((f) => f[0] === 'c'), ['c', 1, 1000, 'Clean Close', 0]);
    ws.message('["a",1]\n["c",1,1000,"Clean Close",0]');
    const [ev] = t.of('close');
    assert.deepEqual([ev.code, ev.reason, ev.wasClean], [1000, 'Clean Close', true]);
  });

  for (const [agreed, wire] of [[true, 1005], [false, 1000]]) {
    it(`close() without a code reports 1005; the wire carries ${wire} (server ${agreed ? 'confirmed' : 'did not confirm'} noStatus)`, () => {
      const t = start(Comet);
      assert.equal(JSON.parse(t.net.last('negotiate').body).noStatus, true, 'the negotiate asks for it');
      const ws = openWebSocket(t, agreed ? { noStatus: true } : {});
      t.c.close(undefined, 'ignored without a code');
      assert.deepEqual(wsFrames(ws).find((f) => f[0] === 'c'), ['c', 1, wire, '', 0]);
      ws.message(`["a",1]\n["c",1,${wire},"",0]`);
      const [ev] = t.of('close');
      assert.deepEqual([ev.code, ev.reason, ev.wasClean], [1005, '', true]);
    });
  }

  it('a close from the server is answered with the same code', () => {
    const t = start(Comet);
    const ws = openWebSocket(t);
    ws.message('["c",1,3001,"shutdown",4500]');
    assert.deepEqual(wsFrames(ws).slice(-2), [['c', 1, 3001, '', 0], ['a', 1]]);
    const [ev] = t.of('close');
    assert.deepEqual([ev.code, ev.reason, ev.wasClean, ev.retry], [3001, 'shutdown', true, 4500]);
  });

  it('a stream that ends once the server\'s close has arrived is not resumed', () => {
    // The server forgets the session when its close is acknowledged and
    // ends the stream, which can reach the page before the answer to the
    // POST that carried the ack: that end is no drop to recover from.
    const t = start(Comet, { without: ['WebSocket'] });
    negotiate(t);
    const es = proveStream(t, t.net.last('sse'));
    postOK(t.net.last('send'), 0); // the commit
    t.c.close(1000, 'done');
    const bye = t.net.last('send');
    assert.deepEqual(frames(bye.body).pop(), ['c', 1, 1000, 'done', 0]);
    es.message('["c",1,1000,"",0]');
    postOK(bye, 1);
    t.clock.tick(200); // at most ackDelay
    const ack = t.net.last('send');
    assert.notEqual(ack, bye);
    assert.equal(frames(ack.body)[0][2], 1, 'the POST acks the server\'s close');
    es.fail();
    t.clock.tick(1000);
    assert.equal(t.net.count('sse'), 1, 'no resume');
    assert.deepEqual(t.of('reconnecting'), []);
    postOK(ack, 1);
    assert.deepEqual(t.of('close').map((e) => [e.code, e.wasClean]), [[1000, true]]);
  });

  it('an unanswered close ends after a bound, not clean', () => {
    const t = start(Comet);
    openWebSocket(t);
    t.c.close();
    t.clock.tick(5000);
    const [ev] = t.of('close');
    assert.deepEqual([ev.code, ev.wasClean], [1006, false]);
    assert.equal(t.of('error').length, 1);
  });

  it('close while connecting fails like a WebSocket: error, then close 1006', () => {
    const t = start(Comet);
    t.c.close();
    assert.deepEqual(t.events.map((e) => [e.type, e.code]), [['error', 1006], ['close', 1006]]);
    assert.ok(t.net.last('negotiate').aborted);
  });

  for (const [status, body, code] of [[401, { code: 'unauthorized' }, 3003], [403, { code: 'forbidden' }, 3003],
    [403, { code: 'origin_refused' }, 3005], [429, { code: 'rate_limited' }, 3006], [0, null, 3004]]) {
    it(`negotiate refused with ${status} ${body ? body.code : ''}: error and close ${code}`, () => {
      const t = start(Comet, { options: { reconnect: code !== 3006 && code !== 3004 } });
      t.net.last('negotiate').respond(status, body ? JSON.stringify(body) : '');
      assert.deepEqual(t.events.map((e) => [e.type, e.code, e.status]), [['error', code, status || undefined], ['close', code, status || undefined]]);
      assert.equal(t.c.readyState, Comet.CLOSED);
      t.clock.tick(600000);
      assert.equal(t.net.count('negotiate'), 1, 'no retry loop');
    });
  }

  it('a sequence gap is a protocol error: close 1002', () => {
    const t = start(Comet);
    const ws = openWebSocket(t);
    ws.message('["m",2,"skipped one"]');
    assert.deepEqual(frames(t.b.beacons[0].body).pop(), ['c', 1, 1002, '', 0]);
    assert.deepEqual(t.of('close').map((e) => [e.code, e.wasClean]), [[1002, false]]);
  });
}
