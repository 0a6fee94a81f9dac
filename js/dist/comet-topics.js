/*! comet-shim 0.1.0 comet-topics */
(function (root, factory) {
  if (typeof module == 'object' && module.exports) module.exports = factory(root, require('./comet.js'));
  else factory(root, root.Comet);
}(typeof globalThis != 'undefined' ? globalThis : self, function (ROOT, Comet) {
'use strict';

// topics: comet-topics.js, topic positions (PROTOCOL.md section 15), kept
// out of comet.js to hold its byte budget. Loaded after comet.js, it lets
// a Comet made with the topics option ask for positions, present the ones
// it kept, decode the topic frames the server then sends, and keep the
// position of every topic it reads in c.topics (README.md, "Topics").
//
// comet.js has three hooks, all inert without the topics option:
// - its negotiate calls c.$topics(options, decodeFrame) and adds what it
//   returns to the request's body;
// - once the server agreed (positions: true in the answer), it decodes
//   every line with c.$decode instead of its own decodeFrame;
// - a frame with an $on dispatches its message event in place of
//   comet.js: comet.js calls it, with the event's fields, where it would
//   dispatch the message (in order, once per message, while OPEN).
// This file gives the core a topic message as the plain message it
// carries, and a subscribed frame as an empty text message: both are
// sequenced, acknowledged and resent like messages, and the $on of
// each keeps the position and dispatches the right event.
// The state this file keeps on a Comet is in properties starting with $
// and at least three characters long, which the minifier of comet.js
// never gives to its own fields (it names them with one or two), and in
// topics, the positions the page reads. The hooks' names are such too.
//
// Comet is the shim's constructor: build.js's wrapper passes it, under
// CommonJS from require of the shim beside this file, in a browser the
// page's global Comet, which must therefore be loaded first.

if (typeof Comet != 'function') throw new TypeError('comet-topics.js: load comet.js first');

var MAX_SAFE = 9007199254740991;

// FRAME is the grammar of a frame once each string is blanked to "", as
// in comet.js: unsigned integers and strings, spaces and tabs between
// tokens, nothing else.
var FRAME = /^[ \t]*\[[ \t]*""([ \t]*,[ \t]*(""|\d+))*[ \t]*\][ \t]*$/;

// codecError is a decoding failure with the close code it stands for, as
// comet.js makes them: 1002 malformed, 1007 not valid Unicode.
function codecError(code) {
  var e = new Error(code == 1007 ? 'invalid UTF-8' : 'malformed frame');
  e.code = code;
  return e;
}

// decodeTopicFrame decodes one frame of a session that agreed to topic
// positions, as strictly as the Go decoder: a text or binary message with
// a position, ["m"|"b",seq,payload,"topic","epoch",offset], or a
// subscribed frame, ["y",seq,"topic","epoch",offset,recovered], with a
// topic that is not empty, unsigned safe integers, a sequence number from
// 1 and recovered 0 or 1. Any other line is decodeFrame's (comet.js's
// decoder). It returns the frame as its array and throws a codecError.
function decodeTopicFrame(line, decodeFrame) {
  var f, t, y;
  try {
    f = JSON.parse(line);
  } catch (e) {}
  // Only a line JSON.parse accepted is blanked (see comet.js's codec).
  if (!f || !FRAME.test(line.replace(/"([^"\\]|\\.)*"/g, '""'))) return decodeFrame(line);
  t = f[0];
  y = t == 'y';
  if (!y && !((t == 'm' || t == 'b') && f.length == 6)) return decodeFrame(line);
  if (f.map(function (v) {
    return typeof v == 'string' ? 's' : v > MAX_SAFE ? 'x' : 'n';
  }).join('') != (y ? 'snssnn' : 'snsssn') || !f[1] || !f[y ? 2 : 3] || y && f[5] > 1) {
    throw codecError(1002);
  }
  // The message without its position is comet.js's to check (the payload:
  // base64, Unicode); then every string, each on its own.
  if (!y) decodeFrame(JSON.stringify(f.slice(0, 3)));
  if (f.some(lone)) throw codecError(1007);
  return f;
}

// lone reports whether v (a string or a number) holds a lone surrogate,
// which has no UTF-8 form.
function lone(v) {
  try {
    return !encodeURIComponent(v + '.');
  } catch (e) {
    return 1;
  }
}

// forCore returns what comet.js handles for topic frame f: the message it
// carries, or for a subscribed frame an empty text message, with the
// $on that keeps f's position and dispatches its event.
function forCore(f) {
  var y = f[0] == 'y', topic = f[y ? 2 : 3], m = y ? ['m', f[1], ''] : f.slice(0, 3);
  m.$on = function (c, type, props) {
    c.topics[topic] = { epoch: f[y ? 3 : 4], offset: f[y ? 4 : 5] };
    if (!y) {
      props.topic = topic;
      emit(c, type, props);
    } else if (!f[5]) {
      emit(c, 'topicgap', { topic: topic, epoch: f[3], offset: f[4] });
    }
  };
  return m;
}

// emit dispatches the event type with the fields props, as comet.js does.
function emit(c, type, props) {
  var e = { type: type, target: c }, k;
  for (k in props) e[k] = props[k];
  c.dispatchEvent(e);
}

// $topics is comet.js's hook at every negotiate of a Comet made with the
// topics option (o, the Comet's options): the first time, it takes the
// positions the page gave as c.topics, and c.$decode, the decoder of a
// session whose server agreed; every time, it returns what the negotiate
// body adds: positions: true, and the positions kept, if any, as topics.
// A fresh session (the reconnect option) so presents the positions the
// page read from the previous one.
Comet.prototype.$topics = function (o, decodeFrame) {
  var c = this, k;
  if (!c.$decode) {
    if (typeof o.topics != 'object') throw new TypeError('Comet: topics must be an object');
    c.topics = {};
    for (k in o.topics) c.topics[k] = o.topics[k];
    c.$decode = function (line) {
      var f = decodeTopicFrame(line, decodeFrame);
      return f.length == 6 ? forCore(f) : f;
    };
  }
  for (k in c.topics) return { positions: true, topics: c.topics };
  return { positions: true };
};

return Comet;
}));
