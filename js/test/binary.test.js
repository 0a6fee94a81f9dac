'use strict';
// Raw binary WebSocket messages (PROTOCOL.md section 4) in the session,
// over fake globals, against the sources and both shipped files: asked
// for at negotiate, sent and received raw on WebSocket once agreed, kept
// base64 on every other path, and refused where not agreed.

const test = require('node:test');
const assert = require('node:assert/strict');
const { BUILDS, start, negotiate, frames, openWebSocket, openFrame, postOK, proveStream } = require('./harness');

// ALL holds the 256 byte values.
const ALL = Uint8Array.from({ length: 256 }, (_, i) => i);

// rawMessage returns the raw binary message of seq holding bytes, as an
// ArrayBuffer (what a socket with binaryType 'arraybuffer' delivers).
function rawMessage(seq, bytes) {
  const b = Buffer.concat([Buffer.from(`["r",${seq}]\n`), Buffer.from(bytes)]);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.length);
}

// sent returns what the client wrote on ws, one entry per WebSocket
// message: {text: frames} or {raw: [seq, bytes]}.
function sent(ws) {
  return ws.sent.map((m) => {
    if (typeof m == 'string') return { text: frames(m) };
    assert.ok(m instanceof Uint8Array, 'a binary WebSocket message is a Uint8Array');
    const b = Buffer.from(m.buffer, m.byteOffset, m.length), nl = b.indexOf(10);
    const head = JSON.parse(b.subarray(0, nl).toString('latin1'));
    assert.equal(head[0], 'r');
    return { raw: [head[1], [...b.subarray(nl + 1)]] };
  });
}

for (const [build, make] of Object.entries(BUILDS)) {
  const Comet = make();
  const it = (name, fn) => test(`${build}: ${name}`, fn);

  it('binary messages go raw on an agreed WebSocket, in order with text, the ack on the last batch', async () => {
    const t = start(Comet);
    const ws = openWebSocket(t, { binary: true });
    assert.equal(ws.binaryType, 'arraybuffer');
    ws.message('["m",1,"x"]');
    const before = ws.sent.length;
    // A Blob being read holds back what follows, so that one flush sends
    // them all.
    t.c.send(new Blob([ALL]));
    t.c.send('a');
    t.c.send(new ArrayBuffer(0));
    t.c.send('d');
    assert.equal(ws.sent.length, before);
    await t.b.reads.shift()();
    assert.deepEqual(sent(ws).slice(before), [{ raw: [1, [...ALL]] }, { text: [['m', 2, 'a']] }, { raw: [3, []] },
      { text: [['m', 4, 'd'], ['a', 1]] }]);
    // A message sent after its bytes were changed is the bytes at send.
    const bytes = new Uint8Array([7]);
    t.c.send(bytes);
    bytes[0] = 8;
    assert.deepEqual(sent(ws).pop(), { raw: [5, [7]] });
    // Raw messages alone carry no ack, which would be a text message of
    // its own: it goes by the cadence, within ackDelay.
    ws.message('["m",2,"y"]');
    t.c.send(new Uint8Array([6]));
    assert.deepEqual(sent(ws).pop(), { raw: [6, [6]] });
    t.clock.tick(200);
    assert.deepEqual(sent(ws).pop(), { text: [['a', 2]] });
  });

  it('raw messages downstream follow binaryType, in order with text', async () => {
    const t = start(Comet);
    const ws = openWebSocket(t, { binary: true });
    ws.message(rawMessage(1, ALL));
    ws.message('["m",2,"between"]');
    t.c.binaryType = 'arraybuffer';
    ws.message(rawMessage(3, []));
    ws.message('["b",4,"AQI="]'); // base64 still accepted
    ws.message(rawMessage(4, [9])); // a resend: dropped
    const [blob, text, empty, b64, ...rest] = t.messages();
    assert.deepEqual([...new Uint8Array(await blob.arrayBuffer())], [...ALL]);
    assert.equal(text, 'between');
    assert.ok(empty instanceof ArrayBuffer);
    assert.equal(empty.byteLength, 0);
    assert.deepEqual([...new Uint8Array(b64)], [1, 2]);
    assert.deepEqual(rest, []);
    assert.equal(t.c.readyState, Comet.OPEN);
  });

  it('a raw message with a bad header, or one not agreed, fails the session with 1002', () => {
    for (const [over, data] of [[{ binary: true }, rawMessage(1, []).slice(0, 7)], [{ binary: true }, new TextEncoder().encode('["r",01]\nx').buffer],
      [{ binary: true }, new TextEncoder().encode('["b",1]\nx').buffer], [{}, rawMessage(1, [1])]]) {
      const t = start(Comet);
      const ws = openWebSocket(t, over);
      ws.message(data);
      assert.equal(t.of('close')[0].code, 1002);
    }
  });

  it('a raw message above maxMessage fails the session with 1009', () => {
    const t = start(Comet);
    const ws = openWebSocket(t, { binary: true, maxMessage: 10 });
    ws.message(rawMessage(1, new Uint8Array(13)));
    assert.equal(t.of('close')[0].code, 1009);
  });

  it('a server that does not agree (NoBinaryFrames) gets base64 both ways, as before', async () => {
    const t = start(Comet);
    assert.equal(JSON.parse(t.net.last('negotiate').body).binary, true);
    const ws = openWebSocket(t); // the response has no binary field
    t.c.send(ALL);
    assert.deepEqual(sent(ws).pop(), { text: [['b', 1, Buffer.from(ALL).toString('base64')]] });
    t.c.binaryType = 'arraybuffer';
    ws.message(`["b",1,"${Buffer.from(ALL).toString('base64')}"]`);
    assert.deepEqual([...new Uint8Array(t.messages()[0])], [...ALL]);
  });

  it('binaryFrames: false asks for nothing and keeps base64, whatever the server says', () => {
    const t = start(Comet, { options: { binaryFrames: false } });
    assert.deepEqual(JSON.parse(t.net.last('negotiate').body), { transports: ['websocket', 'sse', 'streaming', 'longpoll'], noStatus: true });
    const ws = openWebSocket(t, { binary: true });
    t.c.send(new Uint8Array([255]));
    assert.deepEqual(sent(ws).pop(), { text: [['b', 1, '/w==']] });
    ws.message(rawMessage(1, [1]));
    assert.equal(t.of('close')[0].code, 1002);
  });

  it('without typed arrays nothing is asked', () => {
    const t = start(Comet, { without: ['ArrayBuffer'] });
    assert.deepEqual(JSON.parse(t.net.last('negotiate').body), { transports: ['websocket', 'sse', 'streaming', 'longpoll'], noStatus: true });
  });

  it('after a drop, unacknowledged binary messages are resent raw on a WebSocket and base64 on POST', () => {
    const t = start(Comet);
    const ws = openWebSocket(t, { binary: true });
    t.c.send(new Uint8Array([1, 2]));
    t.c.send('t');
    ws.fail();
    t.clock.tick(0);
    const again = t.net.last('websocket');
    again.open();
    again.message(openFrame(again, 0));
    assert.deepEqual(sent(again).filter((m) => m.raw || m.text.some((f) => f[0] === 'm')),
      [{ raw: [1, [1, 2]] }, { text: [['m', 2, 't']] }]);

    // The same session on SSE: binary messages go base64 in POSTs.
    const u = start(Comet, { options: { transports: ['sse'] } });
    negotiate(u, { binary: true });
    const es = proveStream(u, u.net.last('sse'));
    postOK(u.net.last('send'), 0); // the commit
    u.c.send(new Uint8Array([255]));
    const post = u.net.last('send');
    assert.deepEqual(frames(post.body).filter((f) => f[0] === 'b'), [['b', 1, '/w==']]);
    postOK(post, 1);
    es.message('["b",1,"AQI="]');
    assert.equal(u.messages().length, 1);
  });
}
