package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// longPoll carries the session by long-polling: a run of polls, one at a
// time, each an attach of its own with a new attempt id, and a sender that
// POSTs upstream batches, one at a time.
type longPoll struct {
	c     *Conn
	first *poll
}

// poll is one long-poll request in flight.
type poll struct {
	opened chan struct{} // closed when the open frame has been applied
	done   chan error    // receives the poll's outcome; buffered
	cancel context.CancelFunc
}

// attachLongPoll proves the path with a probe poll (d=0), which the
// server answers at once with its open frame (PROTOCOL.md section 8); a
// delivering poll would be held until there is something to deliver. The
// polls that follow deliver. The probe poll's answer must come within
// timeout.
func (c *Conn) attachLongPoll(why string, timeout time.Duration) (attachment, error) {
	fail := func(err error) (attachment, error) {
		if c.ctx.Err() != nil {
			return nil, c.ctx.Err()
		}
		return nil, &attachError{transport: transport.LongPoll, err: err}
	}
	tctx, cancel := context.WithTimeout(c.ctx, timeout)
	ticket, err := c.ticket(tctx)
	cancel()
	if err != nil {
		return fail(err)
	}
	p := c.startPoll(ticket, why, false)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.opened:
	case <-timer.C:
		p.cancel()
		<-p.done
		return fail(errNoOpen)
	case err := <-p.done:
		select {
		case <-p.opened:
			p.done <- err // serve sees the outcome
		default:
			p.cancel()
			return fail(err)
		}
	case <-c.ctx.Done():
		p.cancel()
		<-p.done
		return nil, c.ctx.Err()
	}
	return &longPoll{c: c, first: p}, nil
}

// startPoll sends a poll with ticket, carrying our ack, and reads it on a
// goroutine of its own.
func (c *Conn) startPoll(ticket, why string, deliver bool) *poll {
	c.mu.Lock()
	c.attempt++
	c.postAttempt = c.attempt
	params := transport.AttachParams{Session: c.sid, Ticket: ticket, Attempt: c.attempt, Ack: c.in.n, Deliver: deliver,
		Heartbeat: c.lim.hb, Reason: why}
	c.in.ackSent(params.Ack)
	// A poll answers within its hold; one silent for longer, plus the
	// attach timeout, is dead (PROTOCOL.md section 7).
	ctx, cancel := context.WithTimeout(c.ctx, c.pollHold+c.lim.attachTimeout)
	c.mu.Unlock()
	p := &poll{opened: make(chan struct{}), done: make(chan error, 1), cancel: cancel}
	go func() {
		defer cancel()
		p.done <- c.readPoll(ctx, params, p.opened)
	}()
	return p
}

// readPoll sends one poll and applies its response, frame by frame as it
// arrives. It returns nil when the response ended normally.
func (c *Conn) readPoll(ctx context.Context, params transport.AttachParams, opened chan<- struct{}) error {
	q := url.Values{}
	params.Encode(q)
	q.Set("z", cacheBuster())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint("/longpoll", q), nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return pollError(ctx, err)
	}
	if resp.StatusCode != http.StatusOK {
		data, _ := readBody(resp)
		return httpError(resp, data)
	}
	defer resp.Body.Close()
	return c.applyPoll(ctx, resp.Body, params, opened)
}

// applyPoll applies body, the response to the poll params, frame by frame
// as it arrives. It returns nil when the response ended normally.
func (c *Conn) applyPoll(ctx context.Context, body io.Reader, params transport.AttachParams, opened chan<- struct{}) error {
	// The body is one batch of at most maxBatch bytes; the slack is for
	// padding lines.
	r := bufio.NewReader(io.LimitReader(body, int64(c.lim.maxBatch)+1024))
	first := true
	for {
		line, err := r.ReadBytes('\n')
		if err != nil && err != io.EOF {
			// A cut connection leaves a partial line: a dead path, not a
			// malformed frame.
			return pollError(ctx, err)
		}
		if len(bytes.Trim(line, " \n")) > 0 {
			var f transport.Frame
			if err := transport.DecodeFrame(bytes.TrimSuffix(line, []byte{'\n'}), &f); err != nil {
				c.failDecode(err)
				return nil
			}
			if first {
				switch {
				case f.Type != transport.TypeOpen:
					return errNoOpen
				case f.Attempt != params.Attempt:
					return errStale
				}
				c.mu.Lock()
				c.pollHold = millis(int(f.Interval), c.lim.hold)
				c.mu.Unlock()
				c.opened(&f, params.Ack)
				close(opened)
				first = false
			} else if c.receive([]transport.Frame{f}) {
				return errSuperseded
			}
		}
		switch {
		case err == io.EOF && first:
			return errNoOpen
		case err == io.EOF:
			return nil
		case err != nil:
			return pollError(ctx, err)
		}
	}
}

// pollError names a poll that timed out for what it is: a dead path.
func pollError(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return errSilent
	}
	return err
}

// serve runs the polls and the sender until either fails or ctx ends.
func (lp *longPoll) serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	go func() { errs <- lp.pollLoop(ctx) }()
	go func() { errs <- lp.c.sendLoop(ctx, 0) }()
	first := <-errs
	cancel()
	<-errs
	return first
}

// pollLoop waits for each poll to end and starts the next, while Recv's
// buffer has room and until the server's close has arrived.
func (lp *longPoll) pollLoop(ctx context.Context) error {
	c := lp.c
	p := lp.first
	retried := false
	for {
		var err error
		select {
		case err = <-p.done:
		case <-ctx.Done():
			p.cancel()
			<-p.done
			return ctx.Err()
		}
		p.cancel()
		switch {
		case err == nil:
			retried = false
		case !retried && refusal(err, transport.CodeBadTicket) != nil:
			// The pool's ticket was stale: poll again with a fresh one.
			retried = true
			c.mu.Lock()
			c.tickets.clear()
			c.mu.Unlock()
		default:
			return err
		}
		if err := lp.waitForRoom(ctx); err != nil {
			return err
		}
		ticket, err := c.ticket(ctx)
		if err != nil {
			return err
		}
		p = c.startPoll(ticket, "", true)
	}
}

// waitForRoom waits until Recv's buffer has room for another poll. While
// it waits, no poll holds the session attached, so it POSTs a key frame
// (its ack) every hold: the server restarts the grace period on every POST
// from a detached client (PROTOCOL.md section 9), and a client whose
// application reads slowly keeps its session.
func (lp *longPoll) waitForRoom(ctx context.Context) error {
	c := lp.c
	for {
		c.mu.Lock()
		hold := c.pollHold
		c.mu.Unlock()
		wctx, cancel := context.WithTimeout(ctx, hold)
		err := c.waitUntil(wctx, func() bool { return c.roomLocked() && !c.remoteClosed })
		cancel()
		if err == nil || ctx.Err() != nil {
			return ctx.Err()
		}
		var b transport.Batch
		c.mu.Lock()
		ack := c.appendKeyLocked(&b, false)
		c.mu.Unlock()
		if _, err := c.post(ctx, b.Bytes, ack); err != nil && ctx.Err() == nil {
			if he := refusal(err, ""); he != nil && he.Status == http.StatusNotFound {
				return err
			}
		}
	}
}
