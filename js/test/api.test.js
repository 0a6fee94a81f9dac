'use strict';
// The public API's surface over fake globals, against the sources and both
// shipped files: the constructor's forms and URLs, the protocol attribute,
// send after close(), and listeners (the session's behaviour is in
// session.test.js, closing in close.test.js, the DOM's exact edges in
// dom.test.js).

const test = require('node:test');
const assert = require('node:assert/strict');
const { BUILDS, start, negotiate, wsFrames, openWebSocket } = require('./harness');

for (const [build, make] of Object.entries(BUILDS)) {
  const Comet = make();
  const it = (name, fn) => test(`${build}: ${name}`, fn);

  it('constructor forms: (url), (url, protocols), (url, protocols, options), (url, options)', () => {
    const body = (t) => JSON.parse(t.net.last('negotiate').body);
    const b = require('./fakes').browser();
    const made = [
      [new Comet('wss://x.test/c', { globals: b.globals }), undefined],
      [new Comet('wss://x.test/c', 'chat', { globals: b.globals }), ['chat']],
      [new Comet('wss://x.test/c', ['graphql-transport-ws', 'v12.stomp'], { globals: b.globals }), ['graphql-transport-ws', 'v12.stomp']],
      [new Comet('wss://x.test/c', [], { globals: b.globals }), undefined]
    ];
    const bodies = b.net.all.filter((r) => r.endpoint === 'negotiate').map((r) => JSON.parse(r.body));
    made.forEach(([, want], i) => assert.deepEqual(bodies[i].protocols, want, String(i)));
    assert.ok(bodies.every((x) => x.noStatus === true));
    assert.throws(() => new Comet('ftp://x.test/c', {}), { name: 'SyntaxError' });
    void body;
  });

  it('the protocol attribute is the server\'s choice, on every transport', () => {
    for (const transports of [['websocket'], ['sse'], ['streaming'], ['longpoll']]) {
      const t = start(Comet, { protocols: ['mqtt', 'chat'], options: { transports } });
      assert.equal(t.c.protocol, '');
      negotiate(t, { protocol: 'chat', transports });
      assert.equal(t.c.protocol, 'chat', transports[0]);
      assert.equal(t.of('close').length, 0);
    }
  });

  for (const [name, answer] of [
    ['400 no_protocol', (t) => t.net.last('negotiate').respond(400, JSON.stringify({ code: 'no_protocol', message: 'supported: mqtt' }))],
    ['a 200 without protocol (a server that predates subprotocols)', (t) => negotiate(t)]
  ]) {
    it(`no subprotocol in common (${name}) fails like a WebSocket: error, then close 1006`, () => {
      const t = start(Comet, { protocols: 'chat', options: { reconnect: true } });
      answer(t);
      assert.deepEqual(t.events.map((e) => [e.type, e.code, e.wasClean]), [['error', 1006, false], ['close', 1006, false]]);
      assert.equal(t.c.readyState, Comet.CLOSED);
      t.clock.tick(600000);
      assert.equal(t.net.count('negotiate'), 1, 'no reconnect');
    });
  }

  it('a URL with a fragment throws SyntaxError; ws: and wss: still map to http: and https:', () => {
    const b = require('./fakes').browser();
    for (const url of ['wss://x.test/c#frag', 'ws://x.test/c#', '/c#x']) {
      assert.throws(() => new Comet(url, { globals: b.globals }), { name: 'SyntaxError' }, url);
    }
    assert.equal(b.net.count('negotiate'), 0);
    const c = new Comet('ws://x.test/c?q=1', { globals: b.globals });
    assert.equal(c.url, 'ws://x.test/c?q=1');
    assert.match(b.net.last('negotiate').url, /^http:\/\/x\.test\/c\/negotiate\?/);
  });

  it('send after close() discards the data and grows bufferedAmount, as the standard says', () => {
    const t = start(Comet);
    const ws = openWebSocket(t);
    t.c.close(1000, 'done');
    const before = t.c.bufferedAmount;
    t.c.send('héllo');
    t.c.send(new Uint8Array(3));
    assert.equal(t.c.bufferedAmount, before + 6 + 3);
    assert.ok(!wsFrames(ws).some((f) => f[0] === 'm' || f[0] === 'b'), 'nothing is sent');
    const c = start(Comet).c;
    assert.throws(() => c.send('x'), { name: 'InvalidStateError' }, 'still throws while connecting');
  });

  it('an inherited name is no transport', () => {
    for (const name of ['toString', '__proto__', 'constructor', 'hasOwnProperty']) {
      assert.throws(() => start(Comet, { options: { transports: [name] } }), { message: `Comet: unknown transport ${name}` });
    }
  });

  it('relative URLs resolve against the page; ws: maps to http:', () => {
    const t = start(Comet, { url: '/comet/' });
    assert.equal(t.c.url, '/comet/'.length && 'https://app.test/comet/');
    assert.match(t.net.last('negotiate').url, /^https:\/\/app\.test\/comet\/negotiate\?v=1&z=/);
  });

  it('listeners: added once, removable, and a throwing one does not break the session', () => {
    const t = start(Comet);
    const seen = [];
    const fn = (e) => seen.push(e.data);
    t.c.addEventListener('message', fn);
    t.c.addEventListener('message', fn);
    t.c.onmessage = () => {
      throw new Error('application bug');
    };
    const ws = openWebSocket(t);
    ws.message('["m",1,"a"]');
    t.c.removeEventListener('message', fn);
    ws.message('["m",2,"b"]');
    assert.deepEqual(seen, ['a']);
    assert.deepEqual(t.messages(), ['a', 'b']);
    assert.throws(() => t.clock.tick(0), /application bug/, 'the exception is reported on its own');
  });
}
