package session

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// benchPayload is a typical small event.
var benchPayload = []byte(`{"event":"tick","n":42}`)

// ackingDownstream stands for a client that reads every batch and
// acknowledges every 64th message, as the ack cadence of PROTOCOL.md
// section 6 does with windowMessages 128.
type ackingDownstream struct {
	s             *Session
	written, sent uint64 // last message written, last acknowledged
	closeOnce     sync.Once
	closed        chan struct{}
}

func (d *ackingDownstream) WriteBatch(b *transport.Batch) error {
	for _, f := range b.Frames {
		if f.Type.IsMessage() {
			d.written = f.Seq
		}
	}
	if d.written >= d.sent+64 {
		d.s.mu.Lock()
		err := d.s.ackLocked(d.written)
		d.s.mu.Unlock()
		if err != nil {
			return err
		}
		d.sent = d.written
	}
	return nil
}

func (d *ackingDownstream) Close() error {
	d.closeOnce.Do(func() { close(d.closed) })
	return nil
}

func newBenchHandler() *Handler {
	return NewHandler(&Options{Logger: slog.New(slog.DiscardHandler), AttachTimeout: time.Hour})
}

// BenchmarkSendDeliver measures Send with its message written to an
// attached stream and acknowledged: the steady state of a busy session.
func BenchmarkSendDeliver(b *testing.B) {
	h := newBenchHandler()
	s := newSession(h, "bench", "secret", RequestInfo{})
	h.opts.Registry.Add(s)
	ds := &ackingDownstream{s: s, closed: make(chan struct{})}
	served := make(chan error, 1)
	go func() { served <- s.newAttachment(transport.WebSocket, deliver(1, 0)).Serve(ds, transport.Stream) }()
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPayload)))
	for b.Loop() {
		if err := s.Send(ctx, transport.Text, benchPayload); err != nil {
			b.Fatal(err)
		}
	}
	s.CloseNow()
	<-served
}

// BenchmarkBroadcast measures one prepared message offered to 1,000
// sessions, through the handler's registry and through a slice the
// application keeps.
func BenchmarkBroadcast(b *testing.B) {
	const n = 1000
	h := newBenchHandler()
	sessions := make([]*Session, n)
	for i := range sessions {
		sessions[i] = newSession(h, fmt.Sprint("bench-", i), "secret", RequestInfo{})
		h.opts.Registry.Add(sessions[i])
	}
	defer func() {
		for _, s := range sessions {
			s.CloseNow()
		}
	}()
	m, err := h.NewPreparedMessage(transport.Text, benchPayload)
	if err != nil {
		b.Fatal(err)
	}
	// The clients acknowledge every 512 messages, well within the window.
	ackAll := func() {
		for _, s := range sessions {
			s.mu.Lock()
			s.ackLocked(s.out.Last())
			s.mu.Unlock()
		}
	}
	for _, bc := range []struct {
		name      string
		broadcast func() int
	}{
		{"registry", func() int { return h.Broadcast(m) }},
		{"slice", func() int { return Broadcast(sessions, m) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 1; b.Loop(); i++ {
				if got := bc.broadcast(); got != n {
					b.Fatalf("the broadcast reached %d sessions, want %d", got, n)
				}
				if i%512 == 0 {
					ackAll()
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/session")
			ackAll()
		})
	}
}
