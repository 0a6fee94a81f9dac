// xhr: the globals comet.js runs on where it shares: an XMLHttpRequest
// that carries the session requests of its endpoint through the leader.

// From other files: none.

// sharedGlobals returns comet.js's globals for a hub: g's, with an
// XMLHttpRequest that carries the session requests of the hub's endpoint,
// and no EventSource (see the top of this file). Functions that need g as
// their this are bound to it.
function sharedGlobals(g, h) {
  // The globals comet.js and comet-tcp.js read (comet-dom.js and
  // comet-topics.js read the page's own).
  var s = {}, names = ['WebSocket', 'setTimeout', 'clearTimeout', 'localStorage', 'navigator', 'location', 'URL',
    'document', 'addEventListener', 'removeEventListener', 'FileReader', 'Blob', 'ArrayBuffer', 'Uint8Array',
    'atob', 'btoa', 'now', 'random'];
  names.map(function (name) {
    var v;
    try {
      v = g[name];
    } catch (e) {
      return; // localStorage, in a sandboxed frame
    }
    if (typeof v == 'function' && !/^[A-Z]/.test(name)) v = v.bind(g);
    if (v !== undefined) s[name] = v;
  });
  s.XMLHttpRequest = sharedXHR(g, h);
  return s;
}

// targetOf returns the path and query of url if it is a session request
// of h's endpoint that a carrier may carry: an attach by XHR streaming or
// long-polling (not one that negotiates, n=) or a POST to send.
function targetOf(h, url) {
  var u = String(url), rest;
  if (h._off || u.indexOf(h._base + '/') != 0) return;
  rest = u.slice(h._base.length);
  if (!/^\/(streaming|longpoll|send)(\?|$)/.test(rest) || /[?&]n=/.test(rest)) return;
  return u.slice(h._root.length);
}

// sharedXHR returns an XMLHttpRequest constructor whose requests to the
// hub's session paths are carried, and whose others go to the network:
// comet.js sees the same readyState, status and responseText either way.
function sharedXHR(g, h) {
  function XHR() {
    this.readyState = this.status = 0;
    this.responseText = '';
    this._headers = [];
  }
  var p = XHR.prototype;
  p.open = function (method, url) {
    this._m = method;
    this._u = url;
    this.readyState = 1;
  };
  p.setRequestHeader = function (k, v) {
    this._headers.push([k, v]);
  };
  p.send = function (body) {
    var x = this, target = targetOf(h, x._u);
    if (target) {
      x._n = h._request(x._m, target, body == null ? '' : String(body), function (kind, status, text) {
        if (kind == 'o') return real(x, body);
        if (kind == 'h') {
          x.status = status;
          x.readyState = 2;
        } else if (kind == 'd') {
          x.responseText += text;
          x.readyState = 3;
        } else {
          if (kind == 'f') x.status = 0;
          x.readyState = 4;
        }
        if (x.onreadystatechange) x.onreadystatechange();
      });
      return;
    }
    real(x, body);
  };
  // real sends x's request to the network, with the browser's
  // XMLHttpRequest, and mirrors it.
  function real(x, body) {
    var r = x._real = new g.XMLHttpRequest();
    r.open(x._m, x._u, true);
    r.withCredentials = x.withCredentials;
    x._headers.map(function (kv) {
      r.setRequestHeader(kv[0], kv[1]);
    });
    r.onreadystatechange = function () {
      x.readyState = r.readyState;
      try {
        x.status = r.status;
        x.responseText = r.responseText;
      } catch (e) {}
      if (x.onreadystatechange) x.onreadystatechange();
    };
    r.send(body);
  }
  p.abort = function () {
    if (this._real) this._real.abort();
    else if (this._n) h._abort(this._n);
  };
  return XHR;
}
