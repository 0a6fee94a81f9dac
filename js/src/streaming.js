// streaming: the XHR streaming transport (PROTOCOL.md section 5.1), for
// browsers without EventSource: one long GET read as its responseText
// grows. The server recycles the response after a byte budget, always at
// a frame boundary; the session then attaches again.

// From other files: xhrTransport (lines).
var streaming = xhrTransport('streaming', 1);
