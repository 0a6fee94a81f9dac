// link: one carrier of the server (Link), polls or a stream, and the
// decoding of its frames (PROTOCOL.md section 16).

// From other files: none.

// BUDGET: a carrier stream that has delivered this many characters is
// replaced by a fresh one, as the browser keeps all of a response's text.
var BUDGET = 1048576;

// PROOF: how long a carrier stream has to echo a ping before it is given
// up, for polls.
var PROOF = 2e3;

// MEMORY_TTL is how long the page remembers that streams do not work for
// an endpoint (localStorage), as comet.js remembers its transports.
var MEMORY_TTL = 864e5;

// Link is one carrier of the server: polls, or (stream set) a stream.
// Its ops wait for its hello, and are POSTed one batch at a time.
function Link(c, stream) {
  var l = this, h = c._h, seen = 0;
  l._c = c;
  l._h = h;
  l._stream = stream;
  l._id = '';
  l._state = 1; // 1 opening, 2 open, 3 ended
  l._ops = [];
  l._n = l._ack = l._sending = 0; // _n: its sub-requests
  if (!stream) return l._poll();
  l._req = request(h, l._url('&s=1'), function (status, text) {
    if (status == 200) read(text, 1);
    c._lost(l, status, text);
  }, read);
  // read reads the stream's new whole lines (with last, the rest too).
  function read(text, last) {
    var lines = text.slice(seen).split('\n'), i;
    if (!last) lines.pop();
    for (i = 0; i < lines.length && l._state < 3; i++) {
      seen += lines[i].length + 1;
      if (/\S/.test(lines[i])) l._frame(lines[i]);
    }
    if (seen > BUDGET) c._recycle(l);
  }
  l._timer = h._g.setTimeout(function () {
    // The hello or the ping's echo did not come: a proxy holds the
    // stream back. Polls alone then, for a day.
    remember(h);
    c._lost(l, 0, '');
  }, PROOF);
}

var link = Link.prototype;

// _url is a URL of the endpoint's carriers with params and a cache buster.
link._url = function (params) {
  var h = this._h;
  return h._base + '/share?v=1' + params + '&z=' + h._rand().toString(36).slice(2);
};

// _queue sends op once the link is open.
link._queue = function (op) {
  this._ops.push(op);
  this._flush();
};

// _abort aborts sub-request sub: not sent yet, it is not sent; sent, the
// server ends it.
link._abort = function (sub) {
  var l = this, n = l._ops.length;
  l._ops = l._ops.filter(function (op) {
    return op[0] != sub;
  });
  if (l._ops.length == n) l._queue([+sub, 'x']);
};

// _frame handles one line of the link.
link._frame = function (line) {
  var l = this, c = l._c, f = decodeCarrierFrame(line);
  if (!f) return c._lost(l, 0, '');
  if (f.o) {
    l._id = f.o;
    l._max = f.max;
    if (!l._stream) {
      l._state = 2;
      return l._flush();
    }
    // Prove the stream: the ping's echo must come on it promptly.
    l._sending = 1;
    return l._send([[0, 'p']], 0);
  }
  l._ack = f.n;
  if (f.kind == 'p') c._pong();
  if (f.kind == 'p' && l._state == 1) {
    // Proven: new sub-requests go here.
    l._h._g.clearTimeout(l._timer);
    l._state = 2;
    c._proven();
    return l._flush();
  }
  if (f.sub) {
    c._hand(f.sub, f.kind, f.status, f.text);
    if (l._moving) c._move(f.sub);
  }
};

// _poll polls the link (the first poll opens it) until it ends. A poll
// that fails is sent again, twice: what it lost is answered again.
link._poll = function (tries) {
  var l = this, c = l._c;
  l._req = request(l._h, l._url(l._id ? '&c=' + l._id + '&n=' + l._ack : ''), function (status, text) {
    if (status != 200) {
      if (!status && l._id && (tries || 0) < 2) return l._poll((tries || 0) + 1);
      return c._lost(l, status, text);
    }
    text.split('\n').map(function (line) {
      if (l._state < 3 && /\S/.test(line)) l._frame(line);
    });
    if (l._state < 3) l._poll();
  });
};

// _flush sends the ops waiting, one POST at a time, within the server's
// bound.
link._flush = function () {
  var l = this, batch = [], size = 2, op, s;
  if (l._sending || l._state != 2) return;
  while (l._ops.length) {
    op = l._ops[0];
    s = JSON.stringify(op).length + 1;
    if (batch.length && size + s > l._max) break;
    l._ops.shift();
    if (size + s > l._max) {
      // Larger than the server takes (which comet.js, keeping each POST
      // within maxBatch, never sends): it fails rather than wait forever.
      l._c._hand(op[0], 'f', 0, '');
      continue;
    }
    batch.push(op);
    size += s;
  }
  if (!batch.length) return;
  l._sending = 1;
  l._send(batch, 0);
};

// _send POSTs a batch of ops. One that fails is sent again, twice: the
// server starts nothing twice.
link._send = function (batch, tries) {
  var l = this, c = l._c;
  request(l._h, l._url('&c=' + l._id), function (status, text) {
    if (l._state == 3) return;
    if (!status && tries < 2) return l._send(batch, tries + 1);
    l._sending = 0;
    if (status == 200) {
      l._flush();
      if (l._retiring && !l._sending) l._end();
      return;
    }
    if (status == 404 || !status) return c._lost(l, status, text);
    // A refusal of the body itself: its sub-requests fail.
    batch.map(function (op) {
      c._hand(op[0], 'f', 0, '');
    });
    l._flush();
  }, 0, JSON.stringify(batch));
};

// _retire ends the link once the ops it holds (aborts) are sent.
link._retire = function () {
  var l = this;
  l._retiring = 1;
  if (!l._sending && (!l._ops.length || l._state != 2)) l._end();
};

// _end stops the link's requests and timer.
link._end = function () {
  var l = this;
  l._state = 3;
  l._h._g.clearTimeout(l._timer);
  if (l._req) l._req.close();
};

// decodeCarrierFrame decodes a line of a carrier (PROTOCOL.md section
// 16): the hello as {o: id, max}, another frame as {n, sub, kind, status,
// text}; undefined for anything else.
function decodeCarrierFrame(line) {
  var f, kind;
  try {
    f = JSON.parse(line);
  } catch (e) {
    return;
  }
  if (!Array.isArray(f)) return;
  if (f[0] === 'o') {
    return f.length == 3 && typeof f[1] == 'string' && f[1] && whole(f[2]) ? { o: f[1], max: f[2] } : undefined;
  }
  kind = f[2];
  // Compared only as a string: an array would be turned into one, which
  // for a deeply nested one overflows the stack.
  if (!whole(f[0]) || !whole(f[1]) || typeof kind != 'string') return;
  if (kind == 'h' && f.length == 4 && whole(f[3]) && f[1]) return { n: f[0], sub: f[1], kind: kind, status: f[3] };
  if (kind == 'd' && f.length == 4 && typeof f[3] == 'string' && f[1]) {
    return { n: f[0], sub: f[1], kind: kind, text: f[3] };
  }
  if (f.length == 3 && (kind == 'e' && f[1] || (kind == 'p' || kind == 'k') && !f[1])) {
    return { n: f[0], sub: f[1], kind: kind };
  }
}

// whole reports whether v is an integer from 0 to 2^53-1.
function whole(v) {
  return typeof v == 'number' && v >= 0 && v <= 9007199254740991 && Math.floor(v) === v;
}

// request sends one XMLHttpRequest of the carrier to the network: a GET,
// or with a body a text/plain POST (CORS-simple). done(status, text)
// runs once; progress, if set, gets the growing responseText. It returns
// an object whose close aborts the request without calling done.
function request(h, url, done, progress, body) {
  var x = new h._g.XMLHttpRequest(), over;
  x.open(body == null ? 'GET' : 'POST', url, true);
  x.withCredentials = h._creds;
  if (body != null) x.setRequestHeader('Content-Type', 'text/plain;charset=UTF-8');
  x.onreadystatechange = function () {
    var text;
    if (x.readyState < 3 || over) return;
    try {
      text = x.responseText;
    } catch (e) {
      return;
    }
    if (progress && x.status == 200 && x.readyState == 3) progress(text);
    if (x.readyState == 4) {
      over = 1;
      done(x.status, text);
    }
  };
  x.send(body);
  return {
    close: function () {
      if (!over) {
        over = 1;
        x.abort();
      }
    }
  };
}

// recall reports whether the page found this endpoint's carrier streams
// held back, within MEMORY_TTL; remember records it. Storage may throw
// anywhere, which only forgets.
function recall(h) {
  try {
    return +h._g.localStorage.getItem('comet-share-polls:' + h._base) > h._now();
  } catch (e) {}
}

function remember(h) {
  try {
    h._g.localStorage.setItem('comet-share-polls:' + h._base, h._now() + MEMORY_TTL);
  } catch (e) {}
}
