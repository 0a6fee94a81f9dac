// Package longpoll is Comet's long-polling transport. Each GET is one
// attachment: it parks until the session has frames to deliver or the hold
// expires, then answers with one batch (PROTOCOL.md section 5). Upstream
// frames go through the session handler's POST path.
//
// The adapter is safe for concurrent use. Its ServeAttach blocks for the
// whole poll (a ResponseWriter is invalid once ServeHTTP returns), unless
// the poll stays parked long enough to have its connection taken over:
// see ServeAttach.
package longpoll

import (
	"errors"
	"net/http"
	"time"

	"github.com/seed-544bbf9f/comet/internal/httpstream"
	"github.com/seed-544bbf9f/comet/transport"
)

// Adapter serves long-poll attachments.
type Adapter struct{}

// New returns a long-polling adapter.
func New() *Adapter { return &Adapter{} }

// Name returns transport.LongPoll.
func (*Adapter) Name() string { return transport.LongPoll }

// ServeAttach serves one poll. The response is one-shot: no preamble and
// no flush, so that net/http sends it whole when the handler returns. A
// client that gives up on its poll ends the attachment rather than leaving
// it parked.
//
// A delivering poll still parked after Limits.PollRelease, on a
// connection that can be taken over (HTTP/1.1), is: the request's
// goroutine returns, and the answer goes on the connection, which closes
// after it (see httpstream.Response.TakeOverPoll).
func (*Adapter) ServeAttach(w http.ResponseWriter, r *http.Request, a transport.Attachment) {
	resp, err := httpstream.Start(w, r, a, httpstream.Config{
		ContentType:  "text/plain; charset=utf-8",
		WriteTimeout: a.Limits().WriteTimeout,
	})
	if err != nil {
		return
	}
	release := a.Limits().PollRelease
	if release <= 0 || !a.Params().Deliver || !resp.CanTakeOver(r) {
		defer resp.Finish()
		a.Serve(downstream{resp}, transport.Poll)
		return
	}
	ds := &releasing{downstream: downstream{resp}, leave: make(chan struct{})}
	t := time.AfterFunc(release, func() { close(ds.leave) })
	err = a.Serve(ds, transport.Poll)
	t.Stop()
	if !errors.Is(err, transport.ErrLeft) {
		resp.Finish()
		return
	}
	if resp.TakeOverPoll(r, a) {
		return
	}
	// Not taken over (the client went away, or a write began): the
	// session's writer answers, or the attachment ends, as under Serve.
	<-a.Done()
	resp.Finish()
}

// downstream answers the poll with one batch.
type downstream struct{ resp *httpstream.Response }

func (d downstream) WriteBatch(b *transport.Batch) error {
	if err := d.resp.Write(b.Bytes); err != nil {
		return err
	}
	return transport.ErrDone
}

// Close ends the poll; the request's goroutine returns from Serve.
func (d downstream) Close() error { return d.resp.Close() }

// releasing is the downstream of a poll that may be taken over: its
// Leave closes once the poll has been parked for Limits.PollRelease.
type releasing struct {
	downstream
	leave chan struct{}
}

// Leave implements transport.LeavingDownstream.
func (d *releasing) Leave() <-chan struct{} { return d.leave }
