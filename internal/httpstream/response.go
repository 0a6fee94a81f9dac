package httpstream

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

var (
	// ErrClosed is returned by Write once the response is closed.
	ErrClosed = errors.New("comet: response closed")
	// ErrClientGone is what the attachment is ended with when the request's
	// context ends: the client went away or the server is closing.
	ErrClientGone = errors.New("comet: request ended by the client")
)

// longAgo is a deadline surely in the past: HTTP/2 resets the stream only
// for a deadline before time.Now(), which a fresh time.Now() need not be.
var longAgo = time.Unix(1, 0)

// Attachment is what a Response ends when its request's context ends;
// every transport.Attachment is one.
type Attachment interface {
	End(err error)
}

// Config describes one response.
type Config struct {
	// ContentType is the response's Content-Type.
	ContentType string
	// Stream marks a long-lived response (SSE, XHR streaming): the writer
	// must be able to flush, the headers and Preamble go out at once, and
	// every Write is flushed. A one-shot response (a long-poll) is written
	// once and sent when the handler returns.
	Stream bool
	// Preamble is written and flushed by Start on a stream; nil for none.
	Preamble []byte
	// WriteTimeout bounds each Write, and the end of the response. Zero
	// means no deadline.
	WriteTimeout time.Duration
}

// Response is one HTTP response carrying batches; see the package doc for
// who may call what.
type Response struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	cfg  Config
	stop func() bool // stops the context.AfterFunc that ends the attachment

	// Set by Start when it took a stream's connection over (see
	// takeOver), or by TakeOverPoll, under mu, when it took a parked
	// poll's: then frames go to conn, and w and rc are not used.
	conn   net.Conn
	prompt bool        // conn's writes never wait on the client
	header http.Header // a poll taken over: the headers its answer carries

	mu       sync.Mutex
	closed   bool
	writing  bool
	answered bool // a one-shot response's Write has begun

	// wmu is held across a write to w, so that Finish can wait for one
	// begun on another goroutine.
	wmu sync.Mutex
}

// Start sets the response's headers and, on a stream, checks that the
// writer can flush, commits the headers, writes and flushes the preamble,
// and takes the connection over where it can (see TookOver); from then
// on, the end of r's context, or of the connection taken over, ends a.
// When it returns
// an error the request is over: Start answered 500 streaming_unsupported
// (the error wraps http.ErrNotSupported), or the client is gone.
func Start(w http.ResponseWriter, r *http.Request, a Attachment, cfg Config) (*Response, error) {
	resp := &Response{w: w, rc: http.NewResponseController(w), cfg: cfg}
	setHeaders(w, r, cfg.ContentType)
	if cfg.Stream && resp.CanTakeOver(r) {
		// Its end closes the connection (see takeOver): said up front, so
		// that no proxy keeps the connection for another request.
		w.Header().Set("Connection", "close")
	}
	// A writer that implements http.Flusher itself (net/http's does)
	// always flushes: its stream's headers go out with the preamble, in
	// one write.
	_, flusher := w.(http.Flusher)
	if cfg.Stream && (!flusher || len(cfg.Preamble) == 0) {
		// ResponseController has no side-effect-free "can you flush?", and
		// a wrapper can hide Flush behind Unwrap. A Flush is the exact
		// probe: unsupported, it fails before touching the response, so
		// the 500 can still be sent; supported, it commits the headers
		// set above, which is the first thing a stream wants anyway.
		if err := resp.rc.Flush(); err != nil {
			if errors.Is(err, http.ErrNotSupported) {
				h := w.Header()
				h.Del("X-Accel-Buffering")
				h.Del("Connection")
				transport.WriteError(w, http.StatusInternalServerError, transport.ErrorBody{
					Code: transport.CodeStreamingBroken,
					Message: "the response writer cannot flush, so no stream would reach the client; " +
						"a compression or buffering middleware in front of the handler is the likely cause: mount Comet outside it",
				}, 0)
			}
			return nil, err
		}
	}
	if cfg.Stream && len(cfg.Preamble) > 0 {
		if err := resp.Write(cfg.Preamble); err != nil {
			return nil, err
		}
		resp.cfg.Preamble = nil // sent: a stream need not keep it
	}
	if cfg.Stream && resp.takeOver(r, a) {
		resp.stop = stopped
		return resp, nil
	}
	resp.stop = context.AfterFunc(r.Context(), func() { a.End(ErrClientGone) })
	return resp, nil
}

// Write writes p within the write timeout and, on a stream, flushes it.
// It fails with ErrClosed once Close has been called, including when Close
// cut the write short.
func (r *Response) Write(p []byte) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	if r.conn != nil {
		if !r.cfg.Stream {
			return r.answerLocked(p)
		}
		return r.writeTakenLocked(p)
	}
	// The deadline is set under the lock, so that a Close after it always
	// sees the write and overrides the deadline, never the other way round.
	if err := r.setDeadline(); err != nil {
		r.mu.Unlock()
		return err
	}
	r.answered = true
	r.beginWriteLocked()

	r.wmu.Lock()
	_, err := r.w.Write(p)
	if err == nil && r.cfg.Stream {
		err = r.rc.Flush()
	}
	r.wmu.Unlock()
	return r.endWrite(err)
}

// beginWriteLocked marks a write in progress, for Close to cut short, and
// lets go of r.mu, which the caller holds, for the write.
func (r *Response) beginWriteLocked() {
	r.writing = true
	r.mu.Unlock()
}

// endWrite ends the write beginWriteLocked began, whose outcome is err:
// ErrClosed if Close came meanwhile and the write failed.
func (r *Response) endWrite(err error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writing = false
	if err != nil && r.closed {
		err = ErrClosed
	}
	return err
}

func (r *Response) setDeadline() error {
	if r.cfg.WriteTimeout <= 0 {
		return nil
	}
	err := r.rc.SetWriteDeadline(time.Now().Add(r.cfg.WriteTimeout))
	if errors.Is(err, http.ErrNotSupported) {
		return nil // a wrapper without Unwrap: writes go unbounded
	}
	return err
}

// Close stops further writes and fails a write in progress at once. It is
// idempotent and safe concurrently with Write. Without a write in progress
// it leaves the response alone, so that the response ends cleanly (for
// HTTP/1.1, with its last chunk) when the handler returns; a response
// whose connection was taken over it ends itself, with the last chunk
// unless a write was cut short, and closes the connection.
func (r *Response) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	writing := r.writing
	if r.conn != nil {
		answered := r.answered
		r.mu.Unlock()
		if !r.cfg.Stream {
			return r.endAnswer(writing, answered)
		}
		return r.end(writing)
	}
	if writing {
		// A deadline in the past fails a blocked write: net.Conn (HTTP/1)
		// and HTTP/2 streams allow it while the write is in progress.
		r.rc.SetWriteDeadline(longAgo)
	}
	r.mu.Unlock()
	return nil
}

// Finish ends the response's use of the ResponseWriter: it stops watching
// the request's context, closes the response, gives the end of the
// response a fresh deadline (the last batch's may have passed while the
// stream idled), and waits for a write that another goroutine has begun.
// The adapter calls it before ServeAttach returns; after it, nothing
// touches the writer. A response that took its connection over needs no
// Finish: Close ends it.
func (r *Response) Finish() {
	r.stop()
	r.mu.Lock()
	if r.conn != nil {
		r.mu.Unlock()
		return // the writer was let go by the takeover
	}
	r.closed = true
	if !r.writing {
		// A write in flight keeps its deadline, which Close may have
		// moved into the past to cut it short.
		r.setDeadline()
	}
	r.mu.Unlock()
	r.wmu.Lock()
	r.wmu.Unlock()
}
