package session

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
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
// The handler's counters count every message on this path, at no
// allocation: allocs/op is that of the payload's encoding and its window
// entry alone. Under Serve the request's goroutine writes (SSE, XHR
// streaming); under Start a writer goroutine comes and goes with the
// backlog (WebSocket), and starting one allocates nothing either.
func BenchmarkSendDeliver(b *testing.B) {
	for _, bc := range []struct {
		name  string
		start func(a *attachment, ds transport.Downstream) <-chan struct{}
	}{
		{"Serve", func(a *attachment, ds transport.Downstream) <-chan struct{} {
			served := make(chan struct{})
			go func() {
				defer close(served)
				a.Serve(ds, transport.Stream)
			}()
			return served
		}},
		{"Start", func(a *attachment, ds transport.Downstream) <-chan struct{} {
			if err := a.Start(ds, transport.Stream); err != nil {
				b.Fatal(err)
			}
			return a.Done()
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := newBenchHandler()
			s := newSession(h, "bench", "secret", RequestInfo{})
			h.sessions.add(s)
			ds := &ackingDownstream{s: s, closed: make(chan struct{})}
			ended := bc.start(s.newAttachment(transport.WebSocket, deliver(1, 0)), ds)
			ctx := context.Background()
			b.ReportAllocs()
			b.SetBytes(int64(len(benchPayload)))
			for b.Loop() {
				if err := s.Send(ctx, transport.Text, benchPayload); err != nil {
					b.Fatal(err)
				}
			}
			s.CloseNow()
			<-ended
			// What reached the downstream before CloseNow depends on the
			// writer's timing (with -benchtime=1x, nothing may have); the
			// close does not.
			if st := h.Stats(); st.SessionsClosed[transport.CloseNormal] != 1 {
				b.Fatalf("the counters missed the run's close: %v", st.SessionsClosed)
			}
		})
	}
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
		h.sessions.add(sessions[i])
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

// BenchmarkUnattachedSession measures what a negotiated session costs
// before its client attaches (the first-attach timeout bounds how long):
// heap bytes and goroutines per session, with an application that parks
// on the session's Context, as most do.
func BenchmarkUnattachedSession(b *testing.B) {
	const batch = 1000
	h := NewHandler(&Options{Logger: slog.New(slog.DiscardHandler), AttachTimeout: time.Hour,
		NegotiateRate: -1, Serve: func(s *Session) { <-s.Context().Done() }}, offerOnly(transport.WebSocket))
	defer h.Shutdown(context.Background())
	negotiate := func() {
		r := httptest.NewRequest(http.MethodPost, "/comet/negotiate?v=1", strings.NewReader(`{}`))
		r.RemoteAddr = "192.0.2.1:1234"
		r.Header.Set("User-Agent", "bench")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("negotiate: %d %s", w.Code, w.Body)
		}
	}
	var heap, goroutines float64
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		g0 := runtime.NumGoroutine()
		b.StartTimer()
		for range batch {
			negotiate()
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&m1)
		heap += float64(m1.HeapInuse+m1.StackInuse) - float64(m0.HeapInuse+m0.StackInuse)
		goroutines += float64(runtime.NumGoroutine() - g0)
		h.sessions.each(func(s *Session) bool { s.CloseNow(); return true })
		b.StartTimer()
	}
	b.ReportMetric(heap/float64(b.N*batch), "heap-B/session")
	b.ReportMetric(goroutines/float64(b.N*batch), "goroutines/session")
}

// offerOnly is an adapter that is offered at negotiate and never attached.
type offerOnly string

func (o offerOnly) Name() string { return string(o) }

func (offerOnly) ServeAttach(w http.ResponseWriter, _ *http.Request, _ transport.Attachment) {
	w.WriteHeader(http.StatusNotImplemented)
}
