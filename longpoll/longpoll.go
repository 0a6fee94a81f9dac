// Package longpoll is Comet's long-polling transport. Each GET is one
// attachment: it parks until the session has frames to deliver or the hold
// expires, then answers with one batch (PROTOCOL.md section 5). Upstream
// frames go through the session handler's POST path.
//
// The adapter is safe for concurrent use. Its ServeAttach blocks for the
// whole poll: a ResponseWriter is invalid once ServeHTTP returns.
package longpoll

import (
	"net/http"

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
func (*Adapter) ServeAttach(w http.ResponseWriter, r *http.Request, a transport.Attachment) {
	resp, err := httpstream.Start(w, r, a, httpstream.Config{
		ContentType:  "text/plain; charset=utf-8",
		WriteTimeout: a.Limits().WriteTimeout,
	})
	if err != nil {
		return
	}
	defer resp.Finish()
	a.Serve(downstream{resp}, transport.Poll)
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
