'use strict';
// CometTCP over the shim on fake globals, against the sources and both
// shipped files: the relay's open message, bytes both ways, the relay's
// close codes, protocol violations and close().

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { browser } = require('./fakes');
const { BUILDS, wsFrames, openWebSocket } = require('./harness');

const TCP_BUILDS = {
  src: () => require('../build.js').loadTCP(BUILDS.src()).CometTCP,
  dist: () => require(path.join(__dirname, '..', 'dist', 'comet-tcp.js')),
  min: () => require(path.join(__dirname, '..', 'dist', 'comet-tcp.min.js'))
};

const EVENTS = ['open', 'data', 'error', 'close', 'drain'];

// start makes a CometTCP on fake globals (plus extra ones) and records its
// events.
function start(CometTCP, { host = 'db.internal', port = 6379, options = {}, globals = {}, without } = {}) {
  const b = browser({ without });
  Object.assign(b.globals, globals);
  const s = new CometTCP('wss://example.test/comet', host, port, Object.assign({ globals: b.globals }, options));
  const events = [];
  for (const type of EVENTS) s.addEventListener(type, (e) => events.push(e));
  const t = { s, b, net: b.net, clock: b.clock, events, of: (type) => events.filter((e) => e.type === type) };
  t.data = () => Buffer.concat(t.of('data').map((e) => e.data));
  return t;
}

// connect runs the session's happy path on WebSocket, then the relay's
// open message; it returns the fake WebSocket and a sender of server
// frames that numbers them.
function connect(t) {
  const ws = openWebSocket(t);
  let seq = 0;
  const server = {
    ws,
    text: (s) => ws.message(`["m",${++seq},${JSON.stringify(s)}]`),
    bytes: (buf) => ws.message(`["b",${++seq},"${Buffer.from(buf).toString('base64')}"]`),
    close: (code, reason = '') => ws.message(`["c",${++seq},${code},${JSON.stringify(reason)},0]`)
  };
  server.text('{"open":true}');
  return server;
}

// upstream returns the bytes the client sent as binary messages, and
// fails on any text message.
function upstream(ws) {
  const f = wsFrames(ws);
  assert.deepEqual(f.filter((x) => x[0] === 'm'), [], 'no text messages upstream');
  return Buffer.concat(f.filter((x) => x[0] === 'b').map((x) => Buffer.from(x[2], 'base64')));
}

// ALL_BYTES holds every byte value, twice, in two orders.
const ALL_BYTES = Buffer.from([...Array(256).keys()].concat([...Array(256).keys()].reverse()));

for (const [build, make] of Object.entries(TCP_BUILDS)) {
  const CometTCP = make();
  const it = (name, fn) => test(`tcp ${build}: ${name}`, fn);

  it('negotiates with the target, and opens only on the relay\'s open message', () => {
    const t = start(CometTCP);
    assert.deepEqual(JSON.parse(t.net.last('negotiate').body).target, 'db.internal:6379');
    assert.equal(t.s.readyState, CometTCP.CONNECTING);
    assert.deepEqual([CometTCP.OPEN, t.s.CLOSED, t.s.host, t.s.port], [1, 3, 'db.internal', 6379]);
    openWebSocket(t);
    assert.equal(t.s.comet.readyState, 1, 'the session is open');
    assert.equal(t.s.readyState, CometTCP.CONNECTING, 'the relay has not connected yet');
    assert.throws(() => t.s.send('early'), { name: 'InvalidStateError' });
    t.net.last('websocket').message('["m",1,"{\\"open\\":true}"]');
    assert.equal(t.s.readyState, CometTCP.OPEN);
    assert.equal(t.of('open').length, 1);
    assert.equal(t.of('open')[0].target, t.s);
  });

  it('writes the target of an IPv6 host in brackets', () => {
    for (const [host, port, want] of [
      ['::1', 5432, '[::1]:5432'], ['[::1]', '5432', '[::1]:5432'], ['fe80::1%eth0', 80, '[fe80::1%eth0]:80'],
      ['127.0.0.1', 6379, '127.0.0.1:6379']
    ]) {
      const t = start(CometTCP, { host, port });
      assert.equal(JSON.parse(t.net.last('negotiate').body).target, want);
    }
  });

  it('passes the options through, but for target and reconnect', () => {
    let t = start(CometTCP, { options: { transports: ['longpoll'], target: 'evil:1', headers: { A: 'b' } } });
    const neg = t.net.last('negotiate');
    assert.deepEqual(JSON.parse(neg.body), { transports: ['longpoll'], binary: true, target: 'db.internal:6379', noStatus: true });
    assert.equal(neg.headers.A, 'b');
    // An expiry would open a fresh session with reconnect: a fresh TCP
    // connection, with the bytes in flight lost.
    t = start(CometTCP, { options: { reconnect: true } });
    connect(t).close(3000, 'expired');
    t.clock.tick(60000);
    assert.equal(t.net.count('negotiate'), 1, 'no fresh session: reconnect is off');
    assert.equal(t.s.comet.readyState, 3);
    assert.deepEqual(t.of('close').map((e) => e.code), [3000]);
  });

  it('delivers data in order as Uint8Arrays', () => {
    const t = start(CometTCP);
    const server = connect(t);
    server.bytes(ALL_BYTES.subarray(0, 256));
    server.bytes([]);
    server.bytes(ALL_BYTES.subarray(256));
    const got = t.of('data').map((e) => e.data);
    assert.equal(got.length, 3);
    for (const d of got) assert.equal(Object.prototype.toString.call(d), '[object Uint8Array]');
    assert.deepEqual(t.data(), ALL_BYTES);
  });

  it('sends an ArrayBuffer, the exact range of any view, and strings as UTF-8, all binary', () => {
    const t = start(CometTCP);
    const server = connect(t);
    const want = [];
    const send = (data, bytes) => {
      t.s.send(data);
      want.push(Buffer.from(bytes));
    };
    const u8 = new Uint8Array(ALL_BYTES);
    send(u8.buffer.slice(u8.byteOffset, u8.byteOffset + u8.length), ALL_BYTES);
    send(u8.subarray(3, 300), ALL_BYTES.subarray(3, 300));
    const backing = new ArrayBuffer(16);
    new Uint8Array(backing).set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    send(new DataView(backing, 5, 6), [5, 6, 7, 8, 9, 10]);
    send(new Uint16Array(backing, 2, 3), [2, 3, 4, 5, 6, 7]);
    send(new Int8Array(backing, 15), [15]);
    send(new Float64Array(backing, 8, 1), [8, 9, 10, 11, 12, 13, 14, 15]);
    send('PING\r\n', [0x50, 0x49, 0x4e, 0x47, 0x0d, 0x0a]);
    send('é€😀', [0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80]);
    send('a\ud800b\udc00', [0x61, 0xef, 0xbf, 0xbd, 0x62, 0xef, 0xbf, 0xbd]);
    send('', []);
    assert.deepEqual(upstream(server.ws), Buffer.concat(want));
    for (const bad of [42, null, undefined, {}, new Blob(['x'])]) {
      assert.throws(() => t.s.send(bad), TypeError, String(bad));
    }
    assert.deepEqual(upstream(server.ws), Buffer.concat(want), 'a refused send sends nothing');
  });

  it('a long write travels in pieces the server accepts', () => {
    const t = start(CometTCP);
    const server = connect(t);
    const big = Buffer.alloc(100000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 8)) & 255;
    t.s.send(big);
    const pieces = wsFrames(server.ws).filter((f) => f[0] === 'b').map((f) => Buffer.from(f[2], 'base64'));
    assert.ok(pieces.length > 1 && pieces.every((p) => p.length <= 16384), pieces.map((p) => p.length).join(','));
    assert.deepEqual(Buffer.concat(pieces), big);
    assert.equal(t.s.bufferedAmount, big.length);
  });

  it('encodes strings the same with and without TextEncoder', () => {
    const samples = ['', 'ascii', 'ß', '\u07ff\u0800\uffff', '😀𝄞', '\ud83d', '\ude00x', '\ude00\ud83d', 'a\ud83d\ud83d\ude00'];
    let seed = 7;
    for (let n = 0; n < 200; n++) {
      let s = '';
      for (let i = 0; i < 12; i++) {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        const pick = [0x41, 0x7f, 0x80, 0x7ff, 0x800, 0xd800, 0xdbff, 0xdc00, 0xdfff, 0xe000, 0xfffd, 0xffff][seed % 12];
        s += String.fromCharCode(pick + (seed >> 12) % 3 * (pick < 0xd800 || pick >= 0xe000 ? 0 : 1));
      }
      samples.push(s);
    }
    for (const globals of [{ TextEncoder }, {}]) {
      const t = start(CometTCP, { globals });
      const server = connect(t);
      for (const s of samples) t.s.send(s);
      assert.deepEqual(upstream(server.ws), Buffer.from(samples.map((s) => new TextEncoder().encode(s)).flatMap((b) => [...b])),
        globals.TextEncoder ? 'TextEncoder' : 'fallback');
    }
  });

  it('bufferedAmount is the session\'s: sent and not yet acknowledged; drain at 0', () => {
    const t = start(CometTCP, { options: { maxBuffered: 10 } });
    const server = connect(t);
    t.s.send('12345');
    t.s.send(new Uint8Array(3));
    assert.equal(t.s.bufferedAmount, 8);
    assert.equal(t.s.bufferedAmount, t.s.comet.bufferedAmount);
    assert.throws(() => t.s.send('abc'), { name: 'QuotaExceededError' });
    assert.equal(t.s.bufferedAmount, 8, 'a refused write queues nothing');
    server.ws.message('["a",2]');
    assert.equal(t.s.bufferedAmount, 0);
    assert.equal(t.of('drain').length, 1);
  });

  for (const [code, reason] of Object.entries({
    3100: 'target not allowed', 3101: 'connection refused', 3102: 'connect timed out', 3103: 'host not found',
    3104: 'connection reset', 3105: 'connection closed by the back end', 3106: 'idle timeout'
  })) {
    it(`a relay close ${code} before open reads "${reason}" without the server's reason`, () => {
      assert.equal(CometTCP.closeReasons[code], reason);
      const t = start(CometTCP);
      const ws = openWebSocket(t);
      ws.message(`["c",1,${code},"",0]`);
      assert.equal(t.s.readyState, CometTCP.CLOSED);
      const [ev] = t.of('close');
      assert.deepEqual([ev.code, ev.reason, ev.wasClean], [Number(code), reason, true]);
      assert.equal(t.of('open').length, 0);
      assert.equal(t.of('error').length, 0);
    });
  }

  it('the server\'s own reason wins over the readable one', () => {
    const t = start(CometTCP);
    const server = connect(t);
    server.close(3101, 'dial tcp 127.0.0.1:1: connect: connection refused');
    assert.equal(t.of('close')[0].reason, 'dial tcp 127.0.0.1:1: connect: connection refused');
  });

  it('3105 after data: every byte is delivered, then the close', () => {
    const t = start(CometTCP);
    const server = connect(t);
    server.ws.message(`["b",2,"${Buffer.from('+PONG\r\n').toString('base64')}"]\n["b",3,"${ALL_BYTES.toString('base64')}"]\n["c",4,3105,"",0]\n`);
    assert.deepEqual(t.data(), Buffer.concat([Buffer.from('+PONG\r\n'), ALL_BYTES]));
    assert.deepEqual(t.events.map((e) => e.type), ['open', 'data', 'data', 'close']);
    const ev = t.of('close')[0];
    assert.deepEqual([ev.code, ev.reason, ev.wasClean], [3105, 'connection closed by the back end', true]);
    assert.throws(() => t.s.send('late'), { name: 'InvalidStateError' });
  });

  for (const [name, before] of [
    ['binary before the open message', (server) => server.bytes([1, 2])],
    ['other text before the open message', (server) => server.text('{"open": true}')],
    ['{"open":false}', (server) => server.text('{"open":false}')],
    ['text after open', (server) => {
      server.text('{"open":true}');
      server.bytes([1]);
      server.text('{"open":true}');
    }]
  ]) {
    it(`a protocol violation (${name}) closes with 1002`, () => {
      const t = start(CometTCP);
      const ws = openWebSocket(t);
      let seq = 0;
      before({
        text: (s) => ws.message(`["m",${++seq},${JSON.stringify(s)}]`),
        bytes: (buf) => ws.message(`["b",${++seq},"${Buffer.from(buf).toString('base64')}"]`)
      });
      assert.equal(t.s.readyState, CometTCP.CLOSED);
      assert.deepEqual(t.events.map((e) => e.type).filter((x) => x !== 'open' && x !== 'data'), ['error', 'close']);
      const ev = t.of('close')[0];
      assert.deepEqual([ev.code, ev.reason, ev.wasClean], [1002, 'relay protocol error', false]);
      const closeFrame = wsFrames(ws).find((f) => f[0] === 'c');
      assert.deepEqual(closeFrame.slice(2, 4), [1000, 'relay protocol error'], 'the session is closed for the relay');
      ws.message(`["c",${seq + 1},1000,"",0]`);
      assert.equal(t.of('close').length, 1, 'one close event');
    });
  }

  it('close() closes the session with 1000 after what was sent', () => {
    const t = start(CometTCP);
    const server = connect(t);
    t.s.send('QUIT\r\n');
    t.s.close();
    assert.equal(t.s.readyState, CometTCP.CLOSING);
    t.s.close();
    assert.throws(() => t.s.send('x'), { name: 'InvalidStateError' });
    const sent = wsFrames(server.ws).filter((f) => f[0] === 'b' || f[0] === 'c');
    assert.deepEqual(sent.map((f) => f[0]), ['b', 'c']);
    assert.deepEqual(sent[1].slice(2, 4), [1000, '']);
    server.ws.message('["a",2]\n["c",2,1000,"",0]');
    assert.equal(t.s.readyState, CometTCP.CLOSED);
    const [ev] = t.of('close');
    assert.deepEqual([ev.code, ev.reason, ev.wasClean], [1000, '', true]);
  });

  it('close() while the session is connecting ends it like a WebSocket: 1006', () => {
    const t = start(CometTCP);
    t.s.close();
    assert.equal(t.s.readyState, CometTCP.CLOSED);
    assert.deepEqual(t.events.map((e) => [e.type, e.code]), [['error', 1006], ['close', 1006]]);
  });

  it('listeners: on<type> first, added once, removable; a throwing one is reported on its own', () => {
    const t = start(CometTCP);
    const seen = [];
    const fn = (e) => seen.push(e.data.length);
    t.s.addEventListener('data', fn);
    t.s.addEventListener('data', fn);
    t.s.ondata = () => {
      throw new Error('application bug');
    };
    const server = connect(t);
    server.bytes([1, 2]);
    t.s.removeEventListener('data', fn);
    server.bytes([3]);
    assert.deepEqual(seen, [2]);
    assert.equal(t.of('data').length, 2);
    assert.throws(() => t.clock.tick(0), /application bug/);
  });

  it('InvalidStateError is a DOMException where there is one', () => {
    const t = start(CometTCP, { globals: { DOMException } });
    assert.throws(() => t.s.send('x'), (e) => e instanceof DOMException && e.name === 'InvalidStateError');
  });

  it('fuzz: any first message and any later one open, deliver or close with 1002, never throw', () => {
    let seed = 99;
    const rnd = (n) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const texts = ['{"open":true}', '{"open":true} ', ' {"open":true}', '{"open":1}', '{}', '', 'null', '[]', '{"open":"true"}',
      '{"OPEN":true}', '{"open":true,"x":1}', '\u0000', '"{\\"open\\":true}"'];
    for (let n = 0; n < 60; n++) {
      const t = start(CometTCP);
      const ws = openWebSocket(t);
      let seq = 0, opened = false, violated = false;
      for (let k = 0; k < 4 && !violated; k++) {
        const binary = rnd(3) === 0;
        if (binary) {
          const bytes = Buffer.from(Array.from({ length: rnd(40) }, () => rnd(256)));
          ws.message(`["b",${++seq},"${bytes.toString('base64')}"]`);
          violated = !opened;
        } else {
          const text = rnd(2) ? texts[rnd(texts.length)] : String.fromCharCode(...Array.from({ length: rnd(20) }, () => 32 + rnd(95)));
          ws.message(`["m",${++seq},${JSON.stringify(text)}]`);
          if (!opened && text === '{"open":true}') opened = true;
          else violated = true;
        }
      }
      if (violated) {
        assert.equal(t.of('close')[0].code, 1002);
        assert.equal(t.s.readyState, 3);
      } else {
        assert.equal(t.s.readyState, opened ? 1 : 0);
        assert.equal(t.of('close').length, 0);
      }
    }
  });
}

test('in a browser CometTCP takes the page\'s Comet when a socket is made, and needs one', () => {
  const { loadTCP } = require('../build.js');
  const root = {};
  const CometTCP = loadTCP(undefined, root).CometTCP;
  assert.throws(() => new CometTCP('/comet', 'h', 1), { name: 'TypeError', message: 'CometTCP: load comet.js first' });
  root.Comet = BUILDS.src();
  const b = browser();
  const s = new CometTCP('wss://example.test/comet', 'h', 1, { globals: b.globals });
  assert.equal(s.comet instanceof root.Comet, true);
});
