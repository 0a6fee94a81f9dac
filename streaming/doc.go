// Package streaming is Comet's XHR-streaming transport: one long-lived
// text/plain response per attachment that carries batch after batch,
// readable as it grows through XMLHttpRequest.responseText or a fetch
// stream (PROTOCOL.md section 5.1). Since responseText only grows, the
// response is recycled after a byte budget, always at a frame boundary;
// the client attaches again with its ack. Upstream frames go through the
// session handler's POST path.
//
// The adapter is safe for concurrent use. Each response has one writer
// at a time, the session's, which writes every batch as one write and one flush;
// the session may end the response from any goroutine, which unblocks a
// write in progress. On HTTP/1.1 the response's connection is taken over
// once the preamble is out (internal/httpstream), and ServeAttach returns:
// an idle stream then costs its socket and one goroutine reading it, and
// on TCP the session writes from the goroutine that sends. Otherwise
// (HTTP/2, a middleware's writer that does not pass Hijack on)
// ServeAttach blocks until the response ends: a ResponseWriter is invalid
// once ServeHTTP returns.
package streaming
