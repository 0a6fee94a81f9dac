'use strict';
// comet-dom.js over the shim, on the fake globals: the DOM's and the
// WebSocket standard's exact edges, against the sources and both shipped
// files.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { start, openWebSocket, wsFrames } = require('./harness');

const DOM_BUILDS = {
  src: () => require('../build.js').loadDOM(require('../build.js').load({}).Comet, globalThis),
  dist: () => require(path.join(__dirname, '..', 'dist', 'comet-dom.js')),
  min: () => require(path.join(__dirname, '..', 'dist', 'comet-dom.min.js'))
};

const nextTask = () => new Promise((resolve) => setTimeout(resolve, 0));

for (const [build, make] of Object.entries(DOM_BUILDS)) {
  const Comet = make();
  const it = (name, fn) => test(`dom ${build}: ${name}`, fn);

  it('handlers run in registration order with listeners; a non-object makes a handler null', () => {
    const t = start(Comet);
    const order = [];
    t.c.addEventListener('message', () => order.push('first listener'));
    t.c.onmessage = () => order.push('handler');
    t.c.addEventListener('message', { handleEvent: () => order.push('object') });
    t.c.addEventListener('message', () => order.push('once'), { once: true });
    const ws = openWebSocket(t);
    ws.message('["m",1,"a"]');
    ws.message('["m",2,"b"]');
    assert.deepEqual(order, ['first listener', 'handler', 'object', 'once', 'first listener', 'handler', 'object']);
    t.c.onopen = 2;
    assert.equal(t.c.onopen, null);
  });

  it('events are real Events with target, currentTarget, timeStamp, origin and lastEventId', () => {
    const t = start(Comet, { url: 'wss://example.test/comet?x=1' });
    let got;
    t.c.onmessage = (e) => { got = e; };
    const ws = openWebSocket(t);
    ws.message('["m",1,"a"]');
    assert.ok(got instanceof MessageEvent);
    assert.equal(got.target, t.c);
    assert.equal(got.currentTarget, t.c);
    assert.equal(typeof got.timeStamp, 'number');
    assert.deepEqual([got.type, got.data, got.origin, got.lastEventId], ['message', 'a', 'wss://example.test', '']);
    assert.equal(t.c.dispatchEvent(new Event('message')), true);
  });

  it('binaryType ignores invalid values; send() needs an argument; lone surrogates become U+FFFD', () => {
    const t = start(Comet);
    t.c.binaryType = 'text';
    assert.equal(t.c.binaryType, 'blob');
    assert.throws(() => t.c.send(), TypeError, 'before the state check');
    const ws = openWebSocket(t);
    t.c.send('a\ud800b');
    assert.deepEqual(wsFrames(ws).find((f) => f[0] === 'm'), ['m', 1, 'a\ufffdb']);
    assert.doesNotThrow(() => t.c.close(1000, '\udc00'.repeat(41)), '41 × 3 bytes after conversion');
  });

  it('errors are DOMExceptions with their legacy code; subprotocols are checked as tokens', () => {
    const t = start(Comet);
    assert.throws(() => t.c.send('x'), (e) => e instanceof DOMException && e.name === 'InvalidStateError' && e.code === 11);
    assert.throws(() => t.c.close(1001), (e) => e instanceof DOMException && e.code === 15);
    for (const p of [['a', 'a'], 'a b', ['ok', 'x,y']]) {
      assert.throws(() => start(Comet, { protocols: p }), (e) => e.name === 'SyntaxError' && e.code === 12, String(p));
    }
  });

  it('the constructor throws DOMExceptions; instances, constants and subclasses are as with the shim alone', () => {
    for (const url of ['wss://example.test/comet#frag', 'wss://example.test/comet#', 'ftp://example.test/']) {
      assert.throws(() => start(Comet, { url }), (e) => e instanceof DOMException && e.name === 'SyntaxError' && e.code === 12, url);
    }
    assert.throws(() => start(Comet, { options: { transports: ['carrier-pigeon'] } }), TypeError);
    const t = start(Comet);
    assert.ok(t.c instanceof Comet);
    assert.equal(t.c.readyState, Comet.CONNECTING);
    assert.deepEqual([Comet.OPEN, Comet.CLOSING, Comet.CLOSED, t.c.CLOSED], [1, 2, 3, 3]);
    class Named extends Comet {
      hello() { return 'hello from ' + this.url; }
    }
    const n = start(Named);
    assert.ok(n.c instanceof Named && n.c instanceof Comet);
    assert.equal(n.c.hello(), 'hello from wss://example.test/comet');
  });

  it('close() while connecting: CLOSING at once, error then close in a later task', async () => {
    const t = start(Comet);
    t.c.close();
    assert.equal(t.c.readyState, Comet.CLOSING);
    assert.deepEqual(t.events, []);
    const late = [];
    t.c.onclose = (e) => late.push([e.type, e.code, e.wasClean, t.c.readyState]);
    await nextTask();
    assert.deepEqual(t.events.map((e) => e.type), ['error', 'close']);
    assert.deepEqual(late, [['close', 1006, false, Comet.CLOSED]]);
  });
}
