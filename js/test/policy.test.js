'use strict';
// The session's timing and classification decisions, as tables.

const test = require('node:test');
const assert = require('node:assert/strict');
const { load } = require('../build.js');

const m = load({});

test('attach timeout: minTimeout + 4×RTT, capped', () => {
  for (const [rtt, lo, hi, want] of [[0, 300, 1e4, 300], [50, 300, 1e4, 500], [5000, 300, 1e4, 1e4]]) {
    assert.equal(m.attachTimeout(rtt, lo, hi), want);
  }
});

test('head start: max(250 ms, 3 round trips)', () => {
  for (const [rtt, want] of [[1, 250], [83, 250], [100, 300], [400, 1200]]) {
    assert.equal(m.headStart(rtt), want);
  }
});

test('backoff is capped and jittered', () => {
  for (let n = 0; n < 40; n++) {
    const lo = m.backoff(n, 0, 100, 5000);
    const hi = m.backoff(n, 0.999, 100, 5000);
    const cap = Math.min(5000, 100 * 2 ** n);
    assert.equal(lo, Math.round(cap / 2), `n=${n} floor`);
    assert.ok(hi <= cap && hi >= lo, `n=${n} within [cap/2, cap]`);
  }
  assert.equal(m.backoff(1e6, 0.5, 1000, 30000), 22500);
});

test('resend pause: ackDelay, doubling to 1 s', () => {
  let p = 0;
  const seen = [];
  for (let i = 0; i < 6; i++) seen.push(p = m.nextPause(p, 200));
  assert.deepEqual(seen, [200, 400, 800, 1000, 1000, 1000]);
});

test('keep-alive: idle cuts, early deaths and ordinary drops', async (t) => {
  const iv = 25000;
  const cases = [
    {
      name: 'two deaths after the same silence: a proxy idle timeout, halve it',
      deaths: [[15000, 15000], [15100, 15050]],
      want: [{}, { _why: 'idle_cut', _heartbeat: 7525 }]
    },
    {
      name: 'deaths after different silences are not an idle cut',
      deaths: [[40000, 15000], [60000, 5000]],
      want: [{}, {}]
    },
    {
      name: 'an idle cut shorter than the early threshold is still an idle cut',
      deaths: [[5000, 5000], [5000, 5000]],
      want: [{}, { _why: 'idle_cut', _heartbeat: 2500 }]
    },
    {
      name: 'three early deaths while busy demote the transport',
      deaths: [[3000, 10], [2000, 50], [2500, 20]],
      want: [{}, {}, { _why: 'early_death', _demote: 1 }]
    },
    {
      name: 'a long-lived connection in between resets the count',
      deaths: [[3000, 10], [2000, 50], [60000, 20], [2500, 20]],
      want: [{}, {}, {}, {}]
    },
    {
      name: 'a lifetime cap no shorter heartbeat can fix ends in demotion',
      deaths: [[3000, 3000], [3000, 3000], [3000, 1500], [3000, 1500], [3000, 1500]],
      want: [{}, { _why: 'idle_cut', _heartbeat: 1500 }, {}, {}, { _why: 'early_death', _demote: 1 }],
      minHb: 1000
    }
  ];
  for (const tc of cases) {
    await t.test(tc.name, () => {
      const k = {};
      const got = tc.deaths.map(([life, idle]) => m.keepalive(k, life, idle, iv, tc.minHb || 1000));
      assert.deepEqual(got, tc.want);
    });
  }
});

test('close codes that allow a fresh session exclude auth failures', () => {
  for (const code of [1011, 3000, 3001, 3002, 3004, 3006]) assert.ok(m.RECONNECT[code], String(code));
  for (const code of [1000, 1001, 1002, 1007, 1008, 1009, 3003, 3005, 4000]) assert.ok(!m.RECONNECT[code], String(code));
});
