package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// attachment is a transport connection (or, for long-polling, a run of
// polls) whose open frame has arrived, or, for a poll, that the server
// has accepted.
type attachment interface {
	// serve carries the session until the attachment ends or ctx does
	// (the session's end, or an upgrade that replaces it), and says why.
	// It returns only when every goroutine it started has stopped.
	serve(ctx context.Context) error
}

// run is the Conn's supervisor: it attaches, serves the attachment until
// it drops, and resumes, until the session ends; with Options.Reconnect it
// then opens a fresh session when the end allows it; finally it stops
// everything and closes Done. ready receives the outcome of the first attach, for
// Dial.
func (c *Conn) run(ready chan<- error) {
	defer c.teardown()
	a, err := c.first, error(nil)
	if a != nil {
		c.first = nil
		c.switchTo("", c.order[0], "")
	} else {
		a, err = c.attachFirst()
	}
	ready <- err
	for a != nil {
		c.carry(a)
		a = c.renew()
	}
}

// carry serves the session from its first attachment a until it ends.
func (c *Conn) carry(a attachment) {
	var upgrader sync.WaitGroup
	defer c.dropUpgrade()
	defer upgrader.Wait()
	upgrader.Go(c.upgradeLoop)
	flaps := 0
	for a != nil {
		start := time.Now()
		err := c.serve(a)
		if c.ctx.Err() != nil {
			return
		}
		if w := c.takeUpgrade(); w != nil {
			if err = c.commitUpgrade(w); err == nil {
				a, flaps = w, 0
				continue
			}
		}
		switch {
		case errors.Is(err, errRecycled) || errors.Is(err, errBuffered):
			// By design, or a move to a better path: no failure to back off
			// from.
			flaps = 0
		case time.Since(start) < stableAttach:
			flaps++
		default:
			flaps = 0
		}
		why := c.judgeDrop(c.Transport(), start, err)
		a = c.resume(err, why, flaps)
	}
}

// attachFirst tries each transport once, in order, and reports a failure
// of all of them as close 3004 (unreachable). A stream that a proxy holds
// back (stream_buffered) sends it to long-polling, past the other stream,
// which the same proxy would hold back too (PROTOCOL.md section 8).
func (c *Conn) attachFirst() (attachment, error) {
	var last error
	from, why := "", ""
	for i, name := range c.order {
		if why == whyStreamBuffered && (name == transport.SSE || name == transport.Streaming) {
			continue
		}
		timeout := c.lim.attachTimeout
		if i == len(c.order)-1 {
			timeout = c.opts.LastResortTimeout
		}
		a, err := c.attachWith(name, why, timeout)
		if err == nil {
			c.switchTo(from, name, why)
			return a, nil
		}
		if c.ctx.Err() != nil {
			return nil, c.endedErr()
		}
		if ce := fatal(err); ce != nil {
			c.endWith(ce)
			return nil, fmt.Errorf("%w: %w", ce, err)
		}
		c.log.Info("comet: attach failed", "transport", name, "err", err)
		last, from, why = err, name, whyOf(err)
	}
	ce := &transport.CloseError{Code: transport.CloseUnreachable, Reason: "no transport reached the server"}
	c.endWith(ce)
	return nil, fmt.Errorf("%w: %w", ce, last)
}

// resume attaches again after the attachment in use dropped with err:
// the same transport first (long-polling first when a stream was found
// buffered), then the others in order, with capped, jittered backoff, for
// at most the grace period, after which the server has forgotten the
// session. why, if not "", is the keep-alive judgement's reason for the
// drop, reported instead of err's. flaps counts the attachments in a row
// that dropped soon after they began; they start the backoff further
// along. It returns nil when the session has ended.
func (c *Conn) resume(err error, judged string, flaps int) attachment {
	c.mu.Lock()
	from := c.current
	answered := c.remoteClosed
	c.mu.Unlock()
	if answered {
		// The server closed and has our answer, or never will: it forgets a
		// session once its close is acknowledged.
		c.endWith(nil)
		return nil
	}
	if errors.Is(err, errRecycled) {
		c.log.Debug("comet: stream recycled", "transport", from)
	} else {
		c.log.Info("comet: transport dropped", "transport", from, "err", err)
	}
	deadline := time.Now().Add(c.lim.grace)
	why := whyOf(err)
	if judged != "" {
		why = judged
	}
	for i := 0; ; i++ {
		if n := flaps + i; n > 0 {
			if !sleep(c.ctx, min(backoff(n-1, rand.Float64()), time.Until(deadline))) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			c.endWith(&transport.CloseError{Code: transport.CloseSessionExpired, Reason: "could not resume within the grace period"})
			return nil
		}
		// Recomputed on each try: an attach may find a stream buffered, and
		// then the next try is long-polling (PROTOCOL.md section 8).
		candidates := c.candidates(from, err)
		name := candidates[i%len(candidates)]
		if why == whyStreamBuffered && slices.Contains(candidates, transport.LongPoll) {
			name = transport.LongPoll
		}
		timeout := c.lim.attachTimeout
		if len(candidates) == 1 {
			timeout = c.opts.LastResortTimeout
		}
		a, err := c.attachWith(name, why, timeout)
		if err == nil {
			c.switchTo(from, name, why)
			return a
		}
		if c.ctx.Err() != nil {
			return nil
		}
		if ce := fatal(err); ce != nil {
			c.endWith(ce)
			return nil
		}
		c.log.Info("comet: resume failed", "transport", name, "err", err)
		if he := refusal(err, ""); he != nil && he.RetryAfter > 0 {
			if !sleep(c.ctx, min(time.Duration(he.RetryAfter)*time.Second, time.Until(deadline))) {
				return nil
			}
		}
		why = whyOf(err)
	}
}

// attachWith attaches with the named transport, waiting at most timeout
// for its open frame. A refused ticket (used, expired, or dropped by the
// server) is retried once with a fresh one from a POST.
func (c *Conn) attachWith(name, why string, timeout time.Duration) (attachment, error) {
	for try := 0; ; try++ {
		var a attachment
		var err error
		switch name {
		case transport.WebSocket:
			a, err = c.attachWebSocket(why, timeout)
		case transport.SSE:
			a, err = c.attachStream(sseFormat, why, timeout)
		case transport.Streaming:
			a, err = c.attachStream(streamingFormat, why, timeout)
		default:
			a, err = c.attachLongPoll(why, timeout)
		}
		if try == 0 && refusal(err, transport.CodeBadTicket) != nil {
			c.mu.Lock()
			c.tickets.clear()
			c.mu.Unlock()
			continue
		}
		return a, err
	}
}

// switchTo records that the transport to is in use, and reports a change.
func (c *Conn) switchTo(from, to, why string) {
	c.mu.Lock()
	c.current = to
	c.mu.Unlock()
	if from == to {
		return
	}
	// Asked first: slog's Info has a large frame, which would grow the
	// stack of the goroutine that attaches, every session once, even for
	// a logger that discards it (the default).
	if c.log.Enabled(c.ctx, slog.LevelInfo) {
		c.log.Info("comet: transport changed", "from", from, "to", to, "reason", why)
	}
	if to == transport.WebSocket && c.idle != nil {
		// A WebSocket session makes no HTTP request: the keep-alive
		// connection of the negotiate would sit idle at both ends for
		// the transport's idle timeout (90 s), a second connection and
		// server goroutine per session.
		c.idle.CloseIdleConnections()
	}
	if f := c.opts.OnTransport; f != nil {
		f(from, to, why)
	}
}

// endedErr returns the error that ended the session.
func (c *Conn) endedErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeErr != nil {
		return c.closeErr
	}
	return context.Canceled
}

// teardown finishes an ended session: every attachment has stopped by
// now; it releases the rest and closes Done.
func (c *Conn) teardown() {
	c.mu.Lock()
	if c.closeErr == nil {
		c.closeErr = &transport.CloseError{Code: transport.CloseInternalError, Reason: "the client stopped"}
	}
	if c.closeTimer != nil {
		c.closeTimer.Stop()
	}
	if c.recvUnwatch != nil {
		c.recvUnwatch()
	}
	c.endLocked()
	c.log.Debug("comet: session ended", "err", c.closeErr)
	c.mu.Unlock()
	if c.idle != nil {
		c.idle.CloseIdleConnections()
	}
	close(c.done)
}
