'use strict';
// The codec against the golden vectors shared with the Go tests
// (PROTOCOL.md section 12), and the stream line reader.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { load } = require('../build.js');

const m = load({});
const golden = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'testdata', 'frames.json'), 'utf8'));

// FIELDS maps a vector's named fields to the frame array's positions.
const FIELDS = {
  o: ['attempt', 'ack', 'token', 'interval'], m: ['seq', 'payload'], b: ['seq', 'payload'], a: ['ack'], h: [],
  p: ['attempt', 'token'], e: ['token'], u: ['attempt'], s: [], c: ['seq', 'code', 'reason', 'retry'],
  k: ['token', 'ack', 'wantTicket'], t: ['token']
};

// A browser hands the shim text, decoded from UTF-8 already; strict
// decoding here stands for that step (where a browser would substitute
// U+FFFD for invalid bytes, which the codec never sees).
const utf8 = new TextDecoder('utf-8', { fatal: true });

function asArray(frame) {
  const hex = (h) => Buffer.from(h, 'hex');
  return [frame.type].concat(FIELDS[frame.type].map((k) => {
    const v = frame[k];
    if (k === 'payload') return frame.type === 'b' ? hex(v).toString('base64') : utf8.decode(hex(v));
    if (k === 'wantTicket') return v ? 1 : 0;
    return v;
  }));
}

// UPSTREAM are the frame types only a client sends: the shim's decoder,
// which reads what the server sends, refuses them.
const UPSTREAM = ['k', 'p', 'u'];

test('golden valid vectors decode, the upstream-only ones refused', () => {
  let refused = 0;
  for (const v of golden.valid) {
    const wire = utf8.decode(Buffer.from(v.wire, 'hex'));
    if (UPSTREAM.includes(v.frame.type)) {
      assert.throws(() => m.decodeFrame(wire), (e) => e.code === 1002, v.name);
      refused++;
      continue;
    }
    assert.deepEqual(m.decodeFrame(wire), asArray(v.frame), v.name);
  }
  assert.ok(refused >= 3);
});

test('golden canonical vectors encode byte for byte', () => {
  let n = 0;
  for (const v of golden.valid.filter((x) => x.canonical)) {
    const got = Buffer.from(m.encodeFrame(asArray(v.frame)), 'utf8').toString('hex');
    assert.equal(got, v.wire, v.name);
    n++;
  }
  assert.ok(n > 40);
});

test('golden invalid vectors are refused with their close code', () => {
  for (const v of golden.invalid) {
    let text;
    try {
      text = utf8.decode(Buffer.from(v.wire, 'hex'));
    } catch (e) {
      assert.equal(v.error, 'invalid_utf8', v.name + ': only invalid UTF-8 fails in the browser decoder');
      continue;
    }
    assert.throws(() => m.decodeFrame(text), (e) => e.code === (v.error === 'invalid_utf8' ? 1007 : 1002), v.name);
  }
});

const SSE = path.join(__dirname, '..', '..', 'testdata', 'sse.json');

test('SSE golden vectors: each event holds its frame on one data line', { skip: !fs.existsSync(SSE) }, () => {
  const { vectors } = JSON.parse(fs.readFileSync(SSE, 'utf8'));
  assert.ok(vectors.length > 0);
  for (const v of vectors) {
    // What EventSource hands to onmessage: the data fields, joined by \n.
    const data = v.event.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, ''));
    assert.deepEqual(data, [v.frame], v.name);
    assert.equal(m.encodeFrame(m.decodeBatch(data.join('\n'))[0]), v.frame, v.name);
  }
});

test('raw lone surrogates in decoded text are invalid UTF-8', () => {
  assert.throws(() => m.decodeFrame('["m",1,"a\ud800"]'), (e) => e.code === 1007);
  assert.throws(() => m.decodeFrame('["m",1,"\udc00b"]'), (e) => e.code === 1007);
  assert.deepEqual(m.decodeFrame('["m",1,"\ud83d\ude00"]'), ['m', 1, '\ud83d\ude00']);
});

// Found by test/fuzz.test.js: the type's lookup converted a nested array
// to a string, recursively, and the RangeError closed the session with
// code undefined.
test('a deeply nested array is a malformed frame, not a stack overflow', () => {
  for (const line of ['['.repeat(20000) + ']'.repeat(20000), '[' + '['.repeat(20000) + ']'.repeat(20000) + ',"m"]']) {
    assert.throws(() => m.decodeFrame(line), (e) => e.code === 1002);
  }
});

test('base64 with line breaks is malformed, as in the Go decoder', () => {
  assert.throws(() => m.decodeFrame('["b",1,"aGVs\\nbG8="]'), (e) => e.code === 1002);
  assert.throws(() => m.decodeFrame('["b",1,"aGVsbG8=\\r"]'), (e) => e.code === 1002);
  assert.deepEqual(m.decodeFrame('["b",1,"aGVsbG8="]'), ['b', 1, 'aGVsbG8=']);
});

// A frame is decoded in a worker that is stopped at the bound, so a
// backtracking regexp (minutes on this line, where a linear scan takes
// milliseconds) fails the test instead of stalling it: synchronous code
// cannot be interrupted from its own thread. The bound is an upper limit,
// not a timing assertion.
test('a large frame decodes without exhausting the regexp engine', async () => {
  const { Worker } = require('node:worker_threads');
  const worker = new Worker(`
    const { parentPort } = require('node:worker_threads');
    const m = require(${JSON.stringify(path.join(__dirname, '..', 'build.js'))}).load({});
    const big = 'x"\\\\\\n\\u2028é'.repeat(60000);
    const line = m.encodeFrame(['m', 1, big]);
    let whole = false, truncated = 0;
    try { whole = m.decodeFrame(line)[2] === big; } catch (e) {}
    try { m.decodeFrame(line.slice(0, -2)); } catch (e) { truncated = e.code; }
    parentPort.postMessage({ whole, truncated });
  `, { eval: true });
  let timer;
  const bound = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error('decoding a 360,000-character frame took over 10 s')), 10000);
  });
  try {
    const got = await Promise.race([new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    }), bound]);
    assert.deepEqual(got, { whole: true, truncated: 1002 });
  } finally {
    clearTimeout(timer);
    await worker.terminate();
  }
});

test('decodeBatch skips padding lines and keeps order', () => {
  const text = ' '.repeat(2048) + '\n["o",1,0,"t",25000]\n\n   \n["m",1,"a"]\n["h"]';
  assert.deepEqual(m.decodeBatch(text).map((f) => f[0]), ['o', 'm', 'h']);
});

test('utf8Length and lone surrogates', () => {
  assert.equal(m.utf8Length('aé日😀'), 1 + 2 + 3 + 4);
  assert.equal(m.utf8Length(''), 0);
  assert.ok(m.hasLoneSurrogate('a\ud800'));
  assert.ok(!m.hasLoneSurrogate('\ud83d\ude00'));
});

test('base64 round trip', () => {
  const bytes = new Uint8Array(300).map((_, i) => (i * 7) & 255);
  const b64 = m.toBase64(bytes, btoa);
  assert.equal(b64, Buffer.from(bytes).toString('base64'));
  assert.deepEqual(Array.from(m.fromBase64(b64, atob, Uint8Array)), Array.from(bytes));
  assert.equal(m.toBase64(new Uint8Array(0), btoa), '');
});

test('lineReader keeps partial lines and reports a cut', () => {
  const lines = m.lineReader();
  let text = ' '.repeat(2048) + '\n["o",1,0,"t",25000]\n["m",1,"he';
  assert.equal(lines(text), ' '.repeat(2048) + '\n["o",1,0,"t",25000]\n');
  assert.ok(lines());
  text += 'llo"]\n';
  assert.equal(lines(text), '["m",1,"hello"]\n');
  assert.ok(!lines());
  text += '   ';
  assert.equal(lines(text), '');
  assert.ok(!lines(), 'a partial padding line is not a cut frame');
});

// Raw binary WebSocket messages (PROTOCOL.md section 4) against their
// golden vectors, shared with the Go tests.
const raw = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'testdata', 'raw.json'), 'utf8'));

// arrayBuffer returns hex's bytes in an ArrayBuffer of their own, as a
// WebSocket with binaryType 'arraybuffer' delivers a message.
function arrayBuffer(hex) {
  const b = Buffer.from(hex, 'hex');
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.length);
}

test('raw golden vectors decode and encode byte for byte', () => {
  assert.ok(raw.valid.length > 0);
  for (const v of raw.valid) {
    const f = m.decodeRaw(arrayBuffer(v.wire), Uint8Array);
    assert.equal(f[0], 'b', v.name);
    assert.equal(f[1], v.seq, v.name);
    assert.ok(f[2] instanceof ArrayBuffer, v.name);
    assert.equal(Buffer.from(f[2]).toString('hex'), v.payload, v.name);
    const enc = m.encodeRaw(v.seq, new Uint8Array(Buffer.from(v.payload, 'hex')), Uint8Array);
    assert.equal(Buffer.from(enc).toString('hex'), v.wire, v.name);
  }
});

test('raw golden invalid vectors are refused with 1002', () => {
  assert.ok(raw.invalid.length > 0);
  for (const v of raw.invalid) {
    assert.throws(() => m.decodeRaw(arrayBuffer(v.wire), Uint8Array), (e) => e.code === 1002, v.name);
  }
});
