package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// whyStreamBuffered is the reason reported when a stream is left because
// a proxy buffers it (PROTOCOL.md sections 5 and 8).
const whyStreamBuffered = "stream_buffered"

// errBuffered ends a stream that a proxy buffers.
var errBuffered = errors.New("comet: the stream is buffered on its way")

// probeState is what a stream's prober and reader share: the probe in
// flight, and whether the reader is held back by a full Recv buffer, when
// nothing arrives whatever the path does.
type probeState struct {
	mu      sync.Mutex
	token   string        // the probe awaiting its echo, "" if none
	echoed  chan struct{} // closed when it arrives
	holding bool          // the reader waits for room
	holds   int           // how many times it has
}

// expect registers a probe and returns the channel its echo closes and
// the hold count to compare with when the wait is over.
func (p *probeState) expect(token string) (<-chan struct{}, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.token, p.echoed = token, make(chan struct{})
	return p.echoed, p.holds
}

// answer takes an echo from the stream. Echoes of older probes are late,
// and count for nothing.
func (p *probeState) answer(token string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if token != "" && token == p.token {
		close(p.echoed)
		p.token = ""
	}
}

func (p *probeState) hold(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holding = on
	if on {
		p.holds++
	}
}

// heldSince reports whether the reader has been held back since the hold
// count was n: a probe's silence then proves nothing.
func (p *probeState) heldSince(n int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.holding || p.holds != n
}

// probeLoop checks that the stream still delivers at once (PROTOCOL.md
// section 8): a probe right after attaching, then one whenever the stream
// has been quiet for half its interval, and never two within half an
// interval. An echo proves the round trip within the attach timeout. A
// stream that a proxy has started to buffer fails its next probe within
// half an interval plus the attach timeout of going quiet: before the
// silence of a whole interval plus the attach timeout would take it for
// dead and attach again. While bytes flow there is no probe, since a busy
// stream's echo may wait behind a large batch. A failed probe ends the
// stream with stream_buffered. Only a stream that could be left for
// another transport runs it (see serve).
func (s *streamAttachment) probeLoop(ctx context.Context) error {
	half := s.interval / 2
	var last time.Time
	for {
		last = time.Now()
		if err := s.probe(ctx); err != nil {
			return err
		}
		for {
			next := s.lastReceived()
			if next.Before(last) {
				next = last
			}
			d := time.Until(next.Add(half))
			if d <= 0 {
				break
			}
			if !sleep(ctx, d) {
				return ctx.Err()
			}
		}
	}
}

// probe sends one probe and waits for its echo. A probe that cannot be
// sent, or whose wait the reader spent held back, is inconclusive.
func (s *streamAttachment) probe(ctx context.Context) error {
	c := s.c
	token := cacheBuster()
	echoed, holds := s.probes.expect(token)
	var b transport.Batch
	c.mu.Lock()
	ack := c.appendKeyLocked(&b, false)
	c.mu.Unlock()
	b.Append(&transport.Frame{Type: transport.TypeProbe, Attempt: s.params.Attempt, Token: token})
	if _, err := c.post(ctx, b.Bytes, ack); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.log.Debug("comet: probe not sent", "transport", s.format.name, "err", err)
		return nil // the sender sees what is wrong with the POST path
	}
	timer := time.NewTimer(c.lim.attachTimeout)
	defer timer.Stop()
	select {
	case <-echoed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
	}
	if s.probes.heldSince(holds) {
		return nil
	}
	return s.buffered(fmt.Sprintf("no probe echo within %v", c.lim.attachTimeout))
}

// buffered returns the error that leaves a buffered stream for
// long-polling, and remembers, for the rest of the Conn's life, that
// streams do not work here. A stream that has nothing to fall back to is
// kept: buffered delivery beats none.
func (s *streamAttachment) buffered(detail string) error {
	c := s.c
	if !s.demote {
		c.log.Warn("comet: the stream looks buffered, and there is no transport to fall back to",
			"transport", s.format.name, "detail", detail)
		return nil
	}
	c.markBuffered(transport.SSE, transport.Streaming)
	return &attachError{transport: s.format.name, why: whyStreamBuffered, err: fmt.Errorf("%w: %s", errBuffered, detail),
		left: true}
}

// canDemote reports whether a stream of transport name that a proxy
// buffers can be left for long-polling: a forced transport never falls
// back.
func (c *Conn) canDemote(name string) bool {
	return len(c.order) > 1 && name != transport.LongPoll && slices.Contains(c.order, transport.LongPoll)
}

// markBuffered remembers that the named transports are buffered on the
// way to the server: no attach tries them again, unless nothing else is
// left.
func (c *Conn) markBuffered(names ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.buffered == nil {
		c.buffered = make(map[string]bool)
	}
	for _, n := range names {
		c.buffered[n] = true
	}
}

// candidates returns the transports to try, in order, when the transport
// from has dropped with err: long-polling first after a stream was found
// buffered, the transports after from in the order when from was demoted
// for early deaths, otherwise from first; then the rest of the order,
// without those found buffered or demoted unless that leaves none.
func (c *Conn) candidates(from string, err error) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	first := from
	if whyOf(err) == whyStreamBuffered && slices.Contains(c.order, transport.LongPoll) {
		first = transport.LongPoll
	}
	var list []string
	if c.demotedLocked(first) && slices.Contains(c.order, first) {
		list = rotateAfter(c.order, first)
	} else {
		list = []string{first}
		for _, t := range c.order {
			if t != first {
				list = append(list, t)
			}
		}
	}
	usable := slices.DeleteFunc(slices.Clone(list), func(t string) bool { return c.buffered[t] || c.demotedLocked(t) })
	if len(usable) == 0 {
		return list
	}
	return usable
}
