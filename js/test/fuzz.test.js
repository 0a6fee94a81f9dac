'use strict';
// A bounded fuzz loop over the shim's parsers of server input: the frame
// decoder, the stream line reader, and the downstream handler of a live
// session on each stream transport. Inputs are the golden vectors
// (PROTOCOL.md section 12) and valid downstream batches, mutated by a
// seeded PRNG. A run prints its seed; COMET_FUZZ_SEED=<seed> replays it.
//
// What may escape the decoder is the documented codec error (code 1002
// or 1007); nothing escapes the line reader or the downstream handler,
// and a session ends only with 1002, 1007, 1009 or the server's close.

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { load } = require('../build.js');
const { BUILDS, start, negotiate, openWebSocket, postOK, proveStream } = require('./harness');

const m = load({});

const SEED = process.env.COMET_FUZZ_SEED ? Number(process.env.COMET_FUZZ_SEED) >>> 0 : crypto.randomInt(2 ** 32);

// mulberry32 returns a PRNG of [0, 1) seeded with a 32-bit integer.
function mulberry32(a) {
  return function () {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// rand returns the PRNG of one test: each test has its own stream, so
// that a seed replays any of them alone.
function rand(k) {
  const r = mulberry32(SEED ^ Math.imul(k, 0x9e3779b9));
  r.int = (n) => Math.floor(r() * n);
  r.pick = (xs) => xs[r.int(xs.length)];
  return r;
}

// A browser hands the shim text decoded from UTF-8, invalid bytes as
// U+FFFD.
const golden = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'testdata', 'frames.json'), 'utf8'));
const text = (hex) => new TextDecoder('utf-8').decode(Buffer.from(hex, 'hex'));
const VECTORS = golden.valid.concat(golden.invalid).map((v) => text(v.wire));

// downstream returns a valid downstream batch after an open frame:
// messages numbered from 1 (some sent twice, as after a resume), acks,
// heartbeats and echoes, then perhaps the server's close or a supersede.
function downstream(r) {
  const lines = [];
  let seq = 0;
  for (let n = r.int(7); n > 0; n--) {
    switch (r.int(6)) {
      case 0: lines.push(`["m",${++seq},${JSON.stringify(r.pick(['a', 'é\n', '\u2028', '😀', '']))}]`); break;
      case 1: lines.push(`["b",${++seq},"${r.pick(['AAEC/w==', '', 'aGk='])}"]`); break;
      case 2: if (seq) lines.push(`["m",${seq},"again"]`); break;
      case 3: lines.push('["a",0]'); break;
      case 4: lines.push('["h"]'); break;
      case 5: lines.push('["e","x"]'); break;
    }
  }
  if (r() < 0.2) lines.push(r() < 0.5 ? `["c",${seq + 1},${r.pick([1000, 1011, 3001, 4000])},"bye",0]` : '["s"]');
  return lines.join('\n') + (r() < 0.5 ? '\n' : '');
}

const CHARS = ['"', '\\', '[', ']', ',', '0', '1', '9', ' ', '\t', '-', '.', 'e', '{', 'n', 't', 'u', 'x', '\0', '\x1f',
  '\x7f', 'é', '\u2028', '\u2029', '\ud800', '\udc00', '\ufffd', '\r', '\n'];
const NUMBERS = ['0', '00', '-0', '-1', '1.0', '1e2', '9007199254740991', '9007199254740992', '1e309',
  '99999999999999999999999999'];
const ESCAPES = ['\\u', '\\ud800', '\\udc00', '\\ud83d\\ude00', '\\u2028', '\\x', '\\', '\\u00e9', '\\"'];

// MUTATORS each change s at random. The long strings stay well under the
// 4,000,000 characters beyond which V8's regexp engine overflows on the
// decoder's blanking of strings.
const MUTATORS = [
  function flip(s, r) {
    const i = r.int(s.length + 1);
    return s.slice(0, i) + (r() < 0.7 ? r.pick(CHARS) : String.fromCharCode(r.int(0x10000))) + s.slice(i + 1);
  },
  function cut(s, r) {
    const i = r.int(s.length + 1);
    return s.slice(0, i) + s.slice(i + r.int(8));
  },
  function truncate(s, r) {
    return s.slice(0, r.int(s.length + 1));
  },
  function duplicate(s, r) {
    const i = r.int(s.length + 1), j = i + r.int(s.length - i + 1), k = r.int(s.length + 1);
    return s.slice(0, k) + s.slice(i, j) + s.slice(k);
  },
  function splice(s, r) {
    const lines = s.split('\n');
    lines.splice(r.int(lines.length + 1), 0, r.pick(VECTORS));
    return lines.join('\n');
  },
  function breaks(s, r) {
    const i = r.int(s.length + 1);
    return s.slice(0, i) + r.pick(['\r', '\r\n', '\n', '\u2028', '\u2029', '\n\n', '  \n']) + s.slice(i);
  },
  function number(s, r) {
    const runs = [...s.matchAll(/\d+/g)];
    if (!runs.length) return s;
    const d = r.pick(runs);
    return s.slice(0, d.index) + r.pick(NUMBERS) + s.slice(d.index + d[0].length);
  },
  function escape(s, r) {
    const i = s.indexOf('"', r.int(s.length));
    return i < 0 ? s : s.slice(0, i + 1) + r.pick(ESCAPES) + s.slice(i + 1);
  },
  function nest(s, r) {
    // As the type, or anywhere: deep arrays are valid JSON.
    const d = r.pick([1, 2, 64, 4000, 20000]), i = r() < 0.5 ? 1 : r.int(s.length + 1);
    return s.slice(0, i) + '['.repeat(d) + ']'.repeat(d) + (r() < 0.5 ? ',' : '') + s.slice(i);
  },
  function long(s, r) {
    const i = s.indexOf('"', r.int(s.length));
    const fill = r.pick(['x', '\\n', 'é', '\\"', '\u2028', ' ']).repeat(r.pick([10, 1000, 50000]));
    return i < 0 ? s + fill : s.slice(0, i + 1) + fill + s.slice(i + 1);
  }
];

// mutate applies a mutator to s, now and then two or three, and returns
// the result and their names.
function mutate(s, r) {
  const names = [];
  for (let n = 1 + (r() < 0.3 ? r.int(3) : 0); n > 0; n--) {
    const f = r.pick(MUTATORS);
    s = f(s, r);
    names.push(f.name);
  }
  return [s, names];
}

// describe names an input in a failure, with the seed that replays it.
function describe(i, input, names) {
  const shown = input.length > 300 ? JSON.stringify(input.slice(0, 300)) + `… (${input.length} chars)` : JSON.stringify(input);
  return `seed ${SEED} (COMET_FUZZ_SEED=${SEED} replays), iteration ${i}, mutations ${names.join('+')}: ${shown}`;
}

// decodes returns the frame line decodes to, or the close code of the
// codec error it throws; any other exception fails the test.
function decodes(line, what) {
  try {
    return m.decodeFrame(line);
  } catch (e) {
    assert.ok(e.code === 1002 || e.code === 1007, `decodeFrame threw ${e.name}: ${e.message} (code ${e.code}); ${what}`);
    return e.code;
  }
}

test('fuzz: decodeFrame and decodeBatch throw only codec errors, and what they take re-encodes to itself', (t) => {
  t.diagnostic(`seed ${SEED}; replay with COMET_FUZZ_SEED=${SEED}`);
  const r = rand(1);
  for (let i = 0; i < 3000; i++) {
    const [input, names] = mutate(r() < 0.5 ? r.pick(VECTORS) : downstream(r), r);
    const what = describe(i, input, names);
    const f = decodes(input, what);
    if (Array.isArray(f)) {
      const wire = m.encodeFrame(f);
      assert.ok(!/[\r\n\u2028\u2029]/.test(wire), `a decoded frame encodes on more than one line: ${wire}; ${what}`);
      assert.deepEqual(m.decodeFrame(wire), f, `a decoded frame does not decode from its encoding; ${what}`);
    }
    // A batch fails as its first bad line does, or decodes line by line.
    const lines = input.split('\n').filter((l) => /[^ ]/.test(l)).map((l) => decodes(l, what));
    const bad = lines.find((x) => !Array.isArray(x));
    let batch;
    try {
      batch = m.decodeBatch(input);
    } catch (e) {
      batch = e.code;
    }
    assert.deepEqual(batch, bad === undefined ? lines : bad, `decodeBatch disagrees with decodeFrame; ${what}`);
  }
});

test('fuzz: lineReader returns whole lines however the text grows, and reports a cut line', (t) => {
  t.diagnostic(`seed ${SEED}; replay with COMET_FUZZ_SEED=${SEED}`);
  const r = rand(2);
  for (let i = 0; i < 1000; i++) {
    const [input, names] = mutate(downstream(r), r);
    const what = describe(i, input, names);
    const lines = m.lineReader();
    let got = '';
    for (let at = 0; at < input.length;) {
      at = Math.min(input.length, at + 1 + r.int(Math.max(12, input.length / 20)));
      const out = lines(input.slice(0, at));
      assert.ok(out === '' || out.endsWith('\n'), `lineReader returned a partial line ${JSON.stringify(out)}; ${what}`);
      got += out;
    }
    const rest = input.slice(input.lastIndexOf('\n') + 1);
    assert.equal(got + rest, input, `lineReader lost or repeated text; ${what}`);
    assert.equal(lines(), /[^ ]/.test(rest), `lineReader misreports the cut line ${JSON.stringify(rest)}; ${what}`);
  }
});

// STREAMS attach a session, on fake globals, by each transport that
// reads a downstream, and return a function that feeds it text as the
// transport would and returns the text the shim decodes.
const STREAMS = {
  websocket(Comet) {
    const t = start(Comet);
    const ws = openWebSocket(t);
    return [t, (text) => {
      ws.message(text);
      return text;
    }];
  },
  sse(Comet) {
    const t = start(Comet, { without: ['WebSocket'] });
    negotiate(t);
    const es = proveStream(t, t.net.last('sse'));
    postOK(t.net.last('send'), 0); // the commit
    // EventSource splits lines at CR, LF and CRLF and joins one event's
    // data lines with LF.
    return [t, (text) => {
      const data = text.replace(/\r\n?/g, '\n');
      es.message(data);
      return data;
    }];
  },
  streaming(Comet, r) {
    const t = start(Comet, { without: ['WebSocket', 'EventSource'] });
    negotiate(t);
    const xs = proveStream(t, t.net.last('streaming'));
    postOK(t.net.last('send'), 0);
    return [t, (text) => {
      for (let at = 0; at < text.length;) {
        const n = 1 + r.int(Math.max(40, text.length / 20));
        xs.progress(text.slice(at, at + n));
        at += n;
      }
      return text;
    }];
  }
};

for (const [name, attach] of Object.entries(STREAMS)) {
  test(`fuzz: the downstream handler on ${name} delivers in order and ends only with a protocol close`, (t) => {
    t.diagnostic(`seed ${SEED}; replay with COMET_FUZZ_SEED=${SEED}`);
    const r = rand(3 + Object.keys(STREAMS).indexOf(name));
    const builds = Object.values(BUILDS).map((make) => make());
    for (let i = 0; i < 500; i++) {
      const [input, names] = mutate(downstream(r), r);
      const what = describe(i, input, names);
      const [s, feed] = attach(builds[i % builds.length], r);
      s.events.length = 0;
      let seen;
      assert.doesNotThrow(() => {
        seen = feed(input);
      }, what);

      // Message k is the first frame of seq k the input holds. (The
      // decoder itself is checked above: here it only reads the input.)
      const frames = seen.split('\n').map((l) => {
        try {
          return m.decodeFrame(l);
        } catch (e) {}
      }).filter(Array.isArray);
      s.messages().forEach((data, k) => {
        const f = frames.find((x) => /[mbc]/.test(x[0]) && x[1] === k + 1);
        assert.ok(f && f[0] !== 'c', `message ${k + 1} delivered, yet the input holds no message of that seq; ${what}`);
        if (f[0] === 'm') assert.equal(data, f[2], `message ${k + 1}; ${what}`);
      });
      const closes = s.of('close');
      assert.ok(closes.length <= 1, `${closes.length} close events; ${what}`);
      if (closes.length) {
        const server = frames.filter((x) => x[0] === 'c').map((x) => x[2]);
        const { code } = closes[0];
        assert.ok([1002, 1007, 1009].includes(code) || server.includes(code), `the session closed with ${code}; ${what}`);
      }
    }
  });
}

// Raw binary WebSocket messages (PROTOCOL.md section 4): their golden
// vectors, mutated byte by byte.
const RAW_VECTORS = (() => {
  const g = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'testdata', 'raw.json'), 'utf8'));
  return g.valid.concat(g.invalid).map((v) => Buffer.from(v.wire, 'hex'));
})();
const RAW_BYTES = [0x5b, 0x5d, 0x22, 0x2c, 0x72, 0x62, 0x30, 0x31, 0x39, 0x0a, 0x0d, 0x20, 0x2d, 0x00, 0xff];

// mutateRaw changes a raw message's bytes at random, mostly in its
// header, and returns them in an ArrayBuffer of their own.
function mutateRaw(b, r) {
  const out = [...b];
  for (let n = 1 + r.int(3); n > 0; n--) {
    const i = r.int(Math.min(out.length + 1, 26));
    switch (r.int(4)) {
      case 0: out[i] = r() < 0.7 ? r.pick(RAW_BYTES) : r.int(256); break;
      case 1: out.splice(i, 1 + r.int(3)); break;
      case 2: out.splice(i, 0, r.pick(RAW_BYTES)); break;
      case 3: out.length = r.int(out.length + 1); break;
    }
  }
  return Uint8Array.from(out).buffer;
}

test('fuzz: decodeRaw throws only 1002, and what it takes re-encodes to itself', (t) => {
  t.diagnostic(`seed ${SEED}; replay with COMET_FUZZ_SEED=${SEED}`);
  const r = rand(100);
  for (let i = 0; i < 3000; i++) {
    const input = mutateRaw(r.pick(RAW_VECTORS), r);
    const what = `seed ${SEED} (COMET_FUZZ_SEED=${SEED} replays), iteration ${i}: ${Buffer.from(input).toString('hex')}`;
    let f;
    try {
      f = m.decodeRaw(input, Uint8Array);
    } catch (e) {
      assert.equal(e.code, 1002, `decodeRaw threw ${e.name}: ${e.message}; ${what}`);
      continue;
    }
    assert.ok(f[0] === 'b' && Number.isSafeInteger(f[1]) && f[1] > 0, what);
    assert.equal(Buffer.from(m.encodeRaw(f[1], new Uint8Array(f[2]), Uint8Array)).toString('hex'),
      Buffer.from(input).toString('hex'), `a decoded raw message does not encode back; ${what}`);
  }
});

test('fuzz: raw messages on an agreed WebSocket deliver in order and end only with a protocol close', (t) => {
  t.diagnostic(`seed ${SEED}; replay with COMET_FUZZ_SEED=${SEED}`);
  const r = rand(101);
  const builds = Object.values(BUILDS).map((make) => make());
  for (let i = 0; i < 300; i++) {
    const s = start(builds[i % builds.length]);
    const ws = openWebSocket(s, { binary: true });
    const inputs = [];
    for (let n = 1 + r.int(4); n > 0; n--) {
      const input = r() < 0.5 ? Uint8Array.from(r.pick(RAW_VECTORS)).buffer : mutateRaw(r.pick(RAW_VECTORS), r);
      inputs.push(Buffer.from(input).toString('hex'));
      assert.doesNotThrow(() => ws.message(input), `seed ${SEED}, iteration ${i}`);
    }
    const what = `seed ${SEED} (COMET_FUZZ_SEED=${SEED} replays), iteration ${i}: ${inputs.join(' ')}`;
    const closes = s.of('close');
    assert.ok(closes.length <= 1, what);
    if (closes.length) assert.ok([1002, 1009].includes(closes[0].code), `the session closed with ${closes[0].code}; ${what}`);
  }
});

// The carrier frames of comet-share.js (PROTOCOL.md section 16).
const share = require('../build.js').loadShare(m.Comet, {});
const SHARE_VECTORS = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'testdata', 'share.json'), 'utf8'))
  .frames.map((f) => f.wire).concat(['["o","C1",6356992]']);

test('fuzz: decodeCarrierFrame returns a frame or undefined, never throws, and a frame is what the line says', (t) => {
  t.diagnostic(`seed ${SEED}; replay with COMET_FUZZ_SEED=${SEED}`);
  const r = rand(200);
  for (let i = 0; i < 3000; i++) {
    const [input, names] = mutate(r.pick(SHARE_VECTORS), r);
    const what = `seed ${SEED} (COMET_FUZZ_SEED=${SEED} replays), iteration ${i} (${names}): ${JSON.stringify(input).slice(0, 200)}`;
    let f;
    assert.doesNotThrow(() => { f = share.decodeCarrierFrame(input); }, what);
    if (!f) continue;
    const a = JSON.parse(input);
    if (f.o) {
      assert.deepEqual([a[0], a[1], a[2]], ['o', f.o, f.max], what);
      continue;
    }
    assert.ok(Number.isSafeInteger(f.n) && f.n >= 0 && Number.isSafeInteger(f.sub) && f.sub >= 0, what);
    assert.deepEqual(a.slice(0, 3), [f.n, f.sub, f.kind], what);
    assert.ok('hdepk'.includes(f.kind) && f.kind.length === 1, what);
  }
});
