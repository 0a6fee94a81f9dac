package client

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet/internal/signal"
	"github.com/seed-544bbf9f/comet/internal/sweep"
	"github.com/seed-544bbf9f/comet/internal/window"
	"github.com/seed-544bbf9f/comet/transport"
)

// Conn is a client session. It outlives the transports that carry it: when
// one drops, the Conn attaches again and resumes where it was. Its methods
// follow the contract in the package documentation.
type Conn struct {
	opts     Options
	log      *slog.Logger
	http     *http.Client
	idle     *http.Transport // the transport Dial built, if any, closed at the end
	wsDialer websocket.Dialer

	base *url.URL // the mount URL, after negotiate redirects
	// positions are the topics' positions, guarded by mu (see Positions).
	positions map[string]transport.TopicPosition
	sid       string
	secret    string
	// binary: negotiate agreed to raw binary WebSocket messages.
	binary bool
	// noStatus: negotiate agreed to closes without a code (1005).
	noStatus bool
	// replies: negotiate agreed to messages in POST answers. Set with the
	// session (newConn, resetLocked), before any attachment reads it.
	replies  bool
	protocol string // the subprotocol selected at negotiate, or ""
	lim      limits
	order    []string // transports to try, best first
	// first is the attachment an upgrade that negotiated began, for run
	// to serve before anything else; nil when Dial negotiated apart.
	first attachment

	ctx      context.Context // the session's lifetime
	cancel   context.CancelFunc
	done     chan struct{} // closed when everything has stopped
	postSlot chan struct{} // one POST in flight

	mu      sync.Mutex
	changed signal.Signal // every change of the fields below
	// control is woken with changed, except by a downstream batch of
	// messages and acks only, which gives the writers (the WebSocket
	// writer, the POST sender) nothing to do until an ack is due, and
	// changes nothing the upgrade loop waits for: they wait on it, and
	// ackAlarm wakes the writers when an ack falls due (see receive).
	control      signal.Signal
	ackAlarm     *time.Timer     // wakes the writers when an ack falls due; nil until needed
	ackAlarmAt   time.Time       // when ackAlarm fires; zero when it is not set
	promptWS     *wsAttachment   // a WebSocket being served whose writes never wait: Send writes on it itself
	reading      *wsAttachment   // a WebSocket being served that Recv may read (reading.go)
	recvWaiting  int             // RecvMessage calls waiting for a change
	recvDone     <-chan struct{} // the Done of the ctx whose end interrupts a Recv reading (watchRecvLocked)
	recvUnwatch  func() bool     // removes that watch
	away         sweep.Mark      // on awaySweep's list since Recv last returned
	out          window.Window   // our messages not yet acknowledged
	in           inbound
	tickets      ticketPool
	attempt      uint64
	postAttempt  uint64          // the attempt of the poll or stream a POST names (PROTOCOL.md section 6)
	current      string          // the transport in use, or last used
	buffered     map[string]bool // transports found buffered on the way, skipped from then on
	judge        judgement       // what the drops so far say about the network
	up           upgradeState    // the background return to WebSocket
	renewal      renewal         // Options.Reconnect's fresh sessions
	pollHold     time.Duration   // the hold of the last poll's open frame
	lastPost     time.Time       // when the server last answered a POST
	closeErr     *transport.CloseError
	closeSeq     uint64 // sequence number of our close frame, 0 if none
	closeWritten bool   // our close frame reached the server's side
	remoteClosed bool   // the server's close frame was accepted
	violated     bool   // our close reports the server's protocol error
	abrupt       bool   // CloseNow: no goodbye on the wire
	closeTimer   *time.Timer
	timedOut     bool // the close was cut short by Options.CloseTimeout
}

// limits are the session's parameters, from the negotiate response.
type limits struct {
	heartbeat, minHeartbeat, hold, grace time.Duration
	ackDelay, attachTimeout              time.Duration
	requestTimeout                       time.Duration // bounds a POST
	maxMessage, maxBatch                 int
	windowMessages                       int // the server's outbound window
	ack                                  ackPolicy
	hb                                   uint64 // Options.Heartbeat in ms, 0 for the server's
}

func newLimits(n *transport.NegotiateResponse, rtt time.Duration, asked time.Duration) limits {
	l := limits{
		heartbeat:      millis(n.Heartbeat, 25*time.Second),
		minHeartbeat:   millis(n.MinHeartbeat, time.Second),
		hold:           millis(n.Hold, 25*time.Second),
		grace:          millis(n.Grace, 30*time.Second),
		ackDelay:       millis(n.AckDelay, 200*time.Millisecond),
		maxMessage:     n.MaxMessage,
		maxBatch:       n.MaxBatch,
		windowMessages: n.WindowMessages,
		hb:             uint64(max(asked, 0).Milliseconds()),
	}
	l.attachTimeout = attachTimeout(rtt, millis(n.MinTimeout, 300*time.Millisecond), millis(n.MaxTimeout, 10*time.Second))
	l.requestTimeout = max(l.heartbeat, l.hold) + l.attachTimeout
	l.ack = newAckPolicy(n.WindowMessages, n.WindowBytes, l.ackDelay)
	if la := n.LazyAcks; la != nil {
		// Held at most one heartbeat interval, so that a client that only
		// listens is heard from before the server takes its silence for a
		// dead peer (two intervals; PROTOCOL.md section 7). Each Conn holds
		// its acks for a part of that drawn once, between half and all of
		// it: the clients of a broadcast all start holding when it arrives,
		// and with one delay their acks would all reach the server at
		// once, amid a later broadcast, rather than spread over half the
		// delay.
		interval := l.heartbeat
		if asked > 0 {
			interval = min(interval, max(asked, l.minHeartbeat))
		}
		l.ack = ackPolicy{messages: min(l.ack.messages, la.Messages), bytes: min(l.ack.bytes, la.Bytes),
			delay: equalJitter(min(millis(la.Delay, l.ackDelay), interval), rand.Float64()), lazy: true}
	}
	return l
}

// millis converts a negotiate duration, def if the server left it out.
func millis(ms int, def time.Duration) time.Duration {
	if ms <= 0 {
		return def
	}
	return time.Duration(ms) * time.Millisecond
}

// Recv returns the next message from the server. It blocks until one
// arrives, the session ends, or ctx ends; a cancelled ctx ends only this
// call. Once the session has ended, Recv returns every message received
// before the end, then the *comet.CloseError (Remote set if the server
// closed). The returned slice is the caller's. With Options.Reconnect, a
// lost session is followed by a *GapError, once, where the fresh session
// begins; Recv goes on with the fresh session's messages.
func (c *Conn) Recv(ctx context.Context) (transport.MessageType, []byte, error) {
	m, err := c.RecvMessage(ctx)
	return m.Type, m.Data, err
}

// RecvMessage is Recv, with the topic each message came from (see
// Message), and the same errors.
func (c *Conn) RecvMessage(ctx context.Context) (Message, error) {
	for {
		c.mu.Lock()
		if len(c.in.queue) > 0 {
			m := c.in.queue[0]
			c.in.queue[0] = inMsg{}
			if len(c.in.queue) == 1 {
				// Left empty, it keeps its slot: a message at a time
				// reuses the same memory.
				c.in.queue = c.in.queue[:0]
			} else {
				c.in.queue = c.in.queue[1:]
			}
			if len(c.in.queue)+1 >= c.opts.ReceiveBuffer {
				c.wakeLocked() // room again: reading resumes
			}
			c.recvLeavingLocked()
			c.mu.Unlock()
			if m.err != nil {
				return Message{}, m.err
			}
			return Message{Type: m.typ, Data: m.p, Topic: m.topic}, nil
		}
		if c.closeErr != nil && !c.willRenewLocked() {
			err := c.closeErr
			c.recvLeavingLocked()
			c.mu.Unlock()
			return Message{}, err
		}
		if err := ctx.Err(); err != nil {
			c.recvLeavingLocked()
			c.mu.Unlock()
			return Message{}, err
		}
		w := c.reading
		if w != nil && w.rdState == readIdle {
			// Nobody reads the WebSocket: read it here, and a message
			// comes with no hand-off.
			c.readInline(ctx, w)
			c.mu.Unlock()
			continue
		}
		ch := c.changed.Wait()
		c.recvWaiting++
		if w != nil && w.rdState == readBackground {
			w.wait.Interrupt() // its goroutine hands the reading back
		}
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		c.mu.Lock()
		c.recvWaiting--
		c.mu.Unlock()
	}
}

// Send queues a message for the server and returns once it is in the
// outbound window; it is delivered in order, across drops, unless the
// session ends first. When the window is full Send waits for the server's
// acknowledgements or ctx; a cancelled ctx ends only this call. Text must
// be valid UTF-8 (otherwise the error wraps comet.ErrInvalidUTF8) and
// no message may exceed the server's maxMessage (ErrMessageTooBig); neither
// is sent. Once the session is closing or ended, Send returns the
// *comet.CloseError. With Options.Reconnect, Send waits while a fresh
// session replaces a lost one. The Conn does not keep p.
func (c *Conn) Send(ctx context.Context, typ transport.MessageType, p []byte) error {
	if err := window.Check(typ, p, c.maxMessage()); err != nil {
		return err
	}
	e := window.Entry{Type: typ.FrameType(), Size: len(p)}
	if typ == transport.Binary && c.binary {
		// Kept as it is: WebSocket sends it raw, the POST transports
		// encode it as they write it.
		e.Payload, e.Raw = append(make([]byte, 0, len(p)), p...), true
	} else {
		e.Payload = transport.EncodePayload(e.Type, p)
	}
	var closed error
	var now *wsAttachment // the WebSocket Send writes on itself
	err := c.waitUntil(ctx, func() bool {
		switch {
		case c.willRenewLocked():
			return false
		case c.closeErr != nil:
			closed = c.closeErr
		case c.out.HasRoom(len(p)):
			c.out.Push(e)
			if w := c.promptWS; w != nil && w.claimLocked() {
				now = w
				c.changed.Wake()
			} else {
				c.wakeLocked()
			}
		default:
			c.keepReadingLocked() // the acks that make room must be read
			return false
		}
		return true
	})
	if now != nil {
		now.writeNow()
	}
	if err != nil {
		return err
	}
	return closed
}

// Close ends the session gracefully with an application code (1000 or
// 4000–4999) and a reason, truncated to 123 bytes
// (transport.MaxReasonBytes), or without a code: comet.CloseNoStatus
// (1005) and an empty reason, as the browser's close() with no argument.
// Any other code, or a reason with CloseNoStatus, returns
// ErrInvalidCloseCode and nothing happens. A close without a code
// travels as 1005 where the server agreed at negotiate (PROTOCOL.md
// section 10), and as 1000 to a server that did not; Recv and Send report
// 1005 either way. The close is
// sent in sequence, after every message Send has queued, and Close waits
// at most Options.CloseTimeout (default 5 s) for the server's answering
// close, then ends the session either way and returns an error if the
// answer did not come. Recv and Send return the *comet.CloseError at once
// (Recv after the messages already received; later ones are acknowledged
// and dropped). Close is idempotent: once the session is ending or ended,
// it waits for the end and returns nil.
func (c *Conn) Close(code transport.CloseCode, reason string) error {
	switch {
	case code == transport.CloseNoStatus && reason != "":
		return fmt.Errorf("%w: a close without a code (1005) carries no reason", ErrInvalidCloseCode)
	case code != transport.CloseNoStatus && !code.ValidForApplication():
		return fmt.Errorf("%w: %d", ErrInvalidCloseCode, int(code))
	}
	c.mu.Lock()
	if c.willRenewLocked() {
		// The session is lost and no fresh one carries the close: the
		// Conn ends here.
		c.closeErr = &transport.CloseError{Code: code, Reason: transport.TruncateReason(reason)}
		c.stopRenewalLocked()
		c.endLocked()
	}
	first := c.closeErr == nil
	if first {
		reason = transport.TruncateReason(reason)
		c.closeErr = &transport.CloseError{Code: code, Reason: reason}
		c.in.discard = true
		c.recvCalledAwayLocked()
		sent := code
		if code == transport.CloseNoStatus && !c.noStatus {
			sent = transport.CloseNormal
		}
		c.queueCloseLocked(sent, reason)
	}
	c.mu.Unlock()
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	if first && c.timedOut {
		return fmt.Errorf("%w within %v", errCloseTimeout, c.opts.CloseTimeout)
	}
	return nil
}

// CloseNow ends the session at once, without a close on the wire, and
// returns when every goroutine of the Conn has stopped. The server keeps
// the session for its grace period and then expires it. Recv and Send
// return a *comet.CloseError with code 1001 (going away) unless the
// session had ended already. It always returns nil.
func (c *Conn) CloseNow() error {
	c.mu.Lock()
	if c.closeErr == nil || c.willRenewLocked() {
		c.closeErr = &transport.CloseError{Code: transport.CloseGoingAway, Reason: "closed by the client"}
		c.in.discard = true
		c.abrupt = true
		c.recvCalledAwayLocked()
	}
	c.stopRenewalLocked()
	c.endLocked()
	c.mu.Unlock()
	<-c.done
	return nil
}

// Transport returns the name of the transport in use, or of the last one
// while the Conn attaches again.
func (c *Conn) Transport() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.current
}

// Protocol returns the subprotocol the server selected among
// Options.Protocols, or "" if the client offered none. It never changes.
func (c *Conn) Protocol() string { return c.protocol }

// SessionID returns the session id. It names the session in URLs and logs;
// it is not a credential. With Options.Reconnect it changes when a fresh
// session replaces a lost one.
func (c *Conn) SessionID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sid
}

// Done returns a channel that is closed when the session has ended and
// every goroutine of the Conn has stopped.
func (c *Conn) Done() <-chan struct{} { return c.done }

// queueCloseLocked queues our close frame in sequence and bounds the
// closing handshake by Options.CloseTimeout.
func (c *Conn) queueCloseLocked(code transport.CloseCode, reason string) {
	c.closeSeq = c.out.Push(window.Entry{Type: transport.TypeClose, Close: &transport.CloseError{Code: code, Reason: reason}})
	if c.closeTimer == nil {
		ctx := c.ctx // the session's: a fresh one is not this close's
		c.closeTimer = time.AfterFunc(c.opts.CloseTimeout, func() { c.closeExpired(ctx) })
	}
	c.wakeLocked()
}

// peerClosedLocked accepts the server's close frame f: the session's end,
// after every message before it. A close we did not start is answered with
// the same code (PROTOCOL.md section 10); either way it is acknowledged at
// once, and then the session ends.
func (c *Conn) peerClosedLocked(f *transport.Frame) {
	c.remoteClosed = true
	c.in.ackNow = true
	if c.closeSeq == 0 {
		if c.closeErr == nil {
			c.closeErr = &transport.CloseError{Code: transport.CloseCode(f.Code), Reason: f.Reason, Retry: f.Retry, Remote: true}
		}
		c.queueCloseLocked(transport.CloseCode(f.Code), "")
	}
	c.log.Debug("comet: server closed the session", "code", f.Code, "reason", f.Reason)
	c.checkFinishedLocked()
}

// failLocked closes the session for the server's protocol violation. The
// close is sent in sequence like any other, but the session ends as soon
// as it is written: an answer from a broken peer is not worth waiting for.
func (c *Conn) failLocked(code transport.CloseCode, reason string) {
	if c.closeErr != nil {
		return
	}
	reason = transport.TruncateReason(reason)
	c.log.Warn("comet: closing the session on a protocol error", "code", int(code), "reason", reason)
	c.closeErr = &transport.CloseError{Code: code, Reason: reason}
	c.violated = true
	c.in.discard = true
	c.recvCalledAwayLocked()
	c.queueCloseLocked(code, reason)
}

// wroteLocked records that an upstream batch ending with sequence number
// last reached the server's side.
func (c *Conn) wroteLocked(last uint64) {
	if c.closeSeq != 0 && last >= c.closeSeq {
		c.closeWritten = true
	}
	c.checkFinishedLocked()
}

// checkFinishedLocked ends the session once its closing handshake is done:
// our close written and, unless it reports a violation, the server's close
// received and acknowledged.
func (c *Conn) checkFinishedLocked() {
	if c.closeSeq == 0 || !c.closeWritten {
		return
	}
	if c.violated || c.remoteClosed && c.in.acked >= c.in.n {
		c.endLocked()
	}
}

// closeExpired ends a closing handshake of the session of ctx that took
// longer than Options.CloseTimeout.
func (c *Conn) closeExpired(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ctx.Err() == nil {
		c.timedOut = true
		c.log.Info("comet: the close handshake timed out", "after", c.opts.CloseTimeout)
		c.endLocked()
	}
}

// wakeLocked wakes every waiter: the application's calls, the readers
// and the writers.
func (c *Conn) wakeLocked() {
	c.changed.Wake()
	c.control.Wake()
}

// endLocked ends the session with closeErr, which must be set: it stops
// every goroutine, and the supervisor then closes Done.
func (c *Conn) endLocked() {
	c.cancel()
	c.wakeLocked()
	c.recvCalledAwayLocked()
}

// endWith ends the session with ce unless it has ended already.
func (c *Conn) endWith(ce *transport.CloseError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeErr == nil {
		c.closeErr = ce
	}
	c.endLocked()
}

// waitUntil blocks until cond, evaluated with the mutex held, is true or
// ctx ends.
func (c *Conn) waitUntil(ctx context.Context, cond func() bool) error {
	return c.waitOn(ctx, &c.changed, cond)
}

// waitOn is waitUntil woken by sig, for a cond that only changes when
// sig is woken.
func (c *Conn) waitOn(ctx context.Context, sig *signal.Signal, cond func() bool) error {
	for {
		c.mu.Lock()
		if cond() {
			c.mu.Unlock()
			return nil
		}
		ch := sig.Wait()
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
