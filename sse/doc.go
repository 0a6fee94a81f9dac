// Package sse is Comet's Server-Sent Events transport: one long-lived
// text/event-stream response per attachment, each frame one event of the
// default type, so that a browser's EventSource reads them (PROTOCOL.md
// section 5.1). Upstream frames go through the session handler's POST
// path.
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
package sse
