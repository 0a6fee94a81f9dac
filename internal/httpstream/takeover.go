package httpstream

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/seed-544bbf9f/comet/internal/trywrite"
)

// lastChunk ends a chunked body (RFC 9112 section 7.1), with no trailer.
var lastChunk = []byte("0\r\n\r\n")

// endTimeout bounds the write of the last chunk of a stream taken over.
const endTimeout = time.Second

// maxKept is the largest chunk buffer returned to the pool; a larger one,
// grown for a burst, is left to the garbage collector.
const maxKept = 64 << 10

var chunkPool = sync.Pool{New: func() any { return new([]byte) }}

// takeOver hijacks the connection of a stream whose headers and preamble
// net/http has sent, chunked, so that the stream costs what the socket
// costs: net/http's goroutine for the request, its background reader and
// its buffers are released when ServeAttach returns, and later chunks are
// written here, framed as net/http frames them (RFC 9112 section 7.1).
// On a TCP connection the writes never wait on the client
// (internal/trywrite). One goroutine reads the connection, to see the
// client go away, as net/http's background reader does.
//
// It takes over only an HTTP/1.1 response that net/http chunks, written
// through a ResponseWriter that itself implements http.Hijacker:
// net/http's own, or a middleware's that chose to pass Hijack on. Not an
// HTTP/1.0 one (delimited by the connection's close), nor HTTP/2, nor a
// wrapper that reaches Hijack only through Unwrap, since a wrapper may
// rewrite or compress what is written (one that sets Content-Encoding is
// never taken over), and writing to the connection would go around it;
// those keep net/http's path. It reports whether it took over.
func (r *Response) takeOver(req *http.Request, a Attachment) bool {
	if !r.CanTakeOver(req) {
		return false
	}
	conn, brw, err := r.w.(http.Hijacker).Hijack()
	if err != nil {
		return false
	}
	// A client does not send on a connection whose response is still
	// coming; bytes already read (a pipelined request) are never answered.
	brw.Reader.Discard(brw.Reader.Buffered())
	r.conn, r.prompt = trywrite.Wrap(conn)
	// Let go of net/http's response, which holds the connection's
	// buffers.
	r.w, r.rc = nil, nil
	go watch(conn, a)
	return true
}

// CanTakeOver reports whether the response's connection could be taken
// over: an HTTP/1.1 request, a ResponseWriter that implements
// http.Hijacker itself, and no Transfer-Encoding or Content-Encoding set
// by a middleware (see takeOver).
func (r *Response) CanTakeOver(req *http.Request) bool {
	if r.w == nil {
		return false
	}
	_, ok := r.w.(http.Hijacker)
	h := r.w.Header()
	return ok && req.ProtoMajor == 1 && req.ProtoMinor >= 1 && h.Get("Transfer-Encoding") == "" && h.Get("Content-Encoding") == ""
}

// stopped is the stop of a response that watches no request's context:
// one taken over, whose request's context ends when ServeAttach returns.
func stopped() bool { return false }

// watch reads the connection until it fails: the client has gone, or the
// stream was closed, which ends the attachment already.
func watch(c net.Conn, a Attachment) {
	buf := make([]byte, 64)
	for {
		if _, err := c.Read(buf); err != nil {
			a.End(ErrClientGone)
			return
		}
	}
}

// TookOver reports whether Start hijacked the connection: then the
// response no longer needs the request's goroutine, and the adapter starts
// the attachment (transport.Attachment.Start) and returns instead of
// serving it.
func (r *Response) TookOver() bool { return r.conn != nil }

// Prompt reports whether the response's writes never wait on the client
// (transport.PromptDownstream): it took the connection over, and the
// connection is a TCP one.
func (r *Response) Prompt() bool { return r.prompt }

// writeChunk writes p as one chunk of the connection taken over.
func (r *Response) writeChunk(p []byte) error {
	bp := chunkPool.Get().(*[]byte)
	b := strconv.AppendUint((*bp)[:0], uint64(len(p)), 16)
	b = append(b, '\r', '\n')
	b = append(b, p...)
	b = append(b, '\r', '\n')
	_, err := r.conn.Write(b)
	if cap(b) <= maxKept {
		*bp = b
		chunkPool.Put(bp)
	}
	return err
}

// end writes the last chunk and closes the connection taken over: the
// client sees a complete response, then the connection close, which
// HTTP/1.1 allows after any response.
func (r *Response) end(unblock bool) error {
	if unblock {
		// A write waits on the client: a deadline in the past fails it, and
		// the response is cut short.
		r.conn.SetWriteDeadline(longAgo)
	} else {
		r.conn.SetWriteDeadline(time.Now().Add(endTimeout))
		r.conn.Write(lastChunk)
	}
	return closeConn(r.conn)
}

// writeTakenLocked is Write on a stream's connection taken over, called
// with r.mu held; it lets go of it. A prompt connection's write never
// waits, so it is made under the lock, and Close always finds it over;
// any other is made as Write makes net/http's, outside the lock, for
// Close to cut short.
func (r *Response) writeTakenLocked(p []byte) error {
	if r.cfg.WriteTimeout > 0 {
		r.conn.SetWriteDeadline(time.Now().Add(r.cfg.WriteTimeout))
	}
	if r.prompt {
		defer r.mu.Unlock()
		return r.writeChunk(p)
	}
	r.beginWriteLocked()
	return r.endWrite(r.writeChunk(p))
}
