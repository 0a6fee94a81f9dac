'use strict';
// The package as a consumer gets it: npm pack, the tarball installed
// (offline: it has no dependencies) into a throwaway project, then loaded
// through package.json's exports the way CommonJS, ES modules and
// TypeScript each resolve it. The other tests read dist/ directly, so they
// would not notice a file left out of "files" or a wrong "exports" entry.

const test = require('node:test');
const assert = require('node:assert/strict');
const childProcess = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { createRequire } = require('node:module');

const PKG_DIR = path.join(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(PKG_DIR, 'package.json'), 'utf8'));

// Each command is bounded: a hung npm fails the test instead of the run.
const STEP_TIMEOUT = 60000;

let tmp, consumer;

// run runs a program to completion and returns its standard output; a
// failure reports what it printed.
function run(file, args, cwd) {
  const r = childProcess.spawnSync(file, args, { cwd, encoding: 'utf8', timeout: STEP_TIMEOUT });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    throw new Error(`${path.basename(file)} ${args.join(' ')}: exit ${r.status}\n${r.stdout}\n${r.stderr}`);
  }
  return r.stdout;
}

// npm runs the npm that runs these tests (npm test sets npm_execpath),
// or else the one on PATH.
function npm(args, cwd) {
  const cli = process.env.npm_execpath;
  if (cli && /\.[cm]?js$/.test(cli)) return run(process.execPath, [cli].concat(args), cwd);
  return run('npm', args, cwd);
}

test.before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'comet-pack-'));
  consumer = path.join(tmp, 'consumer');
  fs.mkdirSync(consumer);
  fs.writeFileSync(path.join(consumer, 'package.json'),
    JSON.stringify({ name: 'consumer', version: '0.0.0', private: true }) + '\n');
  const packed = JSON.parse(npm(['pack', '--json', '--pack-destination', tmp], PKG_DIR));
  const tarball = path.join(tmp, packed[0].filename);
  // --prefix: npm test exports its own project's prefix to child npms.
  npm(['install', tarball, '--prefix', consumer, '--offline', '--no-audit', '--no-fund', '--ignore-scripts'], consumer);
});

test.after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('the installed package holds the files of "files" and package.json, nothing else', () => {
  const root = path.join(consumer, 'node_modules', 'comet-shim');
  const found = [];
  (function walk(dir) {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else found.push(path.relative(root, p).split(path.sep).join('/'));
    }
  })(root);
  assert.deepEqual(found.sort(), pkg.files.concat('package.json').sort());
});

test('require(\'comet-shim\') is the UMD build\'s Comet; \'comet-shim/min\' the minified one', () => {
  const req = createRequire(path.join(consumer, 'index.js'));
  const installed = path.join(consumer, 'node_modules', 'comet-shim', 'dist');
  assert.equal(req.resolve('comet-shim'), path.join(installed, 'comet.js'));
  assert.equal(req.resolve('comet-shim/min'), path.join(installed, 'comet.min.js'));
  for (const name of ['comet-shim', 'comet-shim/min']) {
    const Comet = req(name);
    assert.equal(typeof Comet, 'function', name);
    assert.equal(Comet.OPEN, 1, name);
    assert.equal(typeof Comet.prototype.send, 'function', name);
  }
});

test('require(\'comet-shim/tcp\') is CometTCP on the package\'s Comet; \'comet-shim/tcp/min\' on the minified one', () => {
  const req = createRequire(path.join(consumer, 'index.js'));
  const installed = path.join(consumer, 'node_modules', 'comet-shim', 'dist');
  assert.equal(req.resolve('comet-shim/tcp'), path.join(installed, 'comet-tcp.js'));
  assert.equal(req.resolve('comet-shim/tcp/min'), path.join(installed, 'comet-tcp.min.js'));
  for (const [name, shim] of [['comet-shim/tcp', 'comet-shim'], ['comet-shim/tcp/min', 'comet-shim/min']]) {
    const CometTCP = req(name);
    assert.equal(typeof CometTCP, 'function', name);
    assert.equal(CometTCP.CLOSED, 3, name);
    // Unsent: the fake XHR only records the negotiate.
    const XMLHttpRequest = class { open() {} setRequestHeader() {} send() {} };
    const s = new CometTCP('https://x.test/comet', 'h', 1, { globals: { XMLHttpRequest, setTimeout: () => 0, clearTimeout() {} } });
    assert.ok(s.comet instanceof req(shim), name);
  }
});

test('require(\'comet-shim/topics\') is the package\'s Comet with topics; \'comet-shim/topics/min\' the minified one', () => {
  const req = createRequire(path.join(consumer, 'index.js'));
  const installed = path.join(consumer, 'node_modules', 'comet-shim', 'dist');
  assert.equal(req.resolve('comet-shim/topics'), path.join(installed, 'comet-topics.js'));
  assert.equal(req.resolve('comet-shim/topics/min'), path.join(installed, 'comet-topics.min.js'));
  for (const [name, shim] of [['comet-shim/topics', 'comet-shim'], ['comet-shim/topics/min', 'comet-shim/min']]) {
    const Comet = req(name);
    assert.equal(Comet, req(shim), name);
    assert.equal(typeof Comet.prototype.$topics, 'function', name);
  }
});

test('require(\'comet-shim/share\') is the package\'s Comet, sharing; \'comet-shim/share/min\' the minified one', () => {
  const req = createRequire(path.join(consumer, 'index.js'));
  const installed = path.join(consumer, 'node_modules', 'comet-shim', 'dist');
  assert.equal(req.resolve('comet-shim/share'), path.join(installed, 'comet-share.js'));
  assert.equal(req.resolve('comet-shim/share/min'), path.join(installed, 'comet-share.min.js'));
  for (const [name, shim] of [['comet-shim/share', 'comet-shim'], ['comet-shim/share/min', 'comet-shim/min']]) {
    assert.equal(req(name).prototype, req(shim).prototype, name);
  }
});

test('import(\'comet-shim\') gives Comet as default and named export; \'comet-shim/min\' as default', () => {
  // A child process, so that the consumer's node_modules, not this
  // package's own directory, is what resolution starts from.
  const script = [
    'const m = await import(\'comet-shim\');',
    'const min = await import(\'comet-shim/min\');',
    'const req = (await import(\'node:module\')).createRequire(import.meta.url);',
    'console.log(JSON.stringify({',
    '  keys: Object.keys(m).sort(), name: m.default.name, open: m.default.OPEN,',
    '  same: m.default === m.Comet && m.default === req(\'comet-shim\'),',
    '  minSame: min.default === req(\'comet-shim/min\')',
    '}));'
  ].join('\n');
  const got = JSON.parse(run(process.execPath, ['--input-type=module', '-e', script], consumer));
  // Only comet.mjs has the named export: Node gives the UMD file, read as
  // CommonJS, a default alone.
  assert.deepEqual(got.keys, ['Comet', 'default']);
  assert.equal(got.name, 'Comet');
  assert.equal(got.open, 1);
  assert.ok(got.same, 'the default and named exports are the CommonJS export');
  assert.ok(got.minSame, 'comet-shim/min imports the minified file');
});

// ESM_TS uses the declared API from an ES module, by both exports; each
// @ts-expect-error line fails the check if the types accept it, so types
// that had decayed to any would not pass.
const ESM_TS = `import Comet from 'comet-shim';
import { Comet as Named } from 'comet-shim';
import CometTCP from 'comet-shim/tcp';

const options: Comet.Options = { transports: ['websocket', 'longpoll'], reconnect: true, maxBuffered: 1 << 20 };
const socket: Named = new Comet('ws://example.com/comet', options);
socket.binaryType = 'arraybuffer';
socket.onopen = () => socket.send(new Uint8Array([1, 2, 3]));
socket.onmessage = (e) => {
  const data: string | ArrayBuffer | Blob = e.data;
  if (typeof data === 'string') socket.send(data.toUpperCase());
};
socket.addEventListener('transport', (e) => {
  const now: Comet.TransportName = e.transport;
  const why: Comet.Reason = e.reason;
  console.log(now, e.from, why);
});
socket.addEventListener('close', (e) => console.log(e.code, e.reason, e.wasClean, e.status, e.retry));
socket.addEventListener('gap', { handleEvent: (e) => console.log(e.dropped) }, { once: true });
socket.onmessage = (e) => console.log(e.type, e.target.url, e.currentTarget, e.timeStamp, e.origin, e.lastEventId);
console.log(socket.dispatchEvent(new Event('drain')), socket.protocol, socket.extensions, socket.url, socket.transport);
socket.ondrain = null;
const state: 0 | 1 | 2 | 3 = socket.readyState;
if (state === Comet.OPEN && socket.bufferedAmount === 0) socket.close(1000, 'done');

const chat = new Comet('/comet', 'chat');
const graphql = new Comet(new URL('ws://example.com/graphql'), ['graphql-transport-ws'], { transports: ['sse'] });
console.log(chat.protocol.length, graphql.protocol === 'graphql-transport-ws', graphql.extensions);
// @ts-expect-error: a subprotocol is a string
new Comet('/comet', 42);
// @ts-expect-error: no such transport
new Comet('/comet', { transports: ['flash'] });
// @ts-expect-error: no such event
socket.addEventListener('upgrade', () => {});

const news = new Comet('/comet', { topics: { chat: { epoch: 'e1', offset: 41 } } });
const saved: { [topic: string]: Comet.TopicPosition } = news.topics || {};
new Comet('/comet', { topics: saved, reconnect: true });
new Comet('/comet', { topics: {} });
news.onmessage = (e) => {
  const topic: string | undefined = e.topic;
  console.log(topic, news.topics && news.topics[topic || '']);
};
news.addEventListener('topicgap', (e) => {
  const at: Comet.TopicPosition = { epoch: e.epoch, offset: e.offset };
  console.log(e.topic, at);
});
news.ontopicgap = (e: Comet.TopicGapEvent) => console.log(e.topic);
// @ts-expect-error: an offset is a number
new Comet('/comet', { topics: { chat: { epoch: 'e1', offset: '41' } } });

const redis = new CometTCP('/comet', '::1', 6379, { transports: ['websocket'], maxBuffered: 1 << 16 });
redis.onopen = () => redis.send('PING\\r\\n');
redis.ondata = (e) => {
  const bytes: Uint8Array = e.data;
  console.log(bytes.length, redis.bufferedAmount, redis.comet.transport);
};
redis.addEventListener('close', (e: CometTCP.CloseEvent) => console.log(e.code, e.reason || CometTCP.closeReasons[e.code], e.wasClean));
if (redis.readyState === CometTCP.OPEN) redis.send(new DataView(new ArrayBuffer(4)));
redis.close();
// @ts-expect-error: the target is made from host and port
new CometTCP('/comet', 'h', 1, { target: 'other:1' });
// @ts-expect-error: no Blob: a write is taken at once
redis.send(new Blob(['x']));
// @ts-expect-error: data events carry bytes, not strings
redis.ondata = (e: { data: string }) => console.log(e.data);
`;

// CJS_TS uses it from CommonJS, and the minified entry's types.
const CJS_TS = `import Comet = require('comet-shim');
import CometMin = require('comet-shim/min');
import CometTCP = require('comet-shim/tcp');
import CometTCPMin = require('comet-shim/tcp/min');
import CometTopics = require('comet-shim/topics');

const a = new Comet('/comet', { heartbeat: 25000, headers: { Authorization: 'Bearer x' } });
const b: Comet = new CometMin('/comet');
a.onclose = (e: Comet.CloseEvent) => b.close(e.code === 1000 ? 1000 : 4000);
// @ts-expect-error: readyState is read-only
a.readyState = 1;
const tcp: CometTCP = new CometTCPMin('/comet', 'db.internal', '6379', { headers: { Authorization: 'Bearer x' } });
tcp.ondata = (e: CometTCP.DataEvent) => tcp.send(e.data);
// @ts-expect-error: close takes no code: it is always 1000
tcp.close(4000);
const positions: Comet = new CometTopics('/comet', { topics: {} });
console.log(positions.topics);
`;

const COMPILER_OPTIONS = { strict: true, noEmit: true, types: [], lib: ['es2020', 'dom'], target: 'es2020' };

test('a TypeScript consumer type-checks against the installed types (tsc --noEmit)', (t) => {
  // The devDependency's tsc (its exports do not list bin/).
  const tsPkg = require.resolve('typescript/package.json', { paths: [PKG_DIR] });
  const tsc = path.join(path.dirname(tsPkg), require(tsPkg).bin.tsc);
  fs.writeFileSync(path.join(consumer, 'esm.mts'), ESM_TS);
  fs.writeFileSync(path.join(consumer, 'cjs.cts'), CJS_TS);
  const configs = {
    // Node's own resolution, both ways in.
    'tsconfig.node.json': { compilerOptions: Object.assign({ module: 'nodenext' }, COMPILER_OPTIONS), files: ['esm.mts', 'cjs.cts'] },
    // A bundler's: the import condition, without Node's module rules.
    'tsconfig.bundler.json': {
      compilerOptions: Object.assign({ module: 'preserve', moduleResolution: 'bundler' }, COMPILER_OPTIONS),
      files: ['esm.mts']
    }
  };
  t.diagnostic('tsc ' + run(process.execPath, [tsc, '--version'], consumer).trim());
  for (const [name, config] of Object.entries(configs)) {
    fs.writeFileSync(path.join(consumer, name), JSON.stringify(config, null, 2) + '\n');
    run(process.execPath, [tsc, '--noEmit', '-p', name], consumer);
  }
});
