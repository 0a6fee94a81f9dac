package transport

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"time"
)

// Adapter serves one transport: it adapts the transport's wire format to
// an Attachment, and nothing more. It is the seam the transport packages
// implement; applications never meet it. By the time ServeAttach runs, the
// handler has checked the version, the Origin, the session and the ticket.
type Adapter interface {
	// Name is the transport name, also the last path segment it serves.
	Name() string
	// ServeAttach serves an attach request. It calls a.Serve with its
	// Downstream, or answers with an error (WriteError) if it cannot start.
	ServeAttach(w http.ResponseWriter, r *http.Request, a Attachment)
}

// Delivery says how a transport's downstream carries batches.
type Delivery int

const (
	// Stream downstreams (WebSocket, SSE, XHR streaming) carry batch after
	// batch; the open frame is written at once.
	Stream Delivery = iota
	// Poll downstreams (long-polling) carry one batch and end; the open
	// frame waits for something to deliver or for the hold to expire.
	Poll
)

// Limits are the settings of the handler that an adapter applies itself,
// as values: an adapter reads them, it cannot change them.
type Limits struct {
	// MaxBatch is the largest encoded batch in bytes: the read limit of a
	// transport that reads upstream batches itself.
	MaxBatch int
	// WriteTimeout bounds each write to the client.
	WriteTimeout time.Duration
	// PollRelease is how long a long-poll stays parked on its request's
	// goroutine before the adapter takes its connection over (see
	// LeavingDownstream); zero or less never.
	PollRelease time.Duration
	// DeflateLevel, if not zero, is the DEFLATE level of the
	// permessage-deflate a WebSocket offers at its handshake (see
	// Compression); zero offers none.
	DeflateLevel int
}

// Attachment is one transport connection or request bound to a session, as
// an adapter sees it. The session layer makes it once the request has
// proved itself; the adapter calls Serve with its Downstream and, if it
// reads upstream batches itself (WebSocket), feeds them to Receive from
// one goroutine. All methods are safe for concurrent use.
type Attachment interface {
	// Params returns the attach request's parameters.
	Params() AttachParams
	// Limits returns the handler's limits the adapter applies.
	Limits() Limits
	// Serve delivers frames to ds until the attachment ends: superseded,
	// its downstream broken or done, the client silent for two heartbeat
	// intervals, or the session finished. It blocks; the adapter calls it
	// from the request's goroutine. Serve closes ds before returning, and
	// no write to ds is in flight once it has, unless it returns ErrLeft
	// (ds is a LeavingDownstream that asked for the goroutine back): then
	// the attachment goes on without it.
	Serve(ds Downstream, d Delivery) error
	// Start is Serve without the wait, for an adapter whose connection
	// outlives its request (a hijacked WebSocket): it registers the
	// attachment and returns. Delivery goes on in a writer goroutine the
	// session starts when there is something to write and ends soon after
	// there is none, and the heartbeat is a timer, so that an idle
	// attachment costs no goroutine.
	// ds must take writes from any goroutine, one at a time, and its Close
	// must unblock a write. Done is closed when the attachment ends; ds is
	// closed then. An error means it never started, and ds is closed.
	Start(ds Downstream, d Delivery) error
	// Receive feeds one upstream batch to the session. While the session's
	// inbound buffer is full it waits, so that the adapter stops reading
	// and TCP pushes back on the client. A violation closes the session
	// (the close travels downstream) and is returned: the adapter should
	// keep reading, to see the client's acknowledgement of the close,
	// unless Done is closed.
	Receive(batch []byte) error
	// ReceiveBinary feeds one raw binary message (PROTOCOL.md section 4),
	// a binary WebSocket message, to the session, with Receive's rules:
	// sequence numbers, maxMessage counted on the raw payload, waiting
	// while the inbound buffer is full. A malformed header, or binary
	// messages the client did not agree to at negotiate, close the session
	// with 1002. msg may be reused once it returns.
	ReceiveBinary(msg []byte) error
	// Started is closed once Serve or Start has registered the attachment with its
	// session (or refused it). An adapter that reads upstream batches
	// waits for it before calling Receive, so that a probe aimed at this
	// attachment, sent the moment it connects, finds it.
	Started() <-chan struct{}
	// Done is closed when the attachment has ended.
	Done() <-chan struct{}
	// End ends the attachment from the adapter's side, for example when
	// its connection fails while Serve waits for something to write; err
	// says why. It is idempotent.
	End(err error)
	// Fail closes the session for a violation the adapter detected itself,
	// such as a WebSocket message above MaxBatch, and ends the attachment.
	// The close is delivered in sequence on the client's next attachment.
	Fail(code CloseCode, reason string)
}

// WriteError answers a request with a status and the JSON error body of
// PROTOCOL.md section 2. A positive retry adds a Retry-After header, in
// whole seconds rounded up.
func WriteError(w http.ResponseWriter, status int, body ErrorBody, retry time.Duration) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store, no-transform")
	h.Set("X-Content-Type-Options", "nosniff")
	if retry > 0 {
		h.Set("Retry-After", fmt.Sprint(int(math.Ceil(retry.Seconds()))))
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}
