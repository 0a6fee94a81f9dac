// fallback: the transports in their fallback order.

// TRANSPORTS is the fallback order, best first (PROTOCOL.md section 8):
// WebSocket, then the streams (SSE where EventSource exists, otherwise XHR
// streaming), then long-polling, which works wherever XMLHttpRequest does.
var TRANSPORTS = [websocket, sse, streaming, longpoll];

// Each transport has a name, the global it needs (its capability check),
// open(session, attachment, url), and for WebSocket, send.

// transportNamed returns the transport module called name, or undefined.
function transportNamed(name) {
  for (var i = 0; i < TRANSPORTS.length; i++) {
    if (TRANSPORTS[i].name == name) return TRANSPORTS[i];
  }
}
