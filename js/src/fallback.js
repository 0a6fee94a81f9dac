// fallback: the transports in their fallback order.

// From other files: longpoll (longpoll); sse (sse); streaming (streaming);
// websocket (websocket).

// TRANSPORTS by name, in the fallback order, best first (PROTOCOL.md
// section 8); options.transports orders them for a session:
// WebSocket, then the streams (SSE where EventSource exists, otherwise XHR
// streaming), then long-polling, which works wherever XMLHttpRequest does.
var TRANSPORTS = { websocket: websocket, sse: sse, streaming: streaming, longpoll: longpoll };

// Each transport has a _name, _need (the global it needs: its capability
// check), _stream (set for SSE and XHR streaming, the streams: proven by a
// probe echoed on them, and judged buffered when heartbeats arrive in a
// burst) and _open(session, attachment, url).

// transportNamed returns the transport module called name, or false; an
// inherited name (toString, __proto__) has no _need.
function transportNamed(name) {
  var t = TRANSPORTS[name];
  return t && t._need && t;
}
