'use strict';
// The shipped files: plain ES5, within the size budget, not stale, and
// loadable as a browser global, CommonJS and an ES module.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const vm = require('node:vm');
const zlib = require('node:zlib');
const acorn = require('acorn');
const { build } = require('../build.js');
const { browser } = require('./fakes');

const DIST = path.join(__dirname, '..', 'dist');
const read = (name) => fs.readFileSync(path.join(DIST, name), 'utf8');

// Budgets, minified and gzipped: comet.min.js 7.5 KiB (it was 7 KiB until
// raw binary WebSocket messages, PROTOCOL.md section 4, took it past); the
// two add-ons 2 KiB each, comet-topics.js 1 KiB and comet-share.js 5 KiB.
const BUDGETS = [
  ['comet.min.js', 7680],
  ['comet-dom.min.js', 2048],
  ['comet-tcp.min.js', 2048],
  ['comet-topics.min.js', 1024],
  ['comet-share.min.js', 5120],
];

for (const [name, budget] of BUDGETS) {
  test(`size budget: ${name} gzipped is at most ${budget} bytes`, (t) => {
    const min = read(name);
    const gz = zlib.gzipSync(min, { level: 9 }).length;
    const line = `${name}: ${min.length} bytes minified, ${gz} bytes min+gzip (budget ${budget})`;
    t.diagnostic(line);
    console.log(line);
    assert.ok(gz <= budget, line);
  });
}

test('dist/ is what the sources build to', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'comet-build-'));
  try {
    await build(tmp);
    assert.deepEqual(fs.readdirSync(tmp).sort(), fs.readdirSync(DIST).sort(), 'the build makes the files of dist/');
    for (const name of fs.readdirSync(tmp)) {
      assert.equal(read(name), fs.readFileSync(path.join(tmp, name), 'utf8'), `dist/${name} is stale: run npm run build`);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('the shipped scripts parse as ES5', () => {
  for (const name of ['comet.js', 'comet.min.js', 'comet-dom.js', 'comet-dom.min.js', 'comet-tcp.js', 'comet-tcp.min.js',
    'comet-topics.js', 'comet-topics.min.js', 'comet-share.js', 'comet-share.min.js']) {
    assert.doesNotThrow(() => acorn.parse(read(name), { ecmaVersion: 5, sourceType: 'script' }), name);
  }
});

test('the minified build drops every debug call', () => {
  const min = read('comet.min.js');
  for (const msg of ['negotiated', 'attach ', 'up post', 'down ']) assert.ok(!min.includes(msg), msg);
  assert.ok(read('comet.js').includes("debug(c, 'negotiated'"));
});

test('a script tag defines the global Comet', () => {
  for (const name of ['comet.js', 'comet.min.js']) {
    const win = {};
    win.self = win;
    vm.runInNewContext(read(name), win);
    assert.equal(typeof win.Comet, 'function', name);
    assert.equal(win.Comet.OPEN, 1);
  }
});

test('script tags define the global CometTCP, which uses the page\'s Comet', () => {
  for (const [shim, tcp] of [['comet.js', 'comet-tcp.js'], ['comet.min.js', 'comet-tcp.min.js']]) {
    const win = {};
    win.self = win;
    vm.createContext(win);
    vm.runInContext(read(tcp), win);
    assert.equal(typeof win.CometTCP, 'function', tcp);
    assert.equal(win.CometTCP.OPEN, 1);
    assert.equal(win.CometTCP.closeReasons[3101], 'connection refused');
    assert.throws(() => new win.CometTCP('/comet', 'h', 1), /load comet\.js first/, 'no Comet yet');
    vm.runInContext(read(shim), win);
    // Loaded in either order: the global Comet is looked up per socket.
    const { globals } = browser();
    const s = new win.CometTCP('https://x.test/comet', '::1', 6379, { globals, transports: ['longpoll'] });
    assert.ok(s.comet instanceof win.Comet, tcp);
    assert.equal(s.readyState, 0);
  }
});

test('CommonJS: comet-tcp.js requires the shim beside it; comet-tcp.min.js the minified one', () => {
  const shim = require(path.join(DIST, 'comet.js'));
  const shimMin = require(path.join(DIST, 'comet.min.js'));
  for (const [tcp, want] of [['comet-tcp.js', shim], ['comet-tcp.min.js', shimMin]]) {
    const CometTCP = require(path.join(DIST, tcp));
    assert.equal(typeof CometTCP, 'function');
    const { globals } = browser();
    const s = new CometTCP('https://x.test/comet', 'h', 1, { globals, transports: ['longpoll'] });
    assert.ok(s.comet instanceof want, tcp);
  }
  assert.match(read('comet-tcp.js'), /require\('\.\/comet\.js'\)/);
  assert.match(read('comet-tcp.min.js'), /require\("\.\/comet\.min\.js"\)/);
});

test('script tags: comet-topics.js adds to the page\'s Comet, loaded before it', () => {
  for (const [shim, topics] of [['comet.js', 'comet-topics.js'], ['comet.min.js', 'comet-topics.min.js']]) {
    const win = {};
    win.self = win;
    vm.createContext(win);
    assert.throws(() => vm.runInContext(read(topics), win), /load comet\.js first/, topics);
    vm.runInContext(read(shim), win);
    vm.runInContext(read(topics), win);
    const { globals, net } = browser();
    const c = new win.Comet('https://x.test/comet', { globals, transports: ['longpoll'], topics: { chat: { epoch: 'e', offset: 1 } } });
    assert.deepEqual(JSON.parse(JSON.stringify(c.topics)), { chat: { epoch: 'e', offset: 1 } }, topics);
    assert.match(net.last('negotiate').body, /"positions":true,"topics":\{"chat":\{"epoch":"e","offset":1\}\}/, topics);
  }
});

test('script tags: comet-share.js wraps the page\'s Comet, loaded before it, in either order with comet-dom.js', () => {
  for (const [shim, dom, share] of [['comet.js', 'comet-dom.js', 'comet-share.js'], ['comet.min.js', 'comet-dom.min.js', 'comet-share.min.js']]) {
    for (const order of [[dom, share], [share, dom]]) {
      const win = {};
      win.self = win;
      vm.createContext(win);
      assert.throws(() => vm.runInContext(read(share), win), /load comet\.js first/, share);
      vm.runInContext(read(shim), win);
      const Shim = win.Comet;
      for (const name of order) vm.runInContext(read(name), win);
      assert.notEqual(win.Comet, Shim);
      assert.equal(win.Comet.prototype, Shim.prototype);
      assert.equal(win.Comet.OPEN, 1);
      const { globals, net } = browser();
      globals.BroadcastChannel = class { postMessage() {} };
      const c = new win.Comet('https://x.test/comet', { globals, transports: ['longpoll'] });
      assert.ok(c instanceof win.Comet && c instanceof Shim, order.join(', '));
      assert.equal(c.readyState, 0);
      assert.equal(net.last('negotiate').endpoint, 'negotiate', 'its negotiate goes to the network');
      assert.throws(() => new win.Comet('ftp://x.test/comet', { globals }), /SyntaxError|bad URL/, 'as comet.js throws');
    }
  }
});

test('CommonJS: comet-share.js requires the shim beside it and wraps it; comet-share.min.js the minified one', () => {
  for (const [share, shim] of [['comet-share.js', 'comet.js'], ['comet-share.min.js', 'comet.min.js']]) {
    const Comet = require(path.join(DIST, share));
    assert.equal(Comet.prototype, require(path.join(DIST, shim)).prototype, share);
  }
  assert.match(read('comet-share.js'), /require\('\.\/comet\.js'\)/);
  assert.match(read('comet-share.min.js'), /require\("\.\/comet\.min\.js"\)/);
});

test('CommonJS: comet-topics.js requires the shim beside it and exports it; comet-topics.min.js the minified one', () => {
  for (const [topics, shim] of [['comet-topics.js', 'comet.js'], ['comet-topics.min.js', 'comet.min.js']]) {
    assert.equal(require(path.join(DIST, topics)), require(path.join(DIST, shim)), topics);
    assert.equal(typeof require(path.join(DIST, shim)).prototype.$topics, 'function');
  }
  assert.match(read('comet-topics.js'), /require\('\.\/comet\.js'\)/);
  assert.match(read('comet-topics.min.js'), /require\("\.\/comet\.min\.js"\)/);
});

test('CommonJS and ES module entries export Comet', async () => {
  const cjs = require(path.join(DIST, 'comet.js'));
  const esm = await import(path.join(DIST, 'comet.mjs'));
  assert.equal(esm.default, cjs);
  assert.equal(esm.Comet, cjs);
});

test('package.json points at files that exist', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8'));
  const targets = [];
  (function walk(v) {
    if (typeof v == 'string') targets.push(v);
    else Object.values(v).forEach(walk);
  })(pkg.exports);
  for (const f of [pkg.main, pkg.module, pkg.types].concat(pkg.files, targets)) {
    assert.ok(fs.existsSync(path.join(__dirname, '..', f)), f);
  }
  assert.equal(pkg.private, false);
});
