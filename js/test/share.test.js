'use strict';
// comet-share.js: the tabs of a page share one carrier (PROTOCOL.md
// section 16), each Comet keeping its own session. The tabs are fake
// pages of one browser (tabs.js); the test plays the server, the carrier's
// and, through it, each session's.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { load, loadShare } = require('../build.js');
const { World } = require('./tabs');
const { NEGOTIATED, frames } = require('./harness');

const URL_ = 'https://example.test/comet';

// BUILDS: the sources (with internals) and both shipped files.
const BUILDS = {
  src: () => loadShare(load({}).Comet, {}).Comet,
  dist: () => require(path.join(__dirname, '..', 'dist', 'comet-share.js')),
  min: () => require(path.join(__dirname, '..', 'dist', 'comet-share.min.js'))
};

// target parses a sub-request's path and query.
function parse(target) {
  const u = new URL('https://example.test' + target);
  return { endpoint: path.posix.basename(u.pathname), query: Object.fromEntries(u.searchParams) };
}

// CarrierServer plays the server's end of the carriers (links) of the
// leader tab: a link of polls (id P…) and a stream (id S…), as PROTOCOL.md
// section 16 has them.
class CarrierServer {
  constructor(tab, tag = '1') {
    this.tab = tab;
    this.tag = tag;
    this.links = new Map(); // id -> {stream, x, n, queued: [[n, line]]}
    this.opened = 0;
    this.subs = [];
  }

  // accept answers the leader's opening GETs: the polls' with their hello,
  // the stream's (unless stream is false) with its pad and hello; then
  // the ops that follow, the stream's ping among them.
  accept({ stream = true } = {}) {
    for (const x of this.tab.net.open('share').filter((r) => r.method === 'GET' && !r.query.c && !r.accepted)) {
      x.accepted = true;
      if (x.query.s === '1') {
        if (!stream) continue;
        const id = 'S' + this.tag + (this.opened++ ? '.' + this.opened : '');
        this.links.set(id, { stream: true, x, n: 0, queued: [] });
        x.progress(' '.repeat(2048) + '\n' + `["o","${id}",6356992]\n`);
      } else {
        const id = 'P' + this.tag;
        this.links.set(id, { stream: false, x: null, n: 0, queued: [] });
        x.respond(200, `["o","${id}",6356992]\n`);
      }
    }
    this.sync();
    return this;
  }

  frame(id, sub, kind, ...rest) {
    const l = this.links.get(id);
    const line = JSON.stringify([++l.n, sub, kind, ...rest]) + '\n';
    if (l.stream) {
      l.x.progress(line);
    } else {
      l.queued.push([l.n, line]);
      this.sync();
    }
  }

  // sync answers every ops POST waiting (pings echoed, sub-requests
  // recorded, aborts marked) and every poll that has frames to take.
  sync() {
    for (let i = 0; i < 100; i++) {
      const x = this.tab.net.open('share').find((r) => r.method === 'POST');
      const poll = this.tab.net.open('share').find((r) => r.method === 'GET' && r.query.c &&
        this.links.get(r.query.c).queued.some(([n]) => n > +r.query.n));
      if (poll) {
        const l = this.links.get(poll.query.c);
        l.queued = l.queued.filter(([n]) => n > +poll.query.n);
        poll.respond(200, l.queued.map(([, line]) => line).join(''));
        continue;
      }
      if (!x) return;
      const id = x.query.c;
      assert.ok(this.links.has(id), `ops for ${id}`);
      const ops = JSON.parse(x.body);
      x.respond(200, '{}');
      for (const op of ops) {
        if (op[1] === 'p') this.frame(id, 0, 'p');
        else if (op[1] === 'x') this.subs.find((r) => r.sub === op[0] && r.link === id).aborted = true;
        else this.subs.push({ link: id, sub: op[0], method: op[1], target: op[2], body: op[3], ...parse(op[2]) });
      }
    }
    throw new Error('ops without end');
  }

  // pending returns the open subs to endpoint name, of session sid if
  // given.
  pending(name, sid) {
    return this.subs.filter((s) => s.endpoint === name && !s.done && !s.aborted && (!sid || s.query.s === sid));
  }

  respond(s, status, text) {
    this.frame(s.link, s.sub, 'h', status);
    if (text) this.frame(s.link, s.sub, 'd', text);
    this.frame(s.link, s.sub, 'e');
    s.done = true;
    this.sync();
  }

  // parked returns the open poll of the link of polls, if any.
  parked() {
    return this.tab.net.open('share').find((r) => r.method === 'GET' && r.query.c === 'P' + this.tag);
  }

  stream(id = 'S' + this.tag) {
    const l = this.links.get(id);
    return l && l.x;
  }
}

// openFrame is the open frame a poll starts with.
function openFrame(s, ack = 0, ticket = 'TX') {
  return `["o",${s.query.a},${ack},"${ticket}",25000]\n`;
}

// page makes a Comet in tab on long-polling alone (no early probe), and
// records its events.
function page(Comet, tab, options = {}) {
  const c = new Comet(options.url || URL_, Object.assign({ globals: tab.globals, transports: ['longpoll'] }, options));
  const events = [];
  for (const type of ['open', 'message', 'close', 'reconnecting', 'error']) c.addEventListener(type, (e) => events.push(e));
  return { c, events, of: (type) => events.filter((e) => e.type === type), messages: () => events.filter((e) => e.type === 'message').map((e) => e.data) };
}

// negotiate answers tab's negotiate with session sid.
function negotiate(tab, sid, transports = ['longpoll']) {
  const x = tab.net.open('negotiate').pop();
  assert.ok(x, 'each tab negotiates its own session, on its own');
  x.respond(200, JSON.stringify(Object.assign({}, NEGOTIATED, { sid, secret: 'K' + sid, transports })));
}

// until ticks tab's clock by 100 ms at a time, for at most 30 s, until
// done holds: a backoff ends within it.
async function until(tab, done) {
  for (let i = 0; i < 300 && !done(); i++) {
    tab.clock.tick(100);
    await tab.world.settle();
  }
  assert.ok(done(), 'within 30 s');
}

// twoPages opens a session in tab A, which leads, then one in tab B, and
// negotiates both.
async function twoPages(Comet) {
  const w = new World();
  const A = w.tab(), B = w.tab();
  const a = page(Comet, A);
  await w.settle();
  const b = page(Comet, B);
  await w.settle();
  negotiate(A, 'SA');
  negotiate(B, 'SB');
  await w.settle();
  return { w, A, B, a, b };
}

// twoTabs opens a session in tab A, which leads, then one in tab B, and
// opens A's carrier; both sessions open through it.
async function twoTabs(Comet) {
  const { w, A, B, a, b } = await twoPages(Comet);
  const srv = new CarrierServer(A).accept();
  await w.settle();
  srv.sync();
  for (const [sid, p] of [['SA', a], ['SB', b]]) {
    const [poll] = srv.pending('longpoll', sid);
    assert.ok(poll, `the first poll of ${sid} goes through the carrier`);
    srv.respond(poll, 200, openFrame(poll));
    await w.settle();
    srv.sync();
    assert.equal(p.c.readyState, 1, `${sid} opens`);
  }
  return { w, A, B, a, b, srv };
}

for (const [build, get] of Object.entries(BUILDS)) {
  describe(`comet-share.js (${build})`, () => {
    const Comet = get();

    it('two tabs share one carrier; each Comet keeps its own session', async () => {
      const { w, A, B, a, b, srv } = await twoTabs(Comet);
      assert.equal(w.holder('comet-share ' + URL_), A, 'the first tab leads');
      // Downstream: each session's poll answers its own messages.
      const pb = srv.pending('longpoll', 'SB')[0];
      assert.equal(pb.query.d, '1');
      srv.respond(pb, 200, openFrame(pb, 0) + '["m",1,"to b"]\n');
      await w.settle();
      srv.sync();
      assert.deepEqual(b.messages(), ['to b']);
      assert.deepEqual(a.messages(), []);
      // Upstream: B's POST goes through A's carrier, with B's secret.
      b.c.send('from b');
      await w.settle();
      srv.sync();
      const [post] = srv.pending('send', 'SB');
      assert.ok(post, 'B sends through the carrier');
      assert.equal(post.method, 'POST');
      assert.deepEqual(frames(post.body).map((f) => f.slice(0, 3)), [['k', 'KSB', 1], ['m', 1, 'from b']]);
      srv.respond(post, 200, '["a",1]\n');
      await w.settle();
      assert.equal(b.c.bufferedAmount, 0, 'acknowledged');
      // B made no session request of its own; A one carrier stream.
      assert.deepEqual(B.net.all.map((x) => x.endpoint), ['negotiate']);
      assert.equal(A.net.all.filter((x) => x.endpoint === 'share' && x.query.s === '1').length, 1, 'one stream');
      assert.equal(post.link, 'S1', 'new sub-requests go on the stream, once proven');
      assert.ok(!srv.parked(), 'the polls end with their last sub-request, once its abort is sent');
      assert.equal(A.net.all.filter((x) => x.endpoint === 'longpoll' || x.endpoint === 'send').length, 0);
      assert.deepEqual([a.of('close').length, b.of('close').length], [0, 0]);
      // Closing B's Comet closes only B's session.
      b.c.close(1000);
      await w.settle();
      srv.sync();
      const [bye] = srv.pending('send', 'SB');
      assert.ok(frames(bye.body).some((f) => f[0] === 'c'), 'B sends its close');
      assert.equal(a.c.readyState, 1);
    });

    it('polls carry at once; a stream that does not prove itself is given up, for a day', async () => {
      const w = new World();
      const A = w.tab();
      const a = page(Comet, A);
      await w.settle();
      negotiate(A, 'SA');
      await w.settle();
      const stream = A.net.open('share').find((x) => x.query.s === '1');
      assert.ok(stream, 'a stream is tried beside the polls');
      // A proxy holds the stream back: no hello, no echo. The polls
      // carry meanwhile.
      const srv = new CarrierServer(A).accept({ stream: false });
      const [first] = srv.pending('longpoll', 'SA');
      assert.equal(first.link, 'P1');
      srv.respond(first, 200, openFrame(first));
      assert.equal(a.c.readyState, 1);
      assert.equal(srv.parked().query.n, '3', 'each poll acknowledges what it read');
      A.clock.tick(2000);
      assert.ok(stream.aborted, 'the stream is given up');
      assert.ok(+A.globals.localStorage.getItem('comet-share-polls:' + URL_) > A.clock.t, 'remembered');
      const [second] = srv.pending('longpoll', 'SA');
      assert.equal(second.link, 'P1', 'the polls go on');
      // A poll whose answer is lost is sent again, with the same ack; one
      // refused as an unknown carrier ends the link, and the next opens
      // polls alone.
      const lost = srv.parked();
      lost.respond(0, '');
      const again = srv.parked();
      assert.notEqual(again, lost);
      assert.equal(again.query.n, '3');
      again.respond(404, '{"code":"share_not_found","message":"gone"}');
      A.clock.tick(30000);
      await w.settle();
      assert.deepEqual(A.net.open('share').map((x) => [x.query.s, x.query.c]), [[undefined, undefined]], 'polls alone');
      assert.equal(a.of('close').length, 0);
    });

    it('a server that does not share: every tab goes to the network', async () => {
      const { w, A, B, a, b } = await twoPages(Comet);
      for (const x of A.net.open('share')) x.respond(404, '{"code":"transport_disabled","message":"no"}');
      await w.settle();
      for (const [tab, p] of [[A, a], [B, b]]) {
        const poll = tab.net.open('longpoll')[0];
        assert.ok(poll, 'the session polls by itself, at once');
        poll.respond(200, openFrame(poll));
        assert.equal(p.c.readyState, 1);
      }
      assert.equal(A.net.all.filter((x) => x.endpoint === 'share').length, 2, 'asked once, by polls and stream');
    });

    it('the leader tab closes: another takes over, and every session resumes through it', async () => {
      const { w, A, B, b, srv } = await twoTabs(Comet);
      const pb = srv.pending('longpoll', 'SB')[0];
      srv.respond(pb, 200, openFrame(pb) + '["m",1,"one"]\n');
      await w.settle();
      A.fire('pagehide', { persisted: false });
      w.close(A);
      await w.settle();
      assert.equal(w.holder('comet-share ' + URL_), B, 'B leads');
      await until(B, () => B.net.open('share').length);
      const srvB = new CarrierServer(B, '2').accept();
      await w.settle();
      srvB.sync();
      const [poll] = srvB.pending('longpoll', 'SB');
      assert.ok(poll, 'B polls again, through its own carrier');
      assert.equal(poll.query.ack, '1', 'from its ack');
      srvB.respond(poll, 200, openFrame(poll, 0) + '["m",2,"two"]\n');
      await w.settle();
      assert.deepEqual(b.messages(), ['one', 'two']);
      assert.equal(b.of('close').length, 0);
      assert.ok(b.of('reconnecting').length <= 1, 'at most one reconnecting');
    });

    it('a frozen leader is replaced, and resigns when it wakes', async () => {
      const { w, A, B, b, srv } = await twoTabs(Comet);
      A.frozen = true;
      // B's parked poll goes unanswered; B asks whether the leader
      // lives, hears nothing, and takes the lock.
      for (let i = 0; i < 10 && w.holder('comet-share ' + URL_) !== B; i++) {
        B.clock.tick(1500);
        await w.settle();
      }
      assert.equal(w.holder('comet-share ' + URL_), B, 'B took the lock over');
      A.frozen = false;
      await w.settle();
      await until(B, () => B.net.open('share').length);
      const srvB = new CarrierServer(B, '2').accept();
      await w.settle();
      srvB.sync();
      assert.ok(srvB.pending('longpoll', 'SB').length, 'B polls through its own carrier');
      // A, awake, is told by its lock that it no longer leads: its
      // carrier's stream is closed.
      assert.ok(srv.stream().aborted, 'the old carrier ends');
      assert.equal(b.of('close').length, 0);
    });

    it('a leader that answers its tabs but whose carrier delivers nothing is replaced', async () => {
      const { w, A, B, b, srv } = await twoTabs(Comet);
      // A's messages go on, but nothing of its carrier's: the server no
      // longer answers (as for a tab whose network callbacks are frozen).
      b.c.send('stuck');
      await w.settle();
      const knocks = () => B.posted.filter((m) => m.t === 'K').length;
      for (let i = 0; i < 10 && w.holder('comet-share ' + URL_) !== B; i++) {
        B.clock.tick(1500);
        await w.settle();
      }
      assert.ok(knocks() > 0, 'B asked A for a ping\'s round trip');
      assert.equal(w.holder('comet-share ' + URL_), B, 'B took the lock over');
      assert.ok(srv.stream().aborted, 'A, its lock taken, ended its carrier');
      await until(B, () => B.net.open('share').length);
      const srvB = new CarrierServer(B, '2').accept();
      await w.settle();
      const resent = () => srvB.subs.some((x) => x.endpoint === 'send' && frames(x.body).some((f) => f[2] === 'stuck'));
      await until(B, () => {
        srvB.sync();
        for (const poll of srvB.pending('longpoll', 'SB')) srvB.respond(poll, 200, openFrame(poll));
        return resent();
      });
      assert.equal(b.of('close').length, 0);
    });

    it('without Web Locks, the tabs elect one leader by claims', async () => {
      const w = new World();
      const A = w.tab({ noLocks: true }), B = w.tab({ noLocks: true });
      page(Comet, A);
      await w.settle();
      A.clock.tick(150);
      await w.settle();
      page(Comet, B);
      await w.settle();
      B.clock.tick(150);
      await w.settle();
      negotiate(A, 'SA');
      negotiate(B, 'SB');
      await w.settle();
      assert.ok(A.net.open('share').length > 0, 'A leads');
      assert.equal(B.net.open('share').length, 0, 'B follows');
      const srv = new CarrierServer(A).accept();
      await w.settle();
      srv.sync();
      assert.equal(srv.pending('longpoll').length, 2);
    });

    it('transports a carrier does not take make a Comet of its own', async () => {
      const w = new World();
      const A = w.tab();
      const a = page(Comet, A, { transports: ['sse'] });
      await w.settle();
      negotiate(A, 'SA', ['sse']);
      await w.settle();
      assert.equal(A.net.open('sse').length, 1, 'its EventSource, the browser\'s');
      assert.equal(A.net.open('share').length, 0);
      assert.equal(a.of('close').length, 0);
    });

    it('share: false, or a page without BroadcastChannel, makes a Comet of its own', async () => {
      const w = new World();
      const A = w.tab(), B = w.tab({ without: ['BroadcastChannel'] });
      B.globals.BroadcastChannel = undefined;
      const a = page(Comet, A, { share: false });
      const b = page(Comet, B);
      await w.settle();
      negotiate(A, 'SA');
      negotiate(B, 'SB');
      await w.settle();
      for (const tab of [A, B]) {
        assert.equal(tab.net.open('longpoll').length, 1);
        assert.equal(tab.net.open('share').length, 0);
      }
      assert.ok(a.c instanceof Comet && b.c instanceof Comet);
    });

    it('a proven carrier stream takes the XHR streams; one past its budget is replaced, its XHR streams attaching again', async () => {
      const w = new World();
      const A = w.tab();
      const a = page(Comet, A, { transports: ['streaming'] });
      await w.settle();
      negotiate(A, 'SA', ['streaming']);
      await w.settle();
      const srv = new CarrierServer(A).accept();
      // The first race's stream, carried by the polls (the carrier stream
      // was not proven when it began), proves itself there.
      const [first] = srv.pending('streaming', 'SA');
      assert.equal(first.link, 'P1');
      srv.frame('P1', first.sub, 'h', 200);
      srv.frame('P1', first.sub, 'd', ' '.repeat(2048) + '\n' + openFrame(first));
      srv.sync();
      const [probe] = srv.pending('send', 'SA');
      const p = frames(probe.body).find((f) => f[0] === 'p');
      srv.respond(probe, 200, '["a",0]\n');
      srv.frame('P1', first.sub, 'd', `["e",${JSON.stringify(p[2])}]\n`);
      assert.equal(a.c.readyState, 1);
      assert.equal(srv.pending('streaming', 'SA').length, 1, 'a probe of the first race is not moved');
      for (const post of srv.pending('send', 'SA')) srv.respond(post, 200, '["a",0]\n');
      // Settled, it moves to the proven stream at its next frame.
      A.clock.tick(5000);
      srv.frame('P1', first.sub, 'd', '["m",1,"one"]\n');
      const [xs] = srv.pending('streaming', 'SA').filter((s) => s !== first);
      assert.ok(first.aborted && xs, 'the session attaches again');
      assert.deepEqual([xs.link, xs.query.d, xs.query.ack], ['S1', '1', '1']);
      assert.ok(!srv.parked(), 'the polls end with their last sub-request, once its abort is sent');
      // Past the budget, a fresh stream; once proven, the session moves.
      srv.frame('S1', xs.sub, 'h', 200);
      let big = openFrame(xs);
      for (let seq = 2; seq < 20; seq++) big += `["m",${seq},"${'x'.repeat(60000)}"]\n`;
      srv.frame('S1', xs.sub, 'd', big);
      assert.equal(a.messages().length, 19);
      assert.ok(A.net.open('share').some((x) => x.query.s === '1' && x !== srv.stream()), 'a fresh stream is opened');
      assert.ok(!xs.aborted, 'the stream goes on meanwhile');
      srv.accept();
      const [moved] = srv.pending('streaming', 'SA').filter((s) => s !== xs);
      assert.ok(xs.aborted && moved, 'once the fresh stream is proven, the session attaches again');
      assert.deepEqual([moved.link, moved.query.ack], ['S1.2', '19']);
      for (const post of srv.pending('send', 'SA')) srv.respond(post, 200, '["a",0]\n');
      assert.ok(srv.stream().aborted, 'the old stream ends with its last sub-request');
      srv.frame('S1.2', moved.sub, 'h', 200);
      srv.frame('S1.2', moved.sub, 'd', openFrame(moved) + '["m",20,"after"]\n');
      assert.deepEqual([a.messages()[0], a.messages()[19]], ['one', 'after']);
      assert.deepEqual([a.of('close').length, a.of('reconnecting').length], [0, 0], 'no reconnecting, no close');
    });

    it('a tab the server refuses affects no other', async () => {
      const { w, A, B, a, b, srv } = await twoTabs(Comet);
      // B's session is gone at the server: its poll is refused, through
      // the carrier, as it would be alone; A's goes on.
      const [pb] = srv.pending('longpoll', 'SB');
      srv.respond(pb, 404, '{"code":"session_not_found","message":"gone"}');
      await w.settle();
      assert.deepEqual(b.of('close').map((e) => e.code), [3000]);
      const [pa] = srv.pending('longpoll', 'SA');
      srv.respond(pa, 200, openFrame(pa) + '["m",1,"still here"]\n');
      await w.settle();
      assert.deepEqual(a.messages(), ['still here']);
      assert.equal(a.of('close').length, 0);
      // A third tab refused at negotiate closes alone, and B's closing
      // left the carrier to A's session.
      const C = w.tab();
      const c = page(Comet, C);
      await w.settle();
      C.net.open('negotiate').pop().respond(403, '{"code":"forbidden","message":"no"}');
      await w.settle();
      assert.deepEqual(c.of('close').map((e) => e.code), [3003]);
      assert.equal(a.c.readyState, 1);
      assert.equal(B.net.open('share').length + C.net.open('share').length, 0, 'A still leads');
    });

    it('the tabs of two endpoints do not mix', async () => {
      const w = new World();
      const A = w.tab(), B = w.tab();
      page(Comet, A);
      await w.settle();
      page(Comet, B, { url: 'https://example.test/other' });
      await w.settle();
      negotiate(A, 'SA');
      negotiate(B, 'SB');
      await w.settle();
      assert.equal(A.net.open('share')[0].url.indexOf(URL_ + '/share'), 0);
      assert.equal(B.net.open('share')[0].url.indexOf('https://example.test/other/share'), 0, 'B leads its own endpoint');
    });

    it('a tab that goes has its sub-requests aborted', async () => {
      const { w, B, srv } = await twoTabs(Comet);
      B.fire('pagehide', { persisted: false });
      w.close(B);
      await w.settle();
      srv.sync();
      assert.ok(srv.subs.filter((s) => s.query.s === 'SB' && !s.done).every((s) => s.aborted), 'B\'s poll is aborted');
      assert.ok(srv.subs.filter((s) => s.query.s === 'SA' && !s.done).every((s) => !s.aborted));
    });
  });
}

describe('comet-share.js internals', () => {
  const m = loadShare(load({}).Comet, {});

  it('decodes the carrier frames of the golden vectors', () => {
    const v = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'testdata', 'share.json'), 'utf8'));
    for (const f of v.frames) {
      const got = m.decodeCarrierFrame(f.wire);
      const want = { n: f.frame.n, sub: f.frame.sub, kind: f.frame.kind };
      if ('status' in f.frame) want.status = f.frame.status;
      if ('text' in f.frame) want.text = f.frame.text;
      assert.deepEqual(got, want, f.name);
    }
    for (const vec of v.ops.valid) {
      // The shim writes ops as JSON.stringify writes them: the same values.
      const ops = vec.ops.map((o) => o.kind === 'POST' ? [o.sub, o.kind, o.target, o.body] : o.kind === 'GET' ? [o.sub, o.kind, o.target] : [o.sub, o.kind]);
      assert.deepEqual(JSON.parse(JSON.stringify(ops)), JSON.parse(vec.wire), vec.name);
    }
    for (const bad of ['', '[', '{}', '[1,2]', '[1,1,"h"]', '[1,0,"h",200]', '[1,1,"d",2]', '[1.5,1,"e"]', '[-1,1,"e"]',
      '[1,1,"p"]', '[1,0,"e"]', '["o","",1]', '["o","x"]', '[1,1,"z"]', '[9007199254740992,1,"e"]']) {
      assert.equal(m.decodeCarrierFrame(bad), undefined, bad);
    }
    assert.deepEqual(m.decodeCarrierFrame('["o","C1",100]'), { o: 'C1', max: 100 });
  });
});
