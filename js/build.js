#!/usr/bin/env node
// build.js concatenates src/ into the shipped files:
//   dist/comet.js      UMD bundle (browser global Comet, CommonJS), plain ES5
//   dist/comet.min.js  the same, minified, with every debug() call dropped
//   dist/comet.mjs     an ES-module entry for bundlers
//   dist/comet.d.ts    the hand-written TypeScript declarations
//   dist/comet.d.mts   the declarations of comet.mjs, from comet.d.ts
// tcp/ into the TCP relay's helper, a file of its own:
//   dist/comet-tcp.js      UMD bundle (browser global CometTCP, CommonJS), ES5
//   dist/comet-tcp.min.js  the same, minified
//   dist/comet-tcp.d.ts    its hand-written TypeScript declarations
// and dom/ into comet-dom.js, the shim's exact DOM and WebSocket edges:
//   dist/comet-dom.js      UMD (changes the global Comet, or under CommonJS
//                          the shim beside it, and exports a constructor
//                          over it, which in a browser replaces the
//                          global Comet), ES5
//   dist/comet-dom.min.js  the same, minified
// and topics/ into comet-topics.js, topic positions (PROTOCOL.md section
// 15) on top of the shim's hooks:
//   dist/comet-topics.js      UMD (adds to the global Comet, or under
//                             CommonJS the shim beside it, and exports it)
//   dist/comet-topics.min.js  the same, minified
// and share/ into comet-share.js, one connection for all the tabs of a
// page (PROTOCOL.md section 16):
//   dist/comet-share.js      UMD (wraps the global Comet, or under
//                            CommonJS the shim beside it, in a constructor
//                            that shares, which in a browser replaces the
//                            global Comet), ES5
//   dist/comet-share.min.js  the same, minified
// Usage: node build.js [outdir]   (default: dist)
'use strict';

var fs = require('fs');
var path = require('path');

// SOURCES: every file declares its names in the one scope of the bundle,
// and says at its top which names it takes from the others (checked by
// test/sources.test.js).
// Functions are hoisted, so only variable initialisers constrain the order
// (the transports before fallback's table; the XHR transports' initialisers
// call lines' xhrTransport, a function, so lines may come anywhere); within
// that, the order is one that gzips small (found by moving one file at a
// time).
var SOURCES = ['policy', 'codec', 'env', 'sse', 'websocket', 'streaming', 'longpoll', 'fallback', 'downstream',
  'lines', 'lifecycle', 'negotiate', 'comet', 'upstream', 'attach', 'resume'];

// TCP_SOURCES are the files of CometTCP, in tcp/.
var TCP_SOURCES = ['tcp'];

// DOM_SOURCES are the files of comet-dom.js, in dom/.
var DOM_SOURCES = ['dom'];

// TOPICS_SOURCES are the files of comet-topics.js, in topics/.
var TOPICS_SOURCES = ['topics'];

// SHARE_SOURCES are the files of comet-share.js, in share/.
var SHARE_SOURCES = ['share', 'hub', 'xhr', 'carrier', 'link'];

// The global object: globalThis, or in browsers older than it, self.
var ROOT = 'typeof globalThis != \'undefined\' ? globalThis : self';

function sources(dir, names) {
  return (names || SOURCES).map(function (name) {
    return fs.readFileSync(path.join(__dirname, dir || 'src', name + '.js'), 'utf8');
  }).join('\n');
}

// topLevelNames lists the functions and variables the sources declare at
// the top level, for the tests, which load the sources with them exposed.
function topLevelNames(src) {
  var names = [], re = /^(?:function\s+([A-Za-z_$][\w$]*)|var\s+([A-Za-z_$][\w$]*))/gm, m;
  while ((m = re.exec(src))) names.push(m[1] || m[2]);
  return names;
}

function version() {
  return JSON.parse(fs.readFileSync(path.join(__dirname, 'package.json'), 'utf8')).version;
}

function umd(body) {
  return '/*! comet-shim ' + version() + ' */\n' +
    '(function (root, factory) {\n' +
    '  if (typeof module == \'object\' && module.exports) module.exports = factory(root);\n' +
    '  else root.Comet = factory(root);\n' +
    '}(' + ROOT + ', function (ROOT) {\n' +
    '\'use strict\';\n\n' + body + '\nreturn Comet;\n}));\n';
}

// addon returns the UMD wrapper of the add-on called tag. Under CommonJS
// it requires the shim beside it (shim: comet.js or comet.min.js), so that
// a bundler packs both, and exports what the add-on's body returns (ret);
// in a browser it runs the statement browser, where factory takes the
// page's root and, where given, its global Comet.
function addon(tag, browser, ret) {
  return function (body, shim) {
    return '/*! comet-shim ' + version() + ' ' + tag + ' */\n' +
      '(function (root, factory) {\n' +
      '  if (typeof module == \'object\' && module.exports) module.exports = factory(root, require(\'./' + shim + '\'));\n' +
      '  else ' + browser + ';\n' +
      '}(' + ROOT + ', function (ROOT, Comet) {\n' +
      '\'use strict\';\n\n' + body + '\nreturn ' + ret + ';\n}));\n';
  };
}

// umdTCP wraps CometTCP: in a browser it passes no Comet, and CometTCP
// takes the page's global one.
var umdTCP = addon('comet-tcp', 'root.CometTCP = factory(root)', 'CometTCP');

// umdDOM wraps comet-dom.js, which changes the Comet it is given and
// exports a constructor over it, which in a browser replaces the page's
// global Comet, loaded before it.
var umdDOM = addon('comet-dom', 'root.Comet = factory(root, root.Comet)', 'Comet');

// umdTopics wraps comet-topics.js, which adds to the Comet it is given
// (in a browser the page's global Comet, loaded before it) and returns it.
var umdTopics = addon('comet-topics', 'factory(root, root.Comet)', 'Comet');

// umdShare wraps comet-share.js, which returns a constructor over the
// Comet it is given, which in a browser replaces the page's global Comet,
// loaded before it.
var umdShare = addon('comet-share', 'root.Comet = factory(root, root.Comet)', 'Comet');

async function minify(code) {
  var terser = require('terser');
  var out = await terser.minify(code, {
    ecma: 5,
    ie8: false,
    // The unsafe options assume only what holds in this code: no getters,
    // no patched builtins, nothing reads Function.length, and no
    // negated comparison may meet NaN or undefined (unsafe_comps).
    compress: {
      pure_funcs: ['debug'], pure_getters: true, passes: 5, keep_fargs: false, unsafe: true, unsafe_comps: true,
      unsafe_methods: true, unsafe_proto: true, unsafe_regexp: true, unsafe_undefined: true, loops: false
    },
    // Only the _-prefixed (internal) properties are renamed. builtins: true
    // does not widen that: it only lets the new names be ones that browsers
    // use for their own properties (n, r, f, E...), which leaves more
    // one-letter names for the internal fields. That is safe because no
    // internal property is set on a browser object, and the one read from
    // what may be a builtin (transportNamed's _need, for an inherited name)
    // gets a name of one or two letters, which no builtin of Object or
    // Function has; the session tests try such names on every build.
    mangle: { properties: { regex: /^_/, builtins: true } },
    // keep_numbers: numbers as the sources write them (1000, 25e3), which
    // gzip better than the shortest forms (1e3), since the same digits
    // recur in close codes and the like.
    format: { comments: /^!/, ascii_only: true, keep_numbers: true }
  });
  return out.code + '\n';
}

var MJS = '// The ES-module entry for bundlers: the shim itself is the UMD file beside it.\n' +
  'import Comet from \'./comet.js\';\n\nexport default Comet;\nexport { Comet };\n';

// DMTS declares comet.mjs: TypeScript reads comet.d.ts as a CommonJS
// module (export =), which has no named export Comet, so an ES-module
// consumer's import { Comet } would not type-check without it.
var DMTS = '// Type declarations of comet.mjs: the class of comet.d.ts, as its default and a named export.\n' +
  'import Comet from \'./comet.js\';\n\nexport default Comet;\nexport { Comet };\n';

async function build(outDir) {
  var code = umd(sources());
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'comet.js'), code);
  fs.writeFileSync(path.join(outDir, 'comet.min.js'), await minify(code));
  fs.writeFileSync(path.join(outDir, 'comet.mjs'), MJS);
  fs.copyFileSync(path.join(__dirname, 'src', 'comet.d.ts'), path.join(outDir, 'comet.d.ts'));
  fs.writeFileSync(path.join(outDir, 'comet.d.mts'), DMTS);
  var tcp = sources('tcp', TCP_SOURCES);
  fs.writeFileSync(path.join(outDir, 'comet-tcp.js'), umdTCP(tcp, 'comet.js'));
  fs.writeFileSync(path.join(outDir, 'comet-tcp.min.js'), await minify(umdTCP(tcp, 'comet.min.js')));
  fs.copyFileSync(path.join(__dirname, 'tcp', 'comet-tcp.d.ts'), path.join(outDir, 'comet-tcp.d.ts'));
  var dom = sources('dom', DOM_SOURCES);
  fs.writeFileSync(path.join(outDir, 'comet-dom.js'), umdDOM(dom, 'comet.js'));
  fs.writeFileSync(path.join(outDir, 'comet-dom.min.js'), await minify(umdDOM(dom, 'comet.min.js')));
  var topics = sources('topics', TOPICS_SOURCES);
  fs.writeFileSync(path.join(outDir, 'comet-topics.js'), umdTopics(topics, 'comet.js'));
  fs.writeFileSync(path.join(outDir, 'comet-topics.min.js'), await minify(umdTopics(topics, 'comet.min.js')));
  var share = sources('share', SHARE_SOURCES);
  fs.writeFileSync(path.join(outDir, 'comet-share.js'), umdShare(share, 'comet.js'));
  fs.writeFileSync(path.join(outDir, 'comet-share.min.js'), await minify(umdShare(share, 'comet.min.js')));
}

// load evaluates the sources for the tests, returning every top-level name
// (internals included) and ROOT bound to root.
function load(root) {
  var src = sources();
  var body = '\'use strict\';\n' + src + '\nreturn {' + topLevelNames(src).map(function (n) {
    return n + ': ' + n;
  }).join(', ') + '};';
  return new Function('ROOT', body)(root || {}); // eslint-disable-line no-new-func
}

// loadTCP evaluates the sources of CometTCP for the tests, on top of the
// shim Comet, with ROOT bound to root (undefined: none).
function loadTCP(Comet, root) {
  var src = sources('tcp', TCP_SOURCES);
  var body = '\'use strict\';\n' + src + '\nreturn {' + topLevelNames(src).map(function (n) {
    return n + ': ' + n;
  }).join(', ') + '};';
  return new Function('ROOT', 'Comet', body)(root || {}, Comet); // eslint-disable-line no-new-func
}

// loadDOM evaluates the sources of comet-dom.js for the tests, changing
// the shim Comet, with ROOT bound to root, and returns the constructor
// over it.
function loadDOM(Comet, root) {
  return new Function('ROOT', 'Comet', '\'use strict\';\n' + sources('dom', DOM_SOURCES) + '\nreturn Comet;')(root, Comet); // eslint-disable-line no-new-func
}

// loadTopics evaluates the sources of comet-topics.js for the tests,
// adding to the shim Comet, with ROOT bound to root, and returns every
// top-level name (internals included).
function loadTopics(Comet, root) {
  var src = sources('topics', TOPICS_SOURCES);
  var body = '\'use strict\';\n' + src + '\nreturn {' + topLevelNames(src).map(function (n) {
    return n + ': ' + n;
  }).join(', ') + ', Comet: Comet};';
  return new Function('ROOT', 'Comet', body)(root || {}, Comet); // eslint-disable-line no-new-func
}

// loadShare evaluates the sources of comet-share.js for the tests, over
// the shim Comet, with ROOT bound to root, and returns every top-level
// name (internals included), Comet being the sharing constructor.
function loadShare(Comet, root) {
  var src = sources('share', SHARE_SOURCES);
  var body = '\'use strict\';\n' + src + '\nreturn {' + topLevelNames(src).map(function (n) {
    return n + ': ' + n;
  }).join(', ') + ', Comet: Comet};';
  return new Function('ROOT', 'Comet', body)(root || {}, Comet); // eslint-disable-line no-new-func
}

module.exports = {
  build: build, load: load, loadTCP: loadTCP, loadDOM: loadDOM, loadTopics: loadTopics, loadShare: loadShare,
  SOURCES: SOURCES, TCP_SOURCES: TCP_SOURCES, DOM_SOURCES: DOM_SOURCES, TOPICS_SOURCES: TOPICS_SOURCES,
  SHARE_SOURCES: SHARE_SOURCES
};

if (require.main === module) {
  build(path.resolve(process.argv[2] || path.join(__dirname, 'dist'))).catch(function (err) {
    console.error(err);
    process.exit(1);
  });
}
