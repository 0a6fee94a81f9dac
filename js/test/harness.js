'use strict';
// The harness starts a Comet on fake globals and plays the server's side
// of the protocol by hand.

const assert = require('node:assert/strict');
const path = require('node:path');
const { browser, Storage } = require('./fakes');

// BUILDS are the three forms of the shim the session tests run against:
// the sources (with internals), and both shipped files, so that a bug
// introduced by concatenation or minification (property mangling) fails.
const BUILDS = {
  src: () => require('../build.js').load({}).Comet,
  dist: () => require(path.join(__dirname, '..', 'dist', 'comet.js')),
  min: () => require(path.join(__dirname, '..', 'dist', 'comet.min.js'))
};

const EVENTS = ['open', 'message', 'error', 'close', 'transport', 'reconnecting', 'gap', 'drain'];

const NEGOTIATED = {
  v: 1, sid: 'S1', secret: 'K1', tickets: ['T1', 'T2'], transports: ['websocket', 'sse', 'streaming', 'longpoll'],
  heartbeat: 25000, minHeartbeat: 1000, hold: 25000, grace: 30000, ackDelay: 200, minTimeout: 300, maxTimeout: 10000,
  maxMessage: 65536, maxBatch: 1048576, windowMessages: 8, windowBytes: 1048576
};

// start makes a Comet on fake globals and records its events. raceAlone
// has its localStorage remember WebSocket working for the endpoint, so
// that the first race runs without the early long-poll probe (which such
// a page does not send; early.test.js tests the probe).
function start(Comet, { options = {}, url = 'wss://example.test/comet', protocols, raceAlone, ...env } = {}) {
  if (raceAlone) {
    env.storage = env.storage || new Storage();
    env.storage.setItem('comet:https://example.test/comet', JSON.stringify({ t: 'websocket', x: 9e15 }));
  }
  const b = browser(env);
  const o = Object.assign({ globals: b.globals }, options);
  const c = protocols === undefined ? new Comet(url, o) : new Comet(url, protocols, o);
  const events = [];
  for (const type of EVENTS) {
    c.addEventListener(type, (e) => events.push(e));
  }
  const of = (type) => events.filter((e) => e.type === type);
  const messages = () => of('message').map((e) => e.data);
  return { c, b, net: b.net, clock: b.clock, events, of, messages };
}

// negotiate answers the pending negotiate, after rtt ms.
function negotiate(t, over = {}, rtt = 20) {
  t.clock.tick(rtt);
  t.net.last('negotiate').respond(200, JSON.stringify(Object.assign({}, NEGOTIATED, over)));
}

// frames decodes what the client wrote (a WebSocket message or POST body)
// into frames, the key frame included.
function frames(text) {
  return String(text).split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
}

// sentFrames returns every frame the client sent on a fake WebSocket.
function wsFrames(ws) {
  return ws.sent.flatMap(frames);
}

// openWebSocket runs the happy path: negotiate, WebSocket upgrade, probe
// echo, commit. It returns the fake WebSocket.
function openWebSocket(t, over = {}) {
  negotiate(t, over);
  const ws = t.net.last('websocket');
  ws.open();
  const probe = wsFrames(ws).find((f) => f[0] === 'p');
  ws.message(`["o",${ws.query.a},0,"T3",25000]\n["e",${JSON.stringify(probe[2])}]\n`);
  return ws;
}

// open returns the open frame a downstream attached by conn starts with.
function openFrame(conn, ack = 0, ticket = 'TX', interval = 25000) {
  return `["o",${conn.query.a},${ack},"${ticket}",${interval}]\n`;
}

// postOK answers a POST with the server's ack and, if asked, a ticket.
function postOK(x, ack, ticket = 'TP') {
  const key = frames(x.body)[0];
  x.respond(200, `["a",${ack}]\n` + (key[3] ? `["t","${ticket}"]\n` : ''));
}

// proveStream answers a stream candidate's open frame, its probe POST and
// the echo, then the commit POST.
function proveStream(t, conn, ack = 0) {
  conn.message(openFrame(conn, ack));
  const post = t.net.last('send');
  const probe = frames(post.body).find((f) => f[0] === 'p');
  assert.ok(probe, 'a stream is probed by POST');
  postOK(post, ack);
  conn.message(`["e",${JSON.stringify(probe[2])}]`);
  return conn;
}

module.exports = {
  BUILDS, NEGOTIATED, start, negotiate, frames, wsFrames, openWebSocket, openFrame, postOK, proveStream,
};
