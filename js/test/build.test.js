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

const DIST = path.join(__dirname, '..', 'dist');
// 7.5 KiB, minified and gzipped: the project's budget. It was 7 KiB until
// raw binary WebSocket messages (PROTOCOL.md section 4) took it past.
const BUDGET = 7680;
const read = (name) => fs.readFileSync(path.join(DIST, name), 'utf8');

test('size budget: comet.min.js gzipped is at most 7.5 KiB', (t) => {
  const min = read('comet.min.js');
  const gz = zlib.gzipSync(min, { level: 9 }).length;
  const line = `comet.min.js: ${min.length} bytes minified, ${gz} bytes min+gzip (budget ${BUDGET})`;
  t.diagnostic(line);
  console.log(line);
  assert.ok(gz <= BUDGET, line);
});

test('dist/ is what the sources build to', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'comet-build-'));
  try {
    await build(tmp);
    for (const name of ['comet.js', 'comet.min.js', 'comet.mjs', 'comet.d.ts', 'comet.d.mts']) {
      assert.equal(read(name), fs.readFileSync(path.join(tmp, name), 'utf8'), `dist/${name} is stale: run npm run build`);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('the shipped scripts parse as ES5', () => {
  for (const name of ['comet.js', 'comet.min.js']) {
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

test('CommonJS and ES module entries export Comet', async () => {
  const cjs = require(path.join(DIST, 'comet.js'));
  const esm = await import(path.join(DIST, 'comet.mjs'));
  assert.equal(esm.default, cjs);
  assert.equal(esm.Comet, cjs);
});

test('package.json points at files that exist', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8'));
  for (const f of [pkg.main, pkg.module, pkg.types].concat(pkg.files)) {
    assert.ok(fs.existsSync(path.join(__dirname, '..', f)), f);
  }
  assert.equal(pkg.private, false);
});
