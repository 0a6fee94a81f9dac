package client

import (
	"errors"
	"slices"
	"testing"

	"github.com/seed-544bbf9f/comet/transport"
)

func TestCandidates(t *testing.T) {
	all := transport.Order()
	buffered := &attachError{transport: transport.SSE, why: whyStreamBuffered, err: errBuffered, left: true}
	for _, tc := range []struct {
		name   string
		order  []string
		marked []string
		from   string
		err    error
		want   []string
		demote bool // canDemote(from)
	}{
		{name: "the same transport first", order: all, from: transport.SSE, err: errSilent,
			want: []string{transport.SSE, transport.WebSocket, transport.Streaming, transport.LongPoll}, demote: true},
		{name: "long-polling first after a buffered stream", order: all, from: transport.SSE, err: buffered,
			marked: []string{transport.SSE, transport.Streaming},
			want:   []string{transport.LongPoll, transport.WebSocket}, demote: true},
		{name: "buffered transports skipped", order: all, from: transport.LongPoll, err: errSilent,
			marked: []string{transport.SSE},
			want:   []string{transport.LongPoll, transport.WebSocket, transport.Streaming}},
		{name: "forced: nothing else to try", order: []string{transport.SSE}, from: transport.SSE, err: buffered,
			marked: []string{transport.SSE}, want: []string{transport.SSE}},
		{name: "no long-polling to fall back to", order: []string{transport.WebSocket, transport.SSE}, from: transport.SSE,
			err: errSilent, want: []string{transport.SSE, transport.WebSocket}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestConn(t, "http://127.0.0.1:1/comet", &Options{Transports: tc.order})
			c.markBuffered(tc.marked...)
			if got := c.candidates(tc.from, tc.err); !slices.Equal(got, tc.want) {
				t.Fatalf("candidates(%s, %v) = %v, want %v", tc.from, tc.err, got, tc.want)
			}
			if got := c.canDemote(tc.from); got != tc.demote {
				t.Fatalf("canDemote(%s) = %v, want %v", tc.from, got, tc.demote)
			}
		})
	}
}

func TestBufferedError(t *testing.T) {
	c := newTestConn(t, "http://127.0.0.1:1/comet", nil)
	s := &streamAttachment{c: c, format: sseFormat, demote: true}
	err := s.buffered("no echo")
	if whyOf(err) != whyStreamBuffered || !errors.Is(err, errBuffered) {
		t.Fatalf("buffered() = %v, want stream_buffered wrapping errBuffered", err)
	}
	if !c.buffered[transport.SSE] || !c.buffered[transport.Streaming] {
		t.Fatalf("buffered transports %v, want both streams", c.buffered)
	}
	forced := &streamAttachment{c: newTestConn(t, "http://127.0.0.1:1/comet", nil), format: sseFormat}
	if err := forced.buffered("no echo"); err != nil {
		t.Fatalf("buffered() on a stream with no fallback = %v, want nil: keep it", err)
	}
}

func TestProbeState(t *testing.T) {
	var p probeState
	echoed, holds := p.expect("one")
	p.answer("other")
	p.answer("")
	select {
	case <-echoed:
		t.Fatal("an echo of another token answered the probe")
	default:
	}
	p.answer("one")
	p.answer("one") // a duplicate echo is harmless
	select {
	case <-echoed:
	default:
		t.Fatal("the echo did not answer the probe")
	}
	if p.heldSince(holds) {
		t.Fatal("heldSince with no hold")
	}
	p.hold(true)
	if !p.heldSince(holds) {
		t.Fatal("heldSince while held = false")
	}
	p.hold(false)
	if !p.heldSince(holds) {
		t.Fatal("heldSince after a hold = false")
	}
}
