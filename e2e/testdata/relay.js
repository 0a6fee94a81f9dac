// relay.js is the page script of the relay's browser tests (relay_test.go).
// The page loads the shim and the TCP helper from the Comet handler, then
// this script; the Go test calls scenario(name, params), whose promise
// resolves with a JSON-able result. It speaks RESP, Redis's protocol, to
// the back-end through a CometTCP socket.
(function () {
  'use strict';

  var sock = null, reader = null;

  // pattern returns size bytes of a xorshift32 stream from seed: every
  // byte value occurs, and the Go test makes the same bytes.
  function pattern(seed, size) {
    var out = new Uint8Array(size), x = seed >>> 0 || 1;
    for (var i = 0; i < size; i++) {
      x ^= x << 13; x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5; x >>>= 0;
      out[i] = x & 0xff;
    }
    return out;
  }

  function utf8(s) { return new TextEncoder().encode(s); }

  function concat(parts) {
    var n = 0, i;
    for (i = 0; i < parts.length; i++) n += parts[i].length;
    var out = new Uint8Array(n), at = 0;
    for (i = 0; i < parts.length; i++) { out.set(parts[i], at); at += parts[i].length; }
    return out;
  }

  // command encodes a RESP array of bulk strings; args are strings or
  // Uint8Arrays.
  function command(args) {
    var parts = [utf8('*' + args.length + '\r\n')];
    for (var i = 0; i < args.length; i++) {
      var a = typeof args[i] == 'string' ? utf8(args[i]) : args[i];
      parts.push(utf8('$' + a.length + '\r\n'), a, utf8('\r\n'));
    }
    return concat(parts);
  }

  // Reader parses RESP2 replies from the bytes the socket delivers, in
  // whatever pieces they come.
  function Reader() {
    this.buf = new Uint8Array(0);
    this.replies = [];
    this.waiters = [];
  }
  Reader.prototype.feed = function (chunk) {
    this.buf = concat([this.buf, chunk]);
    for (;;) {
      var r = parse(this.buf, 0);
      if (!r) return;
      this.buf = this.buf.subarray(r.end);
      if (this.waiters.length) this.waiters.shift().resolve(r.value);
      else this.replies.push(r.value);
    }
  };
  Reader.prototype.next = function () {
    var self = this;
    if (this.replies.length) return Promise.resolve(this.replies.shift());
    return new Promise(function (resolve, reject) { self.waiters.push({ resolve: resolve, reject: reject }); });
  };
  Reader.prototype.fail = function (err) {
    var w = this.waiters.splice(0);
    for (var i = 0; i < w.length; i++) w[i].reject(err);
  };

  function line(buf, at) {
    for (var i = at; i + 1 < buf.length; i++) {
      if (buf[i] == 13 && buf[i + 1] == 10) return { text: String.fromCharCode.apply(null, buf.subarray(at, i)), end: i + 2 };
    }
    return null;
  }

  // parse returns {value, end} for a whole reply at buf[at:], or null.
  function parse(buf, at) {
    var l = line(buf, at);
    if (!l) return null;
    var kind = l.text.charAt(0), rest = l.text.slice(1);
    switch (kind) {
      case '+': case '-': return { value: { t: kind, s: rest }, end: l.end };
      case ':': return { value: { t: ':', n: Number(rest) }, end: l.end };
      case '$':
        var n = Number(rest);
        if (n < 0) return { value: { t: '$', nil: true }, end: l.end };
        if (buf.length < l.end + n + 2) return null;
        return { value: { t: '$', bytes: buf.slice(l.end, l.end + n) }, end: l.end + n + 2 };
      case '*':
        var count = Number(rest), items = [], end = l.end;
        for (var i = 0; i < count; i++) {
          var r = parse(buf, end);
          if (!r) return null;
          items.push(r.value);
          end = r.end;
        }
        return { value: { t: '*', items: items }, end: end };
    }
    throw new Error('not RESP: ' + JSON.stringify(l.text));
  }

  // plain turns a reply into JSON: bulk strings as text, or, with expect,
  // as their length and whether they equal the expected bytes.
  function plain(v, expect) {
    if (v.t == '$' && !v.nil) {
      if (!expect) return { t: '$', s: new TextDecoder().decode(v.bytes) };
      var want = pattern(expect.seed, expect.size), same = want.length == v.bytes.length;
      for (var i = 0; same && i < want.length; i++) same = want[i] == v.bytes[i];
      return { t: '$', len: v.bytes.length, same: same };
    }
    if (v.t == '*') return { t: '*', items: v.items.map(function (x) { return plain(x); }) };
    return v;
  }

  var scenarios = {
    // connect opens the socket through the relay to p.host:p.port.
    connect: function (p) {
      reader = new Reader();
      return new Promise(function (resolve, reject) {
        sock = new CometTCP(p.url, p.host, p.port, p.options || {});
        sock.onopen = function () { resolve({ readyState: sock.readyState }); };
        sock.ondata = function (e) { reader.feed(e.data); };
        sock.closed = new Promise(function (done) {
          sock.onclose = function (e) {
            var ev = { code: e.code, reason: e.reason, wasClean: e.wasClean };
            console.log('close ' + JSON.stringify(ev));
            reject(new Error('closed before open: ' + JSON.stringify(ev)));
            reader.fail(new Error('closed: ' + JSON.stringify(ev)));
            done(ev);
          };
        });
      });
    },
    // cmd sends one command and resolves with its reply. p.bin, if set,
    // replaces argument p.bin.index with pattern(p.bin.seed, p.bin.size);
    // p.expect compares a bulk reply with a pattern.
    cmd: function (p) {
      var args = p.args.slice();
      if (p.bin) args[p.bin.index] = pattern(p.bin.seed, p.bin.size);
      sock.send(command(args));
      return reader.next().then(function (v) { return plain(v, p.expect); });
    },
    // next resolves with the next reply, such as a published message.
    next: function () {
      return reader.next().then(function (v) { return plain(v); });
    },
    // close closes the socket and resolves with its close event.
    close: function () {
      sock.close();
      return sock.closed;
    }
  };

  window.scenario = function (name, p) {
    console.log('scenario ' + name + ' ' + JSON.stringify(p));
    return scenarios[name](p);
  };
}());
