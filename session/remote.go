package session

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// remoteAttachment is the front's side of a link: the transport.Attachment
// an adapter serves for a session another node owns. Its downstream is
// written by the batches the owner sends, its upstream is sent to the
// owner, and the owner's attachment decides everything else.
type remoteAttachment struct {
	c      *cluster
	node   string // the owner
	link   uint64
	params transport.AttachParams
	limits transport.Limits
	// silence ends a link the owner has not written to for longer than
	// any heartbeat or hold: its end, or the owner, was lost.
	silence time.Duration

	ctx       context.Context // ends with the link; bounds its calls
	cancel    context.CancelFunc
	startedCh chan struct{}
	doneCh    chan struct{}
	once      sync.Once

	wmu sync.Mutex // held across a write: none is in flight once end has had it
	// started: the owner started its attachment at open (serveNow), and
	// Start only hands the downstream over; dsReady is closed once it has.
	started bool
	dsReady chan struct{}

	mu       sync.Mutex
	ds       transport.Downstream
	err      error
	ended    bool
	watchdog *time.Timer
}

var _ transport.Attachment = (*remoteAttachment)(nil)

// forward serves an attach request for a session another node owns: it
// opens a link to the owner, which checks the ticket, then hands the
// adapter the link's attachment; or it answers the request with why it
// cannot. With failover and retry set, an owner gone before the link was
// made is left for the caller to look for again: forward reports whether
// it answered the request.
func (c *cluster) forward(w http.ResponseWriter, r *http.Request, adapter transport.Adapter, owner string, params transport.AttachParams, retry bool) bool {
	o := &c.h.opts
	ra := &remoteAttachment{c: c, node: owner, link: c.nextID.Add(1), params: params,
		limits: transport.Limits{MaxBatch: o.MaxBatch, WriteTimeout: o.WriteTimeout, PollRelease: o.PollRelease,
			DeflateLevel: o.Compression.DeflateLevel()},
		silence:   2*max(o.Heartbeat, o.Hold) + o.WriteTimeout + o.BrokerTimeout,
		startedCh: make(chan struct{}), doneCh: make(chan struct{}), dsReady: make(chan struct{})}
	// Not the handler's context: a node that has shut down its own
	// sessions still forwards requests for others' while its server runs,
	// as a cluster shutting down node by node needs. Every call is bounded.
	ra.ctx, ra.cancel = context.WithCancel(context.Background())
	c.mu.Lock()
	c.front[ra.link] = ra
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(ra.ctx, o.BrokerTimeout)
	defer cancel()
	open := &envelope{kind: kindOpen, link: ra.link, a: params.Session, b: adapter.Name(), data: []byte(r.URL.RawQuery)}
	if adapter.Name() != transport.WebSocket {
		// An HTTP transport's delivery follows from its name, and it has
		// no raw messages: the owner starts the attachment at once.
		open.num = serveNow | uint64(transport.Stream)
		if adapter.Name() == transport.LongPoll {
			open.num = serveNow | uint64(transport.Poll)
		}
		ra.started = true
	}
	reply, err := c.call(ctx, owner, open)
	if err != nil {
		ra.drop()
		if retry && c.store != nil && errors.Is(err, errNodeGone) {
			return false
		}
		c.h.writeCallError(w, err)
		return true
	}
	if reply.num != 0 {
		ra.drop()
		writeReply(w, reply)
		return true
	}
	w.Header().Set("Cache-Control", "no-store, no-transform")
	adapter.ServeAttach(w, r, ra)
	// An adapter that answered without starting the attachment (a failed
	// upgrade) leaves it to be ended here; End is idempotent.
	select {
	case <-ra.startedCh:
	default:
		ra.End(errors.New("comet: attachment never started"))
	}
	return true
}

// writeCallError answers a request whose call to the owner failed: the
// owner is gone (404, as for a session that expired there), or the broker
// is unavailable (503, try again in a second).
func (h *Handler) writeCallError(w http.ResponseWriter, err error) {
	if errors.Is(err, errNodeGone) {
		writeError(w, http.StatusNotFound, notFound)
		return
	}
	transport.WriteError(w, http.StatusServiceUnavailable,
		errorBody(transport.CodeBrokerUnavailable, "the session's node could not be reached: %v", err), time.Second)
}

// writeReply answers a request with the owner's refusal.
func writeReply(w http.ResponseWriter, reply *envelope) {
	if reply.num < 400 || reply.num > 599 {
		// Not a refusal of this release's owner: a malformed reply.
		writeError(w, http.StatusBadGateway, errorBody(transport.CodeInternalError, "the session's node answered %d", reply.num))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store, no-transform")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(int(reply.num))
	w.Write(reply.data)
}

// drop forgets a link that never reached its adapter.
func (ra *remoteAttachment) drop() {
	ra.once.Do(func() {
		ra.mu.Lock()
		ra.ended = true
		ra.mu.Unlock()
		ra.c.mu.Lock()
		delete(ra.c.front, ra.link)
		ra.c.mu.Unlock()
		ra.cancel()
		close(ra.doneCh)
		close(ra.startedCh)
	})
}

// Params implements transport.Attachment.
func (ra *remoteAttachment) Params() transport.AttachParams { return ra.params }

// Limits implements transport.Attachment: this node's, which a cluster's
// nodes share.
func (ra *remoteAttachment) Limits() transport.Limits { return ra.limits }

// Started implements transport.Attachment.
func (ra *remoteAttachment) Started() <-chan struct{} { return ra.startedCh }

// Done implements transport.Attachment.
func (ra *remoteAttachment) Done() <-chan struct{} { return ra.doneCh }

// Serve implements transport.Attachment: Start, then wait for the end,
// or for a LeavingDownstream to ask for the goroutine back (the owner's
// writes arrive on goroutines of their own anyway).
func (ra *remoteAttachment) Serve(ds transport.Downstream, d transport.Delivery) error {
	if err := ra.Start(ds, d); err != nil {
		return err
	}
	var leave <-chan struct{}
	if ld, ok := ds.(transport.LeavingDownstream); ok {
		leave = ld.Leave()
	}
	select {
	case <-ra.doneCh:
	case <-leave:
		return transport.ErrLeft
	}
	// end has closed ds and waited for a write in flight.
	ra.mu.Lock()
	defer ra.mu.Unlock()
	return ra.err
}

// Start implements transport.Attachment: the owner starts its attachment
// with a downstream that writes here.
func (ra *remoteAttachment) Start(ds transport.Downstream, d transport.Delivery) error {
	defer func() {
		select {
		case <-ra.startedCh:
		default:
			close(ra.startedCh)
		}
	}()
	ra.mu.Lock()
	if ra.ended {
		ra.mu.Unlock()
		ds.Close()
		return ra.err
	}
	ra.ds = ds
	ra.watchdog = time.AfterFunc(ra.silence, func() { ra.End(errors.New("comet: the session's node went silent")) })
	ra.mu.Unlock()
	close(ra.dsReady)
	if ra.started {
		return nil // the owner started at open
	}
	num := uint64(d)
	if rd, ok := ds.(transport.RawDownstream); ok && rd.WritesRaw() {
		num |= 2
	}
	ctx, cancel := context.WithTimeout(ra.ctx, ra.c.h.opts.BrokerTimeout)
	defer cancel()
	reply, err := ra.c.call(ctx, ra.node, &envelope{kind: kindServe, link: ra.link, num: num})
	if err == nil && reply.num != replyOK {
		err = errors.New(reply.a)
	}
	if err != nil {
		ra.end(err)
		return err
	}
	return nil
}

// write writes a batch from the owner. A write that fails, or ends the
// downstream by design, ends the link here too.
func (ra *remoteAttachment) write(b *transport.Batch) error {
	// An attachment the owner started at open may write before the
	// adapter has handed over its downstream.
	select {
	case <-ra.dsReady:
	case <-ra.doneCh:
		return errNoLink
	}
	ra.wmu.Lock()
	ra.mu.Lock()
	ds := ra.ds
	if ra.ended || ds == nil {
		ra.mu.Unlock()
		ra.wmu.Unlock()
		return errNoLink
	}
	ra.watchdog.Reset(ra.silence)
	ra.mu.Unlock()
	err := ds.WriteBatch(b)
	ra.wmu.Unlock()
	if err != nil {
		if errors.Is(err, transport.ErrDone) {
			ra.end(nil)
		} else {
			ra.end(err)
		}
	}
	return err
}

// Receive implements transport.Attachment: the batch goes to the owner,
// whose attachment takes it; its answer comes back, and with it the
// owner's backpressure.
func (ra *remoteAttachment) Receive(batch []byte) error { return ra.receive(batch, 0) }

// ReceiveBinary implements transport.Attachment.
func (ra *remoteAttachment) ReceiveBinary(msg []byte) error { return ra.receive(msg, 1) }

func (ra *remoteAttachment) receive(p []byte, binary uint64) error {
	reply, err := ra.c.call(ra.ctx, ra.node, &envelope{kind: kindRecv, link: ra.link, num: binary, data: p})
	if err != nil {
		ra.End(err)
		return err
	}
	if reply.num != replyOK {
		return errors.New(reply.a)
	}
	return nil
}

// End implements transport.Attachment.
func (ra *remoteAttachment) End(err error) {
	if ra.end(err) {
		go ra.c.send(ra.node, &envelope{kind: kindEndUp, link: ra.link, a: errorString(err)})
	}
}

// Fail implements transport.Attachment: the owner closes the session.
func (ra *remoteAttachment) Fail(code transport.CloseCode, reason string) {
	ra.c.send(ra.node, &envelope{kind: kindFail, link: ra.link, num: uint64(code), a: reason})
	ra.end(errors.New("comet: " + reason))
}

// end ends the link on this side: its downstream closes and its calls
// end. It reports whether this call ended it.
func (ra *remoteAttachment) end(err error) bool {
	ended := false
	ra.once.Do(func() {
		ended = true
		ra.cancel()
		ra.c.mu.Lock()
		delete(ra.c.front, ra.link)
		ra.c.mu.Unlock()
		ra.mu.Lock()
		ra.ended, ra.err = true, err
		ds := ra.ds
		if ra.watchdog != nil {
			ra.watchdog.Stop()
		}
		ra.mu.Unlock()
		if ds != nil {
			ds.Close() // unblocks a write in flight
		}
		ra.wmu.Lock() // waits for it
		ra.wmu.Unlock()
		close(ra.doneCh)
	})
	return ended
}

// batch writes a batch the owner sent on a link to the front's client.
func (c *cluster) batch(e *envelope) *envelope {
	c.mu.Lock()
	ra := c.front[e.link]
	c.mu.Unlock()
	if ra == nil || ra.node != e.from {
		return &envelope{num: replyError, a: errNoLink.Error()}
	}
	err := ra.write(&transport.Batch{Bytes: e.data, Frames: e.spans, Raw: e.num == 1})
	switch {
	case err == nil:
		return &envelope{}
	case errors.Is(err, transport.ErrDone):
		return &envelope{num: replyDone}
	}
	return &envelope{num: replyError, a: errorString(err)}
}
