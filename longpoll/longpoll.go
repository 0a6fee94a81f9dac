// Package longpoll is Comet's long-polling transport. Each GET is one
// attachment: it parks until the session has frames to deliver or the hold
// expires, then answers with one batch (PROTOCOL.md section 5). Upstream
// frames go through the session handler's POST path.
//
// The adapter is safe for concurrent use. Its ServeAttach blocks for the
// whole poll: a ResponseWriter is invalid once ServeHTTP returns.
package longpoll

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

var (
	errClientGone = errors.New("comet: poll request ended by the client")
	errClosed     = errors.New("comet: poll closed")
)

// Adapter serves long-poll attachments.
type Adapter struct{}

// New returns a long-polling adapter.
func New() *Adapter { return &Adapter{} }

// Name returns transport.LongPoll.
func (*Adapter) Name() string { return transport.LongPoll }

// ServeAttach serves one poll.
func (*Adapter) ServeAttach(w http.ResponseWriter, r *http.Request, a *session.Attachment) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store, no-transform")
	h.Set("X-Content-Type-Options", "nosniff")
	// A client that gives up on its poll must not leave it parked.
	stop := context.AfterFunc(r.Context(), func() { a.End(errClientGone) })
	defer stop()
	ds := &downstream{w: w, rc: http.NewResponseController(w), timeout: a.Session().Options().WriteTimeout}
	a.Serve(ds, session.Poll)
}

// downstream answers the poll with one batch.
type downstream struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	closed  atomic.Bool
}

func (d *downstream) WriteBatch(b *transport.Batch) error {
	if d.closed.Load() {
		return errClosed
	}
	d.rc.SetWriteDeadline(time.Now().Add(d.timeout))
	if _, err := d.w.Write(b.Bytes); err != nil {
		return err
	}
	return transport.ErrDone
}

// Close marks the poll over; the request's goroutine returns from Serve.
func (d *downstream) Close() error {
	d.closed.Store(true)
	return nil
}
