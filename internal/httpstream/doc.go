// Package httpstream is the streaming hygiene shared by Comet's HTTP
// transports (SSE, XHR streaming, long-polling), so that each adapter only
// encodes its wire format: the response headers that keep caches and
// proxies from storing, transforming or buffering frames; flush support
// checked before a byte is written; a preamble written and flushed at
// once; a write deadline per batch; a Close that unblocks a write in
// progress; and the attachment ended when the client goes away.
//
// An adapter calls Start, writes batches with Response.Write from one
// goroutine at a time (the session's writer), may call Close from any
// goroutine, and calls Finish on the request's goroutine before its
// ServeAttach returns: the ResponseWriter is invalid after that, and
// Finish makes sure nothing touches it.
//
// A stream on HTTP/1.1 is taken over once its headers and preamble are
// out (Response.TookOver): the connection is hijacked, and chunks are
// written to it as net/http would write them, so that what clients and
// proxies see is unchanged until the end, where the last chunk is
// followed by the connection's close rather than a next request. The
// request's goroutine, net/http's background reader and its buffers are
// then let go, and the adapter starts its attachment and returns. Close
// ends such a response; Finish is not needed.
//
// # Headers
//
// Each header Start sets is there because some cache, proxy or browser
// misbehaves without it:
//
//   - Cache-Control: no-store, because a cache or proxy that stores one
//     client's frames could hand them to another, or replay a spent attach
//     URL (PROTOCOL.md section 2); and no-transform, because a proxy that
//     recompresses or rewrites a body (carrier "optimizers", RFC 9111
//     section 5.2.2.6) has to buffer it to do so.
//   - X-Accel-Buffering: no, because nginx buffers proxied responses
//     (proxy_buffering is on by default), and this header from the
//     upstream turns that off for one response without touching its
//     configuration.
//   - X-Content-Type-Options: nosniff, because a browser that sniffs a
//     text/plain body holds back the bytes it sniffs (up to 1,445, per the
//     MIME Sniffing standard) before exposing any to script, and could
//     render frames that carry user data as HTML.
//   - the Content-Type given, and never a Content-Length: a stream has no
//     length, and a proxy that sees one waits for the whole body. One set
//     by a middleware in front is removed.
//   - Connection: keep-alive on HTTP/1.x only. HTTP/1.1 implies it, but
//     HTTP/1.0 intermediaries close a connection after each response unless
//     told (net/http drops the header again where it must close anyway).
//     On HTTP/2 and later, connection-specific fields make a response
//     malformed (RFC 9113 section 8.2.2), and browsers refuse it. A stream
//     that will be taken over says Connection: close instead, since its
//     end closes the connection: a proxy that pooled the connection once
//     the last chunk came would send the next request on a socket about
//     to close, and answer it 502.
package httpstream
