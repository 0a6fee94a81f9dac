'use strict';
// comet-topics.js over the shim: topic positions (PROTOCOL.md section 15).
// The decoder against the golden vectors of testdata/topics.json (section
// 12), then sessions on the fake globals against the sources and both
// shipped files: the negotiate body, the frames once the server agreed,
// the positions kept, the topicgap event, and a server that did not agree.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { load, loadTopics, loadDOM } = require('../build.js');
const { start, negotiate, frames, wsFrames, openWebSocket, openFrame } = require('./harness');

const core = load({});
const topics = loadTopics(core.Comet, {});
const golden = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'testdata', 'topics.json'), 'utf8'));

// A browser hands the shim text, decoded from UTF-8 already (see
// codec.test.js).
const utf8 = new TextDecoder('utf-8', { fatal: true });

// asArray returns a vector's frame as the decoder's array.
function asArray(f) {
  const payload = Buffer.from(f.payload || '', 'hex');
  if (f.type === 'y') return ['y', f.seq, f.topic, f.epoch, f.offset, f.recovered ? 1 : 0];
  return [f.type, f.seq, f.type === 'b' ? payload.toString('base64') : utf8.decode(payload), f.topic, f.epoch, f.offset];
}

test('topics: golden valid vectors decode to their fields where positions are agreed', () => {
  assert.ok(golden.valid.length >= 6);
  for (const v of golden.valid) {
    const wire = utf8.decode(Buffer.from(v.wire, 'hex'));
    assert.deepEqual(topics.decodeTopicFrame(wire, core.decodeFrame), asArray(v.frame), v.name);
  }
});

test('topics: golden invalid vectors are refused with their close code where positions are agreed', () => {
  assert.ok(golden.invalid.length >= 10);
  for (const v of golden.invalid) {
    let text;
    try {
      text = utf8.decode(Buffer.from(v.wire, 'hex'));
    } catch (e) {
      assert.equal(v.error, 'invalid_utf8', v.name + ': only invalid UTF-8 fails in the browser decoder');
      continue;
    }
    assert.throws(() => topics.decodeTopicFrame(text, core.decodeFrame),
      (e) => e.code === (v.error === 'invalid_utf8' ? 1007 : 1002), v.name);
  }
});

test('topics: without positions agreed, comet.js refuses every frame of topics.json as malformed', () => {
  for (const v of golden.valid.concat(golden.invalid)) {
    let text;
    try {
      text = utf8.decode(Buffer.from(v.wire, 'hex'));
    } catch (e) {
      continue;
    }
    assert.throws(() => core.decodeFrame(text), (e) => e.code === 1002, v.name);
  }
});

test('topics: the decoder leaves every other frame to comet.js, and is as strict as the Go decoder', () => {
  const d = (line) => topics.decodeTopicFrame(line, core.decodeFrame);
  assert.deepEqual(d('["m",1,"x"]'), ['m', 1, 'x']);
  assert.deepEqual(d('["o",1,0,"T",25000]'), ['o', 1, 0, 'T', 25000]);
  for (const line of [
    '["m",0,"x","t","e",1]', // seq 0
    '["m",1,"x","t","e",1.5]', // not an integer
    '["m",1,"x","t","e",-1]', // negative
    '["m",1,"x","t","e",9007199254740992]', // past 2^53-1
    '["m",1,"x","t","e",01]', // leading zero
    '["b",1,"AA=","t","e",1]', // bad base64
    '["m",1,"x","t",2,1]', // a number for the epoch
    '["m",1,"x","t","e"]',
    '["y",1,"t","e",1,1,0]',
    '["y",1,"t","e",1,true]',
    '["y",1,"t","e",9007199254740992,1]',
    '["c",1,1000,"","","",1]',
    '{"m":1}',
    '["m",1,"x","t","e",1',
  ]) {
    assert.throws(() => d(line), (e) => e.code === 1002, line);
  }
  for (const line of ['["m",1,"x\ud800","t","e",1]', '["m",1,"x","t\udc00","e",1]', '["y",1,"t","e\ud800",1,1]',
    '["m",1,"x","t\ud800","\udc00e",1]']) {
    assert.throws(() => d(line), (e) => e.code === 1007, JSON.stringify(line));
  }
});

test('topics: comet.min.js reads its hooks by their names, and names no field of its own like them', () => {
  const min = fs.readFileSync(path.join(__dirname, '..', 'dist', 'comet.min.js'), 'utf8');
  const names = new Set(min.match(/\.\$[\w$]*/g));
  for (const hook of ['.$topics', '.$decode', '.$on']) assert.ok(names.delete(hook), hook);
  for (const name of names) assert.ok(name.length <= 3, `${name}: the minifier's names are one or two characters`);
});

// BUILDS are comet.js with comet-topics.js: the sources, and both shipped
// pairs (comet-topics.js requires the shim beside it).
const BUILDS = {
  src: () => loadTopics(load({}).Comet, {}).Comet,
  dist: () => require(path.join(__dirname, '..', 'dist', 'comet-topics.js')),
  min: () => require(path.join(__dirname, '..', 'dist', 'comet-topics.min.js')),
};

// fresh evaluates a shipped file as CommonJS, in a module of its own (so
// that comet-topics.js, which required the same file, has not added to it).
function fresh(name) {
  const m = { exports: {} };
  new Function('module', 'exports', fs.readFileSync(path.join(__dirname, '..', 'dist', name), 'utf8'))(m, m.exports); // eslint-disable-line no-new-func
  return m.exports;
}

const SHIMS = {
  src: () => load({}).Comet,
  dist: () => fresh('comet.js'),
  min: () => fresh('comet.min.js'),
};

// gaps records the topicgap events of t.
function gaps(t) {
  const got = [];
  t.c.addEventListener('topicgap', (e) => got.push(e));
  return got;
}

for (const [build, make] of Object.entries(BUILDS)) {
  const Comet = make();
  const it = (name, fn) => test(`topics ${build}: ${name}`, fn);

  it('comet-topics.js adds to the shim it is loaded with, and exports that Comet', () => {
    if (build !== 'src') assert.equal(Comet, require(path.join(__dirname, '..', 'dist', build === 'min' ? 'comet.min.js' : 'comet.js')));
    assert.equal(typeof Comet.prototype.$topics, 'function');
  });

  it('the negotiate body: without the option as before; {} asks for positions; positions are presented', () => {
    let t = start(Comet, { options: { transports: ['longpoll'] } });
    assert.equal(t.net.last('negotiate').body, '{"transports":["longpoll"],"binary":true,"noStatus":true}');
    assert.equal(t.c.topics, undefined);
    t = start(Comet, { options: { transports: ['longpoll'], topics: {} } });
    assert.equal(t.net.last('negotiate').body, '{"transports":["longpoll"],"binary":true,"noStatus":true,"positions":true}');
    assert.deepEqual(t.c.topics, {});
    const given = { chat: { epoch: 'e1', offset: 41 }, 'news/eu': { epoch: 'b7', offset: 0 } };
    t = start(Comet, { options: { transports: ['longpoll'], topics: given } });
    assert.deepEqual(JSON.parse(t.net.last('negotiate').body), {
      transports: ['longpoll'], binary: true, noStatus: true, positions: true, topics: given
    });
    assert.deepEqual(t.c.topics, given);
    assert.notEqual(t.c.topics, given, 'a copy: the page\'s object is never changed');
    assert.throws(() => start(Comet, { options: { topics: 'chat' } }), TypeError);
  });

  it('a message of a topic carries event.topic and moves the position; an ordinary one has no topic', () => {
    const t = start(Comet, { options: { topics: { chat: { epoch: 'e1', offset: 40 } } } });
    const ws = openWebSocket(t, { positions: true });
    const seen = [];
    t.c.onmessage = (e) => seen.push([e.data, e.topic, JSON.parse(JSON.stringify(t.c.topics))]);
    ws.message('["m",1,"hello","chat","e1",41]\n["m",2,"just for you"]\n["m",3,"more","news","b7",9]\n');
    assert.deepEqual(seen, [
      ['hello', 'chat', { chat: { epoch: 'e1', offset: 41 } }],
      ['just for you', undefined, { chat: { epoch: 'e1', offset: 41 } }],
      ['more', 'news', { chat: { epoch: 'e1', offset: 41 }, news: { epoch: 'b7', offset: 9 } }],
    ]);
    const msgs = t.of('message');
    assert.equal(msgs[0].topic, 'chat');
    assert.ok(Object.prototype.hasOwnProperty.call(msgs[0], 'topic'));
    assert.ok(!('topic' in msgs[1]), 'an ordinary message has no topic property');
    assert.equal(msgs[0].target, t.c);
    assert.equal(msgs[0].type, 'message');
  });

  it('a binary message of a topic is delivered per binaryType, with its topic', () => {
    const t = start(Comet, { options: { topics: {} } });
    const ws = openWebSocket(t, { positions: true });
    t.c.binaryType = 'arraybuffer';
    ws.message('["b",1,"AAH/","chat/room:1","Zk3",9007199254740991]');
    const [m] = t.of('message');
    assert.deepEqual([...new Uint8Array(m.data)], [0, 1, 255]);
    assert.equal(m.topic, 'chat/room:1');
    assert.deepEqual(t.c.topics, { 'chat/room:1': { epoch: 'Zk3', offset: 9007199254740991 } });
  });

  it('subscribed frames: sequenced and acknowledged like messages; recovered 1 moves the position only', () => {
    const t = start(Comet, { options: { topics: { chat: { epoch: 'e1', offset: 41 } } } });
    const ws = openWebSocket(t, { positions: true });
    const gapped = gaps(t);
    const acks = () => wsFrames(ws).filter((f) => f[0] === 'a').map((f) => f[1]);
    ws.message('["y",1,"chat","e1",41,1]\n["m",2,"next","chat","e1",42]\n');
    assert.deepEqual(t.messages(), ['next']);
    assert.deepEqual(gapped, []);
    assert.deepEqual(t.c.topics, { chat: { epoch: 'e1', offset: 42 } });
    t.clock.tick(200);
    assert.deepEqual(acks(), [2]);
    ws.message('["y",3,"news","b7",0,1]');
    assert.deepEqual(t.c.topics.news, { epoch: 'b7', offset: 0 });
    t.clock.tick(200);
    assert.deepEqual(acks(), [2, 3], 'a subscribed frame alone is acknowledged');
    ws.message('["y",5,"x","e",1,1]');
    assert.deepEqual(t.of('close').map((e) => e.code), [1002], 'a gap in the sequence');
  });

  it('a subscribed frame with recovered 0 dispatches topicgap, and nothing else', () => {
    const t = start(Comet, { options: { topics: { chat: { epoch: 'e1', offset: 41 } } } });
    const ws = openWebSocket(t, { positions: true });
    const gapped = gaps(t);
    let handler;
    t.c.ontopicgap = (e) => { handler = e; };
    const before = t.events.length;
    ws.message('["y",1,"chat","e2",7,0]');
    assert.equal(gapped.length, 1);
    const [e] = gapped;
    assert.equal(handler, e, 'the ontopicgap handler runs too');
    assert.deepEqual([e.type, e.target, e.topic, e.epoch, e.offset], ['topicgap', t.c, 'chat', 'e2', 7]);
    assert.equal(t.events.length, before, 'no message, no other event');
    assert.deepEqual(t.c.topics, { chat: { epoch: 'e2', offset: 7 } });
    assert.equal(t.c.readyState, Comet.OPEN);
  });

  it('a resent frame (a sequence number already received) changes no position and dispatches nothing', () => {
    const t = start(Comet, { options: { topics: {} } });
    const ws = openWebSocket(t, { positions: true });
    const gapped = gaps(t);
    ws.message('["m",1,"a","chat","e1",5]\n["m",2,"b","chat","e1",6]\n');
    ws.message('["m",1,"a","chat","e1",5]\n["y",2,"chat","e0",1,0]\n');
    assert.deepEqual(t.messages(), ['a', 'b']);
    assert.deepEqual(gapped, []);
    assert.deepEqual(t.c.topics, { chat: { epoch: 'e1', offset: 6 } });
  });

  it('after close() positions stay those of the messages the page received', () => {
    const t = start(Comet, { options: { topics: {} } });
    const ws = openWebSocket(t, { positions: true });
    ws.message('["m",1,"a","chat","e1",5]');
    t.c.close();
    ws.message('["m",2,"b","chat","e1",6]\n["y",3,"news","e",1,0]\n');
    assert.deepEqual(t.messages(), ['a']);
    assert.deepEqual(t.c.topics, { chat: { epoch: 'e1', offset: 5 } });
  });

  it('a server that does not agree: topic frames are a protocol error (1002), positions unchanged', () => {
    for (const frame of ['["m",1,"hello","chat","e1",41]', '["y",1,"chat","e1",41,1]']) {
      const t = start(Comet, { options: { topics: { chat: { epoch: 'e1', offset: 40 } } } });
      const ws = openWebSocket(t); // no positions in the answer
      ws.message(frame);
      assert.deepEqual(t.of('close').map((e) => e.code), [1002], frame);
      assert.deepEqual(t.messages(), []);
      assert.deepEqual(t.c.topics, { chat: { epoch: 'e1', offset: 40 } });
    }
  });

  it('without the option, a server that says positions: true changes nothing: topic frames are 1002', () => {
    const t = start(Comet);
    const ws = openWebSocket(t, { positions: true });
    ws.message('["m",1,"x"]');
    ws.message('["m",2,"hello","chat","e1",41]');
    assert.deepEqual(t.messages(), ['x']);
    assert.deepEqual(t.of('close').map((e) => e.code), [1002]);
  });

  it('an invalid topic frame fails the session with its code once positions are agreed', () => {
    for (const [frame, code] of [['["y",1,"chat","e1",41,2]', 1002], ['["m",1,"x","","e",1]', 1002],
      ['["m",1,"x","t\\ud800","e",1]', 1007]]) {
      const t = start(Comet, { options: { topics: {} } });
      const ws = openWebSocket(t, { positions: true });
      ws.message(frame);
      assert.deepEqual(t.of('close').map((e) => e.code), [code], frame);
    }
  });

  it('on HTTP transports too: topic frames on a stream, and a POST\'s answer still decodes', () => {
    const t = start(Comet, { options: { topics: {}, transports: ['longpoll'] } });
    negotiate(t, { positions: true });
    let poll = t.net.last('longpoll');
    poll.respond(200, openFrame(poll));
    assert.equal(t.c.readyState, Comet.OPEN);
    t.c.send('up');
    t.net.last('send').respond(200, '["a",1]\n');
    assert.equal(t.c.bufferedAmount, 0);
    poll = t.net.last('longpoll');
    poll.respond(200, openFrame(poll, 1) + '["y",1,"chat","e1",3,0]\n["m",2,"m4","chat","e1",4]\n');
    assert.deepEqual(t.messages(), ['m4']);
    assert.equal(t.of('message')[0].topic, 'chat');
    assert.deepEqual(t.c.topics, { chat: { epoch: 'e1', offset: 4 } });
    assert.equal(t.of('close').length, 0);
  });

  it('a fresh session (reconnect) presents the positions read on the previous one', () => {
    const t = start(Comet, { options: { reconnect: true, topics: { chat: { epoch: 'e1', offset: 1 } } } });
    const ws = openWebSocket(t, { positions: true });
    ws.message('["m",1,"a","chat","e1",2]\n["y",2,"news","b7",10,1]\n');
    const persisted = JSON.stringify(t.c.topics);
    ws.message('["c",3,3000,"expired",0]');
    t.clock.tick(t.of('reconnecting').pop().delay);
    assert.deepEqual(JSON.parse(t.net.last('negotiate').body).topics,
      { chat: { epoch: 'e1', offset: 2 }, news: { epoch: 'b7', offset: 10 } });
    // A page that persisted them passes them to its next Comet.
    const next = start(Comet, { options: { topics: JSON.parse(persisted) } });
    assert.deepEqual(JSON.parse(next.net.last('negotiate').body).topics, JSON.parse(persisted));
  });
}

for (const [build, make] of Object.entries(SHIMS)) {
  test(`topics ${build}: the topics option without comet-topics.js throws TypeError`, () => {
    const Comet = make();
    assert.equal(Comet.prototype.$topics, undefined);
    assert.throws(() => start(Comet, { options: { topics: {} } }), TypeError);
  });
}

test('topics with comet-dom.js: a real MessageEvent with topic, and a topicgap Event with its on-handler', () => {
  const Comet = loadDOM(loadTopics(load({}).Comet, {}).Comet, globalThis);
  const t = start(Comet, { options: { topics: {} } });
  const ws = openWebSocket(t, { positions: true });
  let gap;
  t.c.ontopicgap = (e) => { gap = e; };
  ws.message('["m",1,"hello","chat","e1",41]\n["y",2,"news","b7",3,0]\n');
  const [m] = t.of('message');
  assert.ok(m instanceof MessageEvent);
  assert.deepEqual([m.data, m.topic], ['hello', 'chat']);
  assert.ok(gap instanceof Event);
  assert.deepEqual([gap.type, gap.topic, gap.epoch, gap.offset, gap.target], ['topicgap', 'news', 'b7', 3, t.c]);
});
