package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"

	"github.com/seed-544bbf9f/comet/internal/logid"
	"github.com/seed-544bbf9f/comet/internal/window"
	"github.com/seed-544bbf9f/comet/transport"
)

// maxRenewals bounds the negotiates and attaches in a row that Reconnect
// tries for one lost session; at the backoff's cap of 30 s that is about
// fifty minutes.
const maxRenewals = 100

// GapError is what Recv returns, once and in sequence, when
// Options.Reconnect has replaced a lost session with a fresh one: every
// message before it came from the old session, every one after it from
// the fresh one. It is not the end of the Conn; keep calling Recv.
type GapError struct {
	// Close is how the old session ended.
	Close *transport.CloseError
	// Dropped counts the messages Send had queued that the old session
	// never acknowledged: the server's application may or may not have
	// received them, and they are not sent again. Messages the server
	// sent that Recv had not yet returned are not lost: they came before
	// the gap.
	Dropped int
	// SessionID is the fresh session's id.
	SessionID string
}

func (e *GapError) Error() string {
	return fmt.Sprintf("comet: session lost with %d (%s), replaced by a fresh one; %d sent messages dropped",
		int(e.Close.Code), e.Close.Reason, e.Dropped)
}

// renewal is the state of Options.Reconnect, guarded by the Conn's mutex.
type renewal struct {
	mount   *url.URL                   // the mount URL given to Dial, before any redirect
	request transport.NegotiateRequest // the negotiate body Dial sent
	active  bool                       // a fresh session is being opened
	stopped bool                       // the application closed the Conn: no more fresh sessions
	cancel  context.CancelFunc         // ends the renewal's waits and negotiates
	gap     *GapError                  // what the fresh session's first attach reports, once
}

// renewable reports whether a session that ended with code may be replaced
// by a fresh one (PROTOCOL.md section 10, "reconnect"): an internal error,
// an expired session, a server shutdown, a slow consumer, an unreachable
// or overloaded server.
func renewable(code transport.CloseCode) bool {
	switch code {
	case transport.CloseInternalError, transport.CloseSessionExpired, transport.CloseServerShutdown,
		transport.CloseSlowConsumer, transport.CloseUnreachable, transport.CloseOverloaded:
		return true
	}
	return false
}

// willRenewLocked reports whether the session's end is not the Conn's: a
// fresh session is being opened, or will be.
func (c *Conn) willRenewLocked() bool {
	if c.renewal.stopped || !c.opts.Reconnect {
		return false
	}
	return c.renewal.active || c.closeErr != nil && renewable(c.closeErr.Code)
}

// stopRenewalLocked stops Reconnect for good: the application closed the
// Conn.
func (c *Conn) stopRenewalLocked() {
	c.renewal.stopped = true
	c.renewal.active = false
	if c.renewal.cancel != nil {
		c.renewal.cancel()
	}
	c.wakeLocked()
}

// maxMessage returns the largest message the server accepts.
func (c *Conn) maxMessage() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lim.maxMessage
}

// renew opens a fresh session after the session ended with a renewable
// close, if Options.Reconnect asks for it, and returns its first
// attachment, or nil when the Conn ends. It waits before each try, at
// least the server's retry hint, with capped, jittered backoff, and gives
// up after maxRenewals tries.
func (c *Conn) renew() attachment {
	c.mu.Lock()
	if !c.willRenewLocked() {
		c.mu.Unlock()
		return nil
	}
	ended := c.closeErr
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.renewal.active, c.renewal.cancel = true, cancel
	dropped := c.out.Len()
	if c.closeSeq > c.out.Acked() {
		dropped-- // our close, not a message
	}
	c.renewal.gap = &GapError{Close: ended, Dropped: dropped}
	c.mu.Unlock()
	c.log.Info("comet: session lost: opening a fresh one", "close", ended)

	for try := 0; try < maxRenewals; try++ {
		wait := backoffBetween(try, rand.Float64(), renewBase, renewMax)
		if try == 0 {
			wait = max(wait, time.Duration(ended.Retry)*time.Millisecond)
		}
		if !sleep(ctx, wait) {
			return nil
		}
		a, err := c.openFresh(ctx)
		if err == nil {
			return a
		}
		if ctx.Err() != nil {
			return nil
		}
		c.log.Info("comet: fresh session failed", "err", err)
		if ce := refusedFresh(err); ce != nil {
			c.mu.Lock()
			c.closeErr = ce
			c.mu.Unlock()
		}
		c.mu.Lock()
		final := !renewable(c.closeErr.Code)
		c.mu.Unlock()
		if final {
			break
		}
	}
	c.mu.Lock()
	c.renewal.active = false
	c.renewal.stopped = true // Recv now reports the close
	c.wakeLocked()
	c.mu.Unlock()
	return nil
}

// errOtherTerms is a fresh session negotiated on other terms than the
// Conn's: another subprotocol, or binary framing agreed where it was not
// (or the other way round).
var errOtherTerms = errors.New("comet: the fresh session has other terms than the connection")

// closeAbnormal is 1006, the code WebSocket reports for a connection that
// failed without a close frame; it never travels.
const closeAbnormal transport.CloseCode = 1006

// refusedFresh returns the close that a failed fresh session means for
// good: an unauthorized client (3003), a forbidden origin (3005), or, as a
// WebSocket whose handshake failed (1006), a server that selects none of
// the subprotocols or other terms than the Conn reported at Dial; nil for
// a failure worth trying again.
func refusedFresh(err error) *transport.CloseError {
	if errors.Is(err, errOtherTerms) {
		return &transport.CloseError{Code: closeAbnormal, Reason: err.Error()}
	}
	he := refusal(err, "")
	switch {
	case he == nil:
		return nil
	case he.Body.Code == transport.CodeNoProtocol:
		return &transport.CloseError{Code: closeAbnormal, Reason: "the server selects none of the subprotocols now"}
	case he.Body.Code == transport.CodeOriginRefused:
		return &transport.CloseError{Code: transport.CloseForbiddenOrigin, Reason: "the server refused this origin"}
	case he.Status == http.StatusUnauthorized || he.Status == http.StatusForbidden:
		return &transport.CloseError{Code: transport.CloseUnauthorized, Reason: "the server refused the negotiate"}
	}
	return nil
}

// openFresh negotiates a fresh session, puts it in the place of the old
// one, and attaches to it.
func (c *Conn) openFresh(ctx context.Context) (attachment, error) {
	c.mu.Lock()
	req := c.renewal.request
	req.Topics = c.positionsLocked()
	c.mu.Unlock()
	neg, base, rtt, err := negotiate(ctx, c.http, c.renewal.mount, c.opts.Header, req)
	if err != nil {
		return nil, err
	}
	// The Conn keeps the subprotocol and the binary framing it reported
	// at Dial: a fresh session on other terms is not the same connection.
	if neg.Protocol != c.protocol || neg.Binary != c.binary {
		return nil, fmt.Errorf("%w: subprotocol %q and binary frames %t, where the connection has %q and %t",
			errOtherTerms, neg.Protocol, neg.Binary, c.protocol, c.binary)
	}
	order := offered(c.opts.Transports, neg.Transports)
	if len(order) == 0 {
		return nil, fmt.Errorf("comet: the server offers %v, the client uses %v", neg.Transports, c.opts.Transports)
	}
	c.mu.Lock()
	if c.renewal.stopped {
		c.mu.Unlock()
		return nil, context.Canceled
	}
	c.resetLocked(base, neg, rtt, order)
	c.mu.Unlock()

	a, err := c.attachFirst()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	gap := c.renewal.gap
	gap.SessionID = c.sid
	c.in.queue = append(c.in.queue, inMsg{err: gap})
	c.renewal.active, c.renewal.cancel, c.renewal.gap = false, nil, nil
	c.wakeLocked()
	return a, nil
}

// resetLocked puts the fresh session neg, negotiated at base, in the place
// of the ended one. What the network taught the Conn (buffered streams,
// demoted transports, a shorter heartbeat) stays; the messages received
// and not yet read stay for Recv; everything else starts over.
func (c *Conn) resetLocked(base *url.URL, neg *transport.NegotiateResponse, rtt time.Duration, order []string) {
	hb := c.lim.hb
	c.base, c.sid, c.secret = base, neg.SessionID, neg.Secret
	c.log = c.opts.Logger.With("session", logid.Short(neg.SessionID))
	c.lim = newLimits(neg, rtt, c.opts.Heartbeat)
	c.lim.hb = hb
	c.order = order
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.out = window.New(c.opts.WindowMessages, c.opts.WindowBytes)
	c.in = inbound{queue: c.in.queue}
	c.tickets.clear()
	now := time.Now()
	for _, t := range neg.Tickets {
		c.tickets.add(t, now)
	}
	c.attempt, c.postAttempt = 0, 0
	// The fresh session may be another server's, which agrees to other
	// additions; nothing that reads this runs until it is served.
	c.replies = neg.Replies
	c.pollHold = clampInterval(time.Duration(c.lim.hb)*time.Millisecond, c.lim.minHeartbeat, c.lim.hold)
	c.lastPost = time.Time{}
	if c.closeTimer != nil {
		c.closeTimer.Stop()
	}
	c.closeErr, c.closeSeq, c.closeTimer = nil, 0, nil
	c.closeWritten, c.remoteClosed, c.violated, c.abrupt, c.timedOut = false, false, false, false, false
	c.up = upgradeState{}
	c.judge.heard = time.Time{}
	c.log.Debug("comet: negotiated a fresh session", "rtt", rtt, "attachTimeout", c.lim.attachTimeout, "transports", order)
}
