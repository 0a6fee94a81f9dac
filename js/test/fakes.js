'use strict';
// Fakes of the browser globals the shim uses, and a tiny Comet server
// script on top of them: tests drive every event by hand, with a fake
// clock, so nothing sleeps and nothing touches the network.

const path = require('node:path');

// Clock is a fake of setTimeout, clearTimeout and Date.now. tick runs the
// timers that fall due, in order; jump moves the time without running any
// (a frozen page), so that the next tick runs them late.
class Clock {
  constructor() {
    this.t = 1_000_000;
    this.timers = new Map();
    this.seq = 0;
    this.now = () => this.t;
    this.setTimeout = (fn, ms) => {
      const id = ++this.seq;
      this.timers.set(id, { fn, at: this.t + Math.max(0, ms || 0), id });
      return id;
    };
    this.clearTimeout = (id) => {
      this.timers.delete(id);
    };
  }

  tick(ms = 0) {
    const end = this.t + ms;
    for (;;) {
      let next = null;
      for (const tm of this.timers.values()) {
        if (tm.at <= end && (!next || tm.at < next.at || (tm.at === next.at && tm.id < next.id))) next = tm;
      }
      if (!next) break;
      this.timers.delete(next.id);
      this.t = Math.max(this.t, next.at);
      next.fn();
    }
    this.t = end;
  }

  jump(ms) {
    this.t += ms;
  }
}

function query(url) {
  const u = new URL(url);
  return Object.fromEntries(u.searchParams);
}

function endpoint(url) {
  return path.posix.basename(new URL(url).pathname);
}

// Net records every request and connection the shim makes.
class Net {
  constructor() {
    this.all = [];
  }

  // find returns the requests or connections to endpoint name (negotiate,
  // send, websocket, sse, streaming, longpoll) that are still open.
  open(name) {
    return this.all.filter((r) => r.endpoint === name && !r.done);
  }

  last(name) {
    const l = this.all.filter((r) => r.endpoint === name);
    return l[l.length - 1];
  }

  count(name) {
    return this.all.filter((r) => r.endpoint === name).length;
  }
}

function makeXHR(net) {
  return class FakeXHR {
    constructor() {
      this.readyState = 0;
      this.status = 0;
      this.responseText = '';
      this.headers = {};
      this.done = false;
      this.aborted = false;
    }

    open(method, url) {
      this.method = method;
      this.url = url;
      this.endpoint = endpoint(url);
      this.query = query(url);
      this.readyState = 1;
    }

    setRequestHeader(k, v) {
      this.headers[k] = v;
    }

    send(body) {
      this.body = body;
      net.all.push(this);
    }

    abort() {
      this.aborted = true;
      this.done = true;
    }

    // progress delivers a chunk of a 200 response.
    progress(chunk) {
      this.status = 200;
      this.readyState = 3;
      this.responseText += chunk;
      if (this.onreadystatechange) this.onreadystatechange();
    }

    respond(status, text = '') {
      this.status = status;
      this.responseText += text;
      this.readyState = 4;
      this.done = true;
      if (this.onreadystatechange) this.onreadystatechange();
    }

    // message delivers frames on a stream, like the other fakes' message.
    message(text) {
      this.progress(text.endsWith('\n') ? text : text + '\n');
    }

    // fail is a network failure: status 0.
    fail() {
      this.respond(0, '');
    }
  };
}

function makeWebSocket(net) {
  return class FakeWebSocket {
    constructor(url) {
      this.url = url;
      this.endpoint = endpoint(url);
      this.query = query(url);
      this.sent = [];
      this.done = false;
      net.all.push(this);
    }

    send(text) {
      if (this.done) throw new Error('send on a closed WebSocket');
      this.sent.push(text);
    }

    close() {
      this.done = true;
      this.closedByClient = true;
    }

    open() {
      this.onopen && this.onopen({});
    }

    message(data) {
      this.onmessage && this.onmessage({ data });
    }

    fail() {
      this.done = true;
      this.onerror && this.onerror({});
      this.onclose && this.onclose({ code: 1006 });
    }
  };
}

function makeEventSource(net) {
  return class FakeEventSource {
    constructor(url, init) {
      this.url = url;
      this.init = init;
      this.endpoint = endpoint(url);
      this.query = query(url);
      this.done = false;
      net.all.push(this);
    }

    close() {
      this.done = true;
      this.closedByClient = true;
    }

    message(data) {
      this.onmessage && this.onmessage({ data });
    }

    fail() {
      this.onerror && this.onerror({});
    }
  };
}

class Storage {
  constructor() {
    this.map = new Map();
  }

  getItem(k) {
    return this.map.has(k) ? this.map.get(k) : null;
  }

  setItem(k, v) {
    this.map.set(k, String(v));
  }
}

class ThrowingStorage {
  getItem() {
    throw new Error('SecurityError: storage disabled');
  }

  setItem() {
    throw new Error('QuotaExceededError');
  }
}

// FakeFileReader reads Blobs the way a browser's does: later, on an event.
function makeFileReader(pending) {
  return class FakeFileReader {
    readAsArrayBuffer(blob) {
      pending.push(() => blob.arrayBuffer().then((buf) => {
        this.result = buf;
        this.onload();
      }));
    }
  };
}

// browser returns fake globals and their controls. Pass without: ['WebSocket']
// to make a browser lacking some of them.
function browser({ without = [], storage } = {}) {
  const clock = new Clock();
  const net = new Net();
  const listeners = {};
  const beacons = [];
  const reads = [];
  let rnd = 0;
  const globals = {
    WebSocket: makeWebSocket(net),
    EventSource: makeEventSource(net),
    XMLHttpRequest: makeXHR(net),
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    now: clock.now,
    // A fixed cycle stands in for Math.random: jitter stays deterministic.
    random: () => [0.5, 0.25, 0.75, 0.1, 0.9][rnd++ % 5],
    localStorage: storage === undefined ? new Storage() : storage,
    navigator: { sendBeacon: (url, body) => { beacons.push({ url, body, endpoint: endpoint(url), query: query(url) }); return true; } },
    URL,
    location: { protocol: 'https:', host: 'app.test', href: 'https://app.test/page/index.html' },
    addEventListener: (type, fn) => { (listeners[type] = listeners[type] || []).push(fn); },
    removeEventListener: (type, fn) => { listeners[type] = (listeners[type] || []).filter((f) => f !== fn); },
    FileReader: makeFileReader(reads),
    Blob,
    ArrayBuffer,
    Uint8Array,
    atob,
    btoa
  };
  for (const k of without) globals[k] = undefined;
  return {
    globals,
    clock,
    net,
    beacons,
    reads,
    fire: (type, ev = {}) => (listeners[type] || []).slice().forEach((f) => f(ev)),
    listeners
  };
}

module.exports = { browser, Storage, ThrowingStorage, Clock, query, endpoint };
