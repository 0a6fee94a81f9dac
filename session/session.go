package session

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/seed-544bbf9f/comet/internal/logid"
	"github.com/seed-544bbf9f/comet/internal/signal"
	"github.com/seed-544bbf9f/comet/internal/sweep"
	"github.com/seed-544bbf9f/comet/internal/window"
	"github.com/seed-544bbf9f/comet/transport"
)

// Errors returned by Session methods, besides *transport.CloseError.
var (
	// ErrWouldBlock is returned by TrySend when the outbound window is full.
	ErrWouldBlock = errors.New("comet: outbound window full")
	// ErrMessageTooBig is returned by Send for a payload above MaxMessage.
	ErrMessageTooBig = transport.ErrMessageTooBig
	// ErrInvalidCloseCode is returned by Close for a code an application
	// may not send (anything but 1000 and 4000–4999).
	ErrInvalidCloseCode = transport.ErrInvalidCloseCode
	// ErrInvalidMessageType is returned by Send for a type other than
	// transport.Text and transport.Binary.
	ErrInvalidMessageType = transport.ErrInvalidMessageType
)

// Session is one client's ordered, lossless conversation, which survives
// the loss and replacement of the transports that carry it.
//
// Send, TrySend, Close, CloseNow and every accessor may be called from any
// goroutine; only one goroutine may call Recv at a time.
type Session struct {
	id     string
	secret string
	h      *Handler
	opts   *Options
	info   RequestInfo
	made   time.Time // when negotiate made it, for the attach latency
	stripe uint32    // its stripe of the handler's striped counters (buffered bytes, traffic)

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed by finish

	mu sync.Mutex

	// Outbound: the window of sent, unacknowledged messages.
	out      window.Window
	outSpace signal.Signal // woken when the window shrinks
	ackAsked *attachment   // where a heartbeat asked for an ack that has not come (askAckLocked)

	// Inbound: messages accepted and not yet returned by Recv.
	in       []inMessage
	inSeq    uint64 // highest upstream sequence number accepted
	inBytes  int
	inReady  signal.Signal // woken when a message arrives
	inSpace  signal.Signal // woken when Recv makes room
	lastRecv uint64        // sequence number of the message Recv last returned
	lastSeen time.Time     // last upstream traffic of any kind
	inTokens float64       // Options.InboundRate's bucket
	inRefill time.Time     // when inTokens was last refilled

	// Reading, for an attachment that hands it to the session (reading.go).
	recvWaiting bool       // a Recv waits for a change
	away        sweep.Mark // on awaySweep's list since Recv last returned

	// Attachments.
	deliverer    *attachment
	attached     map[uint64]*attachment // every live attachment by attempt
	lastAttempt  uint64                 // highest attempt that has delivered
	everAttached bool                   // an attachment, probe or delivering, has been served
	transport    string                 // name of the delivering transport, or last one
	tidx         uint8                  // its index in the handler's counters
	timer        *time.Timer            // grace or first-attach expiry, nil while delivering
	closeTimer   *time.Timer            // forgets a closing session whose client never acknowledges

	tickets tickets

	// dur is the session's part in failover (durable.go); nil without.
	// Set before the session is shared, never changed.
	dur *durable

	// binary: negotiate agreed to raw binary WebSocket messages. Set
	// under mu before the session is shared, never changed.
	binary bool
	// noStatus: negotiate agreed to closes without a code, and to
	// answering a client's close with its reason. Set as binary is.
	noStatus bool
	// brokerCode: the client understands close code 3008. Set as binary is.
	brokerCode bool
	// lostCode: the client understands close code 3009. Set as binary is.
	lostCode bool
	// positions: negotiate agreed to topic positions. Set as binary is.
	positions bool
	// replies: negotiate agreed to messages in POST answers (see
	// replies.go). Set as binary is.
	replies bool
	// replyWaiting counts the POSTs waiting for a reply, during which the
	// delivering attachment leaves messages to them; replyReady wakes
	// them when a message is queued. Guarded by mu.
	replyWaiting int
	replyReady   signal.Signal
	// subs are the topics the session subscribes to. Guarded by mu.
	subs map[string]*topic

	// addrKey is the client's key for the per-address session cap, which
	// counts the session when counted is set (by negotiate). Set under mu.
	addrKey netip.Prefix
	counted bool

	// Closing. closeErr is what Recv and Send return once closed; sentClose
	// is the sequence number of the close we queued, 0 if none.
	closeErr  *transport.CloseError
	sentClose uint64
	recvClose bool // the peer's close was accepted
	finished  bool
}

type inMessage struct {
	typ transport.MessageType
	seq uint64
	p   []byte
}

func newSession(h *Handler, id, secret string, info RequestInfo) *Session {
	s := &Session{
		id:       id,
		secret:   secret,
		h:        h,
		opts:     &h.opts,
		info:     info,
		made:     time.Now(),
		done:     make(chan struct{}),
		out:      window.New(h.opts.WindowMessages, h.opts.WindowBytes),
		attached: make(map[uint64]*attachment),
		lastSeen: time.Now(),
		inTokens: float64(h.opts.InboundBurst),
		stripe:   h.stripe.Add(1),
	}
	s.ctx, s.cancel = context.WithCancel(h.baseCtx)
	h.counters.opened.Add(1)
	h.counters.open[tNone].Add(1)
	// Under the lock: expire reads s.timer on the timer's goroutine, which
	// is not ordered after this assignment otherwise.
	s.mu.Lock()
	s.timer = time.AfterFunc(h.opts.AttachTimeout, s.expire)
	s.mu.Unlock()
	return s
}

// ID returns the session id. It appears in URLs; it is not a credential.
func (s *Session) ID() string { return s.id }

// Request returns the negotiate request's metadata.
func (s *Session) Request() RequestInfo { return s.info }

// Context returns a context that is cancelled when the session closes, by
// either side, or expires.
func (s *Session) Context() context.Context { return s.ctx }

// Done returns a channel closed once the session is finished and forgotten:
// its close delivered and acknowledged, or abandoned.
func (s *Session) Done() <-chan struct{} { return s.done }

// Protocol returns the subprotocol selected at negotiate, or "" if the
// client offered none (see Options.Protocols). It never changes.
func (s *Session) Protocol() string { return s.info.Protocol }

// Transport returns the name of the transport delivering to the client, or
// of the last one if none is attached now; "" before the first attach.
func (s *Session) Transport() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.transport
}

// Recv returns the next message from the client. It blocks until one
// arrives, the session closes, or ctx ends; a cancelled ctx ends only this
// call. Once the session is closed it returns the *transport.CloseError —
// after every message received before a close by the client.
func (s *Session) Recv(ctx context.Context) (transport.MessageType, []byte, error) {
	for {
		s.mu.Lock()
		if d := s.dur; d != nil && d.commit < s.lastRecv {
			// Asking for the next message commits the last.
			d.commit = s.lastRecv
		}
		if len(s.in) > 0 && (s.closeErr == nil || s.closeErr.Remote) {
			m := s.in[0]
			s.in[0] = inMessage{}
			s.in = popFront(s.in)
			s.inBytes -= len(m.p)
			s.lastRecv = m.seq
			s.inSpace.Wake()
			s.recvLeavingLocked()
			s.mu.Unlock()
			return m.typ, m.p, nil
		}
		if s.closeErr != nil {
			err := s.closeErr
			s.recvLeavingLocked()
			s.mu.Unlock()
			return 0, nil, err
		}
		if d := s.dur; d != nil && d.commit > d.wroteCommit {
			// The application waits, done with what it took: the log
			// learns it now rather than with the next write, so that a
			// node taking an idle session over delivers nothing again.
			s.kickLocked()
		}
		if err := ctx.Err(); err != nil {
			s.recvLeavingLocked()
			s.mu.Unlock()
			return 0, nil, err
		}
		a := s.deliverer
		if a != nil && a.rdState == readIdle {
			// Nobody reads the connection: read it here, and a message
			// comes with no hand-off.
			s.readInline(ctx, a)
			s.mu.Unlock()
			continue
		}
		ready := s.inReady.Wait()
		s.recvWaiting = true
		if a != nil && a.rdState == readBackground {
			a.rd.Interrupt() // its goroutine hands the reading back
		}
		s.mu.Unlock()
		select {
		case <-ready:
		case <-ctx.Done():
		}
		s.mu.Lock()
		s.recvWaiting = false
		s.mu.Unlock()
	}
}

// Send queues a message for the client. It returns once the message is in
// the outbound window, which is bounded: when the window is full, Send
// waits for the client's acknowledgements or ctx (a cancelled ctx ends only
// this call), unless Options.CloseSlowConsumers is set. With
// Options.Failover it returns once the session's log keeps the message
// too, so that the client receives it even if this node is lost; if ctx
// ends first, the message may still be delivered. Text must be valid
// UTF-8. The session does not keep p.
func (s *Session) Send(ctx context.Context, typ transport.MessageType, p []byte) error {
	e, err := s.prepare(typ, p)
	if err != nil {
		return err
	}
	return s.sendPrepared(ctx, e, sendWait)
}

// TrySend is Send without waiting for room: when the window is full it
// returns ErrWouldBlock (or, with Options.CloseSlowConsumers, closes the
// session). With Options.Failover it still waits for the log, as Send
// does.
func (s *Session) TrySend(typ transport.MessageType, p []byte) error {
	e, err := s.prepare(typ, p)
	if err != nil {
		return err
	}
	return s.sendPrepared(context.Background(), e, sendTry)
}

// How sendPrepared waits: for room and the log (Send), for the log only
// (TrySend), or for neither (Broadcast).
type sendMode uint8

const (
	sendWait sendMode = iota
	sendTry
	sendOffer
)

// prepare checks a message and makes its window entry: encoded once, or
// for a binary message to a client that agreed to raw binary WebSocket
// messages, a copy as it is. The raw copy is what WebSocket writes, and
// costs a base64 encoding per write only on another transport, where
// such a client is only after a fallback.
func (s *Session) prepare(typ transport.MessageType, p []byte) (window.Entry, error) {
	if err := window.Check(typ, p, s.opts.MaxMessage); err != nil {
		return window.Entry{}, err
	}
	e := window.Entry{Type: typ.FrameType(), Size: len(p)}
	if typ == transport.Binary && s.binary {
		e.Payload, e.Raw = append(make([]byte, 0, len(p)), p...), true
	} else {
		e.Payload = transport.EncodePayload(e.Type, p)
	}
	return e, nil
}

// sendPrepared queues a message entry. It is shared by Send, TrySend and
// Broadcast.
func (s *Session) sendPrepared(ctx context.Context, e window.Entry, mode sendMode) error {
	size := e.Size
	for waited := false; ; waited = true {
		s.mu.Lock()
		if s.closeErr != nil {
			err := s.closeErr
			s.mu.Unlock()
			return err
		}
		if s.out.HasRoom(size) {
			seq := s.pushOut(e)
			s.h.buffered.Add(s.stripe, int64(size))
			if s.out.Ready() < seq {
				// Held for the log, whose write wakes the writers.
				s.mu.Unlock()
				if mode == sendOffer {
					return nil
				}
				return s.awaitKept(ctx, seq)
			}
			s.replyReady.Wake()
			a := s.deliverer
			now := a != nil && s.replyWaiting == 0 && a.wakeNow()
			s.mu.Unlock()
			if now {
				a.writeNow()
			}
			return nil
		}
		if s.opts.CloseSlowConsumers {
			s.closeLocked(transport.CloseSlowConsumer, "outbound window full", 0)
			s.h.counters.slowCloses.Add(1)
			err := s.closeErr
			s.mu.Unlock()
			return err
		}
		a, write := s.deliverer, false
		if a != nil {
			a.keepReadingLocked() // the acks that make room must be read
			write = a.askAckLocked()
		}
		space := s.outSpace.Wait()
		s.mu.Unlock()
		if write {
			a.writeNow()
		}
		if mode != sendWait {
			s.h.counters.sendsSkipped.Add(1)
			return ErrWouldBlock
		}
		if !waited {
			s.h.counters.sendWaits.Add(1)
		}
		select {
		case <-space:
		case <-ctx.Done():
			if !s.isClosed() {
				return ctx.Err()
			}
		}
	}
}

func (s *Session) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeErr != nil
}

// Close closes the session gracefully with an application code (1000 or
// 4000–4999) and a reason, truncated to 123 bytes. The close is queued
// after every message already sent and reaches the client even if it is
// detached now and attaches again within the grace period. Close does not
// wait: Recv and Send return the *transport.CloseError at once, Context is
// cancelled, and Done is closed when the client has acknowledged the close
// or the grace period has passed. Closing a closed session does nothing.
func (s *Session) Close(code transport.CloseCode, reason string) error {
	if !code.ValidForApplication() {
		return fmt.Errorf("%w: %d", ErrInvalidCloseCode, code)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeLocked(code, transport.TruncateReason(reason), 0)
	return nil
}

// CloseNow ends the session at once, without delivering a close to the
// client, and cuts its transports. The client learns of it when it next
// attaches (404) and reports 3000.
func (s *Session) CloseNow() error {
	s.finishWith(transport.CloseNormal, "closed")
	return nil
}

// finishWith forgets the session at once, as finish does, its end the
// close code and reason unless it has one already.
func (s *Session) finishWith(code transport.CloseCode, reason string) {
	s.mu.Lock()
	if s.closeErr == nil {
		s.closeErr = &transport.CloseError{Code: code, Reason: reason}
	}
	s.mu.Unlock()
	s.finish()
}

// closeLocked queues a close frame in sequence, unless one was queued.
func (s *Session) closeLocked(code transport.CloseCode, reason string, retry uint64) {
	if s.sentClose != 0 || s.finished {
		// A finished session delivers nothing more: a close queued now
		// would only hold its memory until a timer forgot it again.
		return
	}
	ce := &transport.CloseError{Code: code, Reason: reason, Retry: retry}
	s.sentClose = s.pushOut(window.Entry{Type: transport.TypeClose, Close: ce})
	s.replyReady.Wake()
	if s.closeErr == nil {
		s.closeErr = ce
	}
	if s.closeTimer == nil {
		s.closeTimer = time.AfterFunc(s.opts.Grace, s.finish)
	}
	s.cancel()
	s.outSpace.Wake()
	s.inReady.Wake()
	if a := s.deliverer; a != nil && a.rdState == readInline {
		a.rd.Interrupt() // Recv returns the close at once
	}
	// A Receive waiting for room accepts and discards from now on; it is
	// the reader that must see the client's ack of this close.
	s.inSpace.Wake()
	if a := s.deliverer; a != nil {
		a.wake()
	}
	s.h.logger.Debug("comet: session closing", "session", logid.Short(s.id), "code", int(code), "reason", reason)
}

// expire ends a session whose client has been away too long (the grace
// period, or the first-attach timeout). It runs on the timer's goroutine.
func (s *Session) expire() {
	s.mu.Lock()
	if s.finished || s.deliverer != nil {
		s.mu.Unlock()
		return
	}
	if s.closeErr == nil {
		s.closeErr = &transport.CloseError{Code: transport.CloseSessionExpired, Reason: "client did not return within the grace period"}
	}
	s.mu.Unlock()
	s.finish()
}

// finish forgets the session: it cancels its context, ends every
// attachment, removes it from the registry and reports it closed. It is
// idempotent.
func (s *Session) finish() {
	s.mu.Lock()
	if s.finished {
		s.mu.Unlock()
		return
	}
	s.finished = true
	s.cancel()
	for _, t := range []*time.Timer{s.timer, s.closeTimer} {
		if t != nil {
			t.Stop()
		}
	}
	s.timer, s.closeTimer = nil, nil
	attached := make([]*attachment, 0, len(s.attached))
	for _, a := range s.attached {
		attached = append(attached, a)
	}
	s.deliverer = nil
	// Nothing will be delivered or resent: the window's memory goes now,
	// not when the application lets go of the Session. Received messages
	// stay for Recv only after a close by the client, which Recv still
	// owes them (see Recv).
	s.h.buffered.Add(s.stripe, -int64(s.out.Drop()))
	if s.closeErr == nil || !s.closeErr.Remote {
		clear(s.in)
		s.in, s.inBytes = nil, 0
	}
	s.tickets = tickets{}
	s.inReady.Wake()
	s.inSpace.Wake()
	s.outSpace.Wake()
	s.replyReady.Wake() // a POST waiting for a reply answers now
	ce := s.closeErr
	counted, key := s.counted, s.addrKey
	s.h.counters.open[s.tidx].Add(-1)
	forget := s.dur != nil && !s.dur.fenced
	if s.dur != nil {
		s.dur.kept.Wake()
	}
	s.mu.Unlock()

	code := transport.CloseCode(0)
	if ce != nil {
		code = ce.Code
	}
	s.h.counters.closed.add(code)

	for _, a := range attached {
		a.end(nil)
	}
	if forget {
		// The session has ended: its log goes too, unless another node
		// owns it now. It goes first, for a request that no longer finds
		// the session here would take it over from its log.
		s.h.forgetLog(s.id, s.dur)
	}
	s.h.sessions.remove(s.id)
	s.unsubscribeAll()
	if counted {
		s.h.limits.removeSession(key)
	}
	close(s.done)
	s.h.sessionFinished()
	if f := s.h.opts.Observer.SessionClosed; f != nil {
		f(s, ce)
	}
}

// popFront drops q's first element, already taken. A queue left empty
// keeps its slot, so that one taking a message at a time, as request and
// reply do, appends into the same memory every time.
func popFront[T any](q []T) []T {
	if len(q) == 1 {
		return q[:0]
	}
	return q[1:]
}
