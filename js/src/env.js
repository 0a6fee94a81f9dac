// env: everything the shim takes from its environment. Browser globals are
// injected (options.globals) so that tests can pass fakes; by default they
// are read from the global object when present.

// From other files: none.

// The globals the shim uses: WebSocket, EventSource, XMLHttpRequest,
// setTimeout, clearTimeout, localStorage, navigator, location, URL,
// document, addEventListener, removeEventListener, FileReader, Blob,
// ArrayBuffer, Uint8Array, atob and btoa; options.globals, when set,
// replaces the global object for all of them, and may add now and random
// (Date.now and Math.random by default). Every use of an optional one is
// feature-checked.

// domError returns an exception named like the browser's DOMException.
function domError(name, msg) {
  var e = new Error('Comet: ' + msg);
  e.name = name;
  return e;
}

// resolveURL resolves url against the page (g.location) and returns
// [resolved, mount] where mount is the http(s) URL of the Comet endpoint,
// without its query: requests carry only protocol parameters. ws: and
// wss: map to http: and https:, so code written for WebSocket keeps its
// URLs. The URL constructor resolves, or in browsers older than it an
// anchor element. It throws a SyntaxError like the WebSocket constructor
// for anything else, a URL with a fragment included.
function resolveURL(url, g) {
  var loc = g.location, a = g.document;
  url = String(url);
  try {
    if (g.URL) {
      url = new g.URL(url, loc && loc.href).href;
    } else if (a) {
      a = a.createElement('a');
      a.href = url;
      url = a.href;
    }
  } catch (e) {}
  if (!/^(https?|wss?):\/\/[^\/?#][^#]*$/i.test(url)) throw domError('SyntaxError', 'bad URL ' + url);
  return [url, url.replace(/^ws/i, 'http').replace(/[?].*/, '').replace(/\/+$/, '')];
}

// request sends one XMLHttpRequest: a GET, or with a body a text/plain
// POST (CORS-simple unless headers add to it). done(status, text) runs
// once: status 0 for a network failure, an abort by timeout or a CORS
// refusal. progress, if set, receives the growing responseText of a 200
// response. It returns an object whose close aborts the request without
// calling done.
function request(c, url, done, progress, body, headers, timeout) {
  var g = c._globals, x = new g.XMLHttpRequest(), over, timer, k;
  // stop ends the request's callbacks and timer, and reports whether it
  // was still running.
  function stop() {
    if (over) return;
    over = 1;
    g.clearTimeout(timer);
    x.onreadystatechange = null;
    return 1;
  }
  x.open(body ? 'POST' : 'GET', url, true);
  x.withCredentials = !!c._options.withCredentials;
  if (body) headers = assign({ 'Content-Type': 'text/plain;charset=UTF-8' }, headers);
  for (k in headers) x.setRequestHeader(k, headers[k]); // a plain object the shim made
  x.onreadystatechange = function () {
    var text;
    if (x.readyState < 3 || over) return;
    try {
      text = x.responseText;
    } catch (e) {
      return; // old browsers refuse responseText while loading
    }
    if (progress && x.status == 200) progress(text);
    if (x.readyState == 4 && stop()) done(x.status, text);
  };
  if (timeout) {
    timer = g.setTimeout(function () {
      if (stop()) {
        done(0, '');
        x.abort();
      }
    }, timeout);
  }
  x.send(body);
  return {
    close: function () {
      if (stop()) x.abort();
    }
  };
}

// assign copies the enumerable properties of from onto to, and returns to.
function assign(to, from) {
  for (var k in from) to[k] = from[k];
  return to;
}

// parseJSON returns the value text holds, or undefined.
function parseJSON(text) {
  try {
    return JSON.parse(text);
  } catch (e) {}
}

// refusalOf describes a refused request: its status and the code of the
// JSON error body of PROTOCOL.md section 2, if any.
function refusalOf(status, text) {
  var body = parseJSON(text);
  return { _status: status, _code: body && body.code || '' };
}

// The transport memory (localStorage) maps an endpoint to what worked on
// this network; every access may throw (privacy modes, quotas, sandboxed
// frames), which makes the memory empty, never the session fail.
var MEMORY_TTL = 864e5; // a day: networks change, and WebSocket is re-probed anyway

function recall(g, key, now) {
  try {
    var m = JSON.parse(g.localStorage.getItem(key));
    return m && m.x > now && m;
  } catch (e) {}
}

function remember(g, key, m, now) {
  try {
    m.x = now + MEMORY_TTL;
    g.localStorage.setItem(key, JSON.stringify(m));
  } catch (e) {}
}
