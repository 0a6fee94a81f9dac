// fallback: the transports in their fallback order.

// TRANSPORTS by name, in the fallback order, best first (PROTOCOL.md
// section 8); options.transports orders them for a session:
// WebSocket, then the streams (SSE where EventSource exists, otherwise XHR
// streaming), then long-polling, which works wherever XMLHttpRequest does.
var TRANSPORTS = { websocket: websocket, sse: sse, streaming: streaming, longpoll: longpoll };

// Each transport has a name, the global it needs (its capability check),
// open(session, attachment, url), and for WebSocket, send.

// transportNamed returns the transport module called name, or false; an
// inherited name (toString, __proto__) has no need.
function transportNamed(name) {
  var t = TRANSPORTS[name];
  return t && t.need && t;
}
