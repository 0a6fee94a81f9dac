'use strict';
// The POST answers of testdata/answers.json (PROTOCOL.md sections 6 and
// 12), read by the shim, which does not ask for replies in POST answers:
// it takes each answer's ack and ticket and nothing else, whatever the
// answer holds, as the server sends replies only to a client that asked.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { BUILDS, start, negotiate, frames, openFrame, postOK } = require('./harness');

const answers = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'testdata', 'answers.json'), 'utf8'));

for (const [build, make] of Object.entries(BUILDS)) {
  const Comet = make();
  const it = (name, fn) => test(`${build}: ${name}`, fn);

  it('the negotiate body does not ask for replies in POST answers', () => {
    const t = start(Comet, { options: { transports: ['longpoll'] } });
    const body = t.net.last('negotiate').body;
    assert.ok(!/replies/.test(body || ''), `negotiate body ${body}`);
  });

  // A topic's message carries its position only to a client that asked
  // for positions, which a session of the core shim has not: it refuses
  // them as malformed (PROTOCOL.md section 12), in a POST answer as on a
  // poll, and no server sends it one.
  const positioned = (v) => v.replies.some((r) => JSON.parse(r).length > 3 && 'mb'.includes(JSON.parse(r)[0]));
  for (const v of answers.valid.filter((v) => !positioned(v))) {
    it(`POST answer "${v.name}": its acks apply, any reply is ignored`, () => {
      const t = start(Comet, { options: { transports: ['longpoll'] } });
      negotiate(t);
      const first = t.net.last('longpoll');
      first.respond(200, openFrame(first));
      assert.equal(t.c.readyState, Comet.OPEN);
      // Enough messages for every ack of the file, each acknowledged.
      for (let i = 1; i <= 8; i++) {
        t.c.send(`up ${i}`);
        t.clock.tick(0);
        postOK(t.net.last('send'), i);
      }
      t.c.send('up 9');
      t.clock.tick(0);
      const post = t.net.last('send');
      assert.deepEqual(frames(post.body).filter((f) => f[0] === 'm'), [['m', 9, 'up 9']]);
      post.respond(200, Buffer.from(v.wire, 'hex').toString('utf8'));
      t.clock.tick(1);
      assert.deepEqual(t.messages(), [], 'a reply in a POST answer reached the page');
      assert.equal(t.of('close').length, 0, 'the answer ended the session');
      assert.equal(t.c.readyState, Comet.OPEN);
    });
  }
}
