'use strict';
// The sources share one scope (build.js concatenates them), so each one
// says at its top which names it takes from the others, in a comment:
//
//   // From other files: encodeFrame, quote (codec); debug (comet).
//
// names grouped by the file that declares them, files in alphabetical order,
// then ROOT (build.js), which the bundle's wrapper binds; or "From other
// files: none." These tests hold the comments to what the code
// references, and every top-level name to one file.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const acorn = require('acorn');
const { SOURCES, SHARE_SOURCES } = require('../build.js');

// children returns the AST nodes directly under node.
function children(node) {
  const out = [];
  for (const key of Object.keys(node)) {
    const v = node[key];
    for (const c of Array.isArray(v) ? v : [v]) {
      if (c && typeof c.type == 'string') out.push(c);
    }
  }
  return out;
}

// declared returns the names a function body (or the program) declares:
// its vars and function declarations, not those of nested functions.
function declared(body) {
  const names = new Set();
  (function visit(node) {
    if (node.type == 'FunctionDeclaration') return names.add(node.id.name);
    if (node.type == 'FunctionExpression') return;
    if (node.type == 'VariableDeclarator') names.add(node.id.name);
    children(node).forEach(visit);
  })(body);
  return names;
}

// analyse parses one source and returns its top-level names and the free
// names it references (those no scope of its own declares).
function analyse(code) {
  const ast = acorn.parse(code, { ecmaVersion: 5, sourceType: 'script' });
  const top = declared(ast);
  const free = new Set();
  (function visit(node, scopes) {
    switch (node.type) {
      case 'FunctionDeclaration':
      case 'FunctionExpression': {
        const own = declared(node.body);
        node.params.forEach((p) => own.add(p.name));
        if (node.type == 'FunctionExpression' && node.id) own.add(node.id.name);
        return visit(node.body, scopes.concat([own]));
      }
      case 'CatchClause':
        return visit(node.body, scopes.concat([new Set([node.param.name])]));
      case 'MemberExpression':
        visit(node.object, scopes);
        if (node.computed) visit(node.property, scopes);
        return;
      case 'Property':
        if (node.computed) visit(node.key, scopes);
        return visit(node.value, scopes);
      case 'VariableDeclarator':
        if (node.init) visit(node.init, scopes);
        return;
      case 'LabeledStatement':
        return visit(node.body, scopes);
      case 'BreakStatement':
      case 'ContinueStatement':
        return;
      case 'Identifier':
        if (!scopes.some((s) => s.has(node.name))) free.add(node.name);
        return;
    }
    children(node).forEach((c) => visit(c, scopes));
  })(ast, [top]);
  return { top, free, comments: leadingComments(code, ast) };
}

// leadingComments returns the text of the line comments before the first
// statement, one string per line.
function leadingComments(code, ast) {
  const lines = [];
  acorn.parse(code, {
    ecmaVersion: 5, sourceType: 'script', onComment: (block, text, start) => {
      if (!block && start < (ast.body[0] ? ast.body[0].start : code.length)) lines.push(text.trim());
    }
  });
  return lines;
}

// BUNDLES are the bundles whose sources share one scope: each with its
// folder, its sources, and the names its wrapper binds (build.js).
const BUNDLES = [
  { dir: 'src', names: SOURCES, wrapper: ['ROOT'] },
  { dir: 'share', names: SHARE_SOURCES, wrapper: ['Comet', 'ROOT'] }
].map((b) => ({
  ...b,
  files: b.names.map((name) => ({ name, ...analyse(fs.readFileSync(path.join(__dirname, '..', b.dir, name + '.js'), 'utf8')) }))
}));

// expected returns the header the references of file f of bundle b call
// for.
function expected(b, f) {
  const groups = [];
  for (const g of [...b.files].sort((x, y) => x.name < y.name ? -1 : 1)) {
    if (g == f) continue;
    const names = [...f.free].filter((n) => g.top.has(n) && !f.top.has(n)).sort();
    if (names.length) groups.push(names.join(', ') + ' (' + g.name + ')');
  }
  const bound = b.wrapper.filter((n) => f.free.has(n));
  if (bound.length) groups.push(bound.join(', ') + ' (build.js)');
  return 'From other files: ' + (groups.join('; ') || 'none') + '.';
}

// stated returns the header a file states: the lines from "From other
// files:" to the one ending in a full stop, joined.
function stated(f) {
  const i = f.comments.findIndex((l) => l.startsWith('From other files:'));
  if (i < 0) return '';
  const out = [];
  for (const l of f.comments.slice(i)) {
    out.push(l);
    if (l.endsWith('.')) break;
  }
  return out.join(' ');
}

for (const b of BUNDLES) {
  test(`${b.dir}/: every source is built and every top-level name is declared in one source`, () => {
    const onDisk = fs.readdirSync(path.join(__dirname, '..', b.dir)).filter((n) => n.endsWith('.js')).map((n) => n.slice(0, -3)).sort();
    assert.deepEqual([...b.names].sort(), onDisk);
    const owner = {};
    for (const f of b.files) {
      for (const n of f.top) {
        assert.ok(!owner[n], `${n} is declared in ${owner[n]}.js and ${f.name}.js`);
        owner[n] = f.name;
      }
    }
  });

  test(`${b.dir}/: each source states the names it uses from the others`, () => {
    const got = {}, want = {};
    for (const f of b.files) {
      got[f.name] = stated(f);
      want[f.name] = expected(b, f);
    }
    assert.deepEqual(got, want);
  });

  test(`${b.dir}/: a source uses no free name but the others', the wrapper's and globals`, () => {
    // A misspelled internal name would otherwise pass for a browser global;
    // the globals the sources read directly are few.
    const GLOBALS = new Set(['undefined', 'JSON', 'Math', 'Date', 'String', 'Error', 'TypeError', 'encodeURIComponent', 'Array',
      'Object', 'Promise']);
    for (const f of b.files) {
      for (const n of f.free) {
        const known = b.wrapper.includes(n) || GLOBALS.has(n) || b.files.some((g) => g.top.has(n));
        assert.ok(known, `${b.dir}/${f.name}.js uses ${n}, which no source declares`);
      }
    }
  });
}
