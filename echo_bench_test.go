package comet_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/client"
)

// The benchmarks here run Comet's Go client and handler in one process,
// beside gorilla/websocket doing the same: the figures are of the whole
// exchange, both ends' CPU and their hand-offs, with the process's CPU
// time and context switches per operation. The bench harness
// (docs/BENCHMARKS.md) measures client and server apart, in separate
// processes.

var benchMessage = []byte(strings.Repeat("x", 33))

// BenchmarkEcho times a round trip of a 33-byte message on each transport.
func BenchmarkEcho(b *testing.B) {
	for _, name := range []string{comet.WebSocket, comet.LongPoll, comet.SSE} {
		b.Run(name, func(b *testing.B) {
			base := cometServer(b, &comet.Options{Serve: func(s *comet.Session) {
				ctx := s.Context()
				for {
					typ, p, err := s.Recv(ctx)
					if err != nil || s.Send(ctx, typ, p) != nil {
						return
					}
				}
			}})
			c := cometDial(b, base, name)
			measure(b, b.N, func() {
				if err := c.Send(b.Context(), comet.Text, benchMessage); err != nil {
					b.Fatal(err)
				}
				if _, _, err := c.Recv(b.Context()); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
	b.Run("raw-websocket", func(b *testing.B) {
		conn := gorillaDial(b, gorillaServer(b, func(conn *websocket.Conn) {
			for {
				typ, p, err := conn.ReadMessage()
				if err != nil || conn.WriteMessage(typ, p) != nil {
					return
				}
			}
		}))
		measure(b, b.N, func() {
			if err := conn.WriteMessage(websocket.TextMessage, benchMessage); err != nil {
				b.Fatal(err)
			}
			if _, _, err := conn.ReadMessage(); err != nil {
				b.Fatal(err)
			}
		})
	})
}

// BenchmarkEchoSessions runs round trips on 64 WebSocket sessions at
// once, each in a goroutine of its own, beside gorilla/websocket doing
// the same: the CPU a round trip takes when the sessions share the
// machine, as the bench harness's 64-session echo does.
func BenchmarkEchoSessions(b *testing.B) {
	const sessions = 64
	b.Run(comet.WebSocket, func(b *testing.B) {
		base := cometServer(b, &comet.Options{NegotiateRate: -1, MaxSessionsPerAddress: sessions, Serve: func(s *comet.Session) {
			ctx := s.Context()
			for {
				typ, p, err := s.Recv(ctx)
				if err != nil || s.Send(ctx, typ, p) != nil {
					return
				}
			}
		}})
		trips := make([]func(), sessions)
		for i := range trips {
			c := cometDial(b, base, comet.WebSocket)
			trips[i] = func() {
				if err := c.Send(b.Context(), comet.Text, benchMessage); err != nil {
					b.Error(err)
				}
				if _, _, err := c.Recv(b.Context()); err != nil {
					b.Error(err)
				}
			}
		}
		measureParallel(b, trips)
	})
	b.Run("raw-websocket", func(b *testing.B) {
		u := gorillaServer(b, func(conn *websocket.Conn) {
			for {
				typ, p, err := conn.ReadMessage()
				if err != nil || conn.WriteMessage(typ, p) != nil {
					return
				}
			}
		})
		trips := make([]func(), sessions)
		for i := range trips {
			conn := gorillaDial(b, u)
			trips[i] = func() {
				if err := conn.WriteMessage(websocket.TextMessage, benchMessage); err != nil {
					b.Error(err)
				}
				if _, _, err := conn.ReadMessage(); err != nil {
					b.Error(err)
				}
			}
		}
		measureParallel(b, trips)
	})
}

// measureParallel runs b.N operations spread over ops, each op in a
// goroutine of its own, as measure does one.
func measureParallel(b *testing.B, ops []func()) {
	var left atomic.Int64
	left.Store(int64(b.N))
	measure(b, 1, func() {
		var wg sync.WaitGroup
		for _, op := range ops {
			wg.Go(func() {
				for left.Add(-1) >= 0 {
					op()
				}
			})
		}
		wg.Wait()
	})
}

// BenchmarkConnect times opening a session forced onto each transport and
// dropping it at once, beside a gorilla dial and close: what a connect
// storm costs per session.
func BenchmarkConnect(b *testing.B) {
	for _, name := range []string{comet.WebSocket, comet.LongPoll, comet.SSE} {
		b.Run(name, func(b *testing.B) {
			// Sessions a client dropped wait out their grace period: the
			// per-address limits would refuse the benchmark's thousands.
			base := cometServer(b, &comet.Options{NegotiateRate: -1, MaxSessionsPerAddress: 1 << 30,
				Serve: func(s *comet.Session) { s.Recv(s.Context()) }})
			opts := &client.Options{Transports: []string{name}}
			measure(b, b.N, func() {
				c, err := client.Dial(b.Context(), base, opts)
				if err != nil {
					b.Fatal(err)
				}
				c.CloseNow()
			})
		})
	}
	b.Run("raw-websocket", func(b *testing.B) {
		u := gorillaServer(b, func(conn *websocket.Conn) { conn.ReadMessage() })
		measure(b, b.N, func() {
			conn, _, err := websocket.DefaultDialer.Dial(u, nil)
			if err != nil {
				b.Fatal(err)
			}
			conn.Close()
		})
	})
}

// BenchmarkPush times the delivery of a 33-byte message the server
// application sends in a loop: batching is what Comet's push figures
// rest on.
func BenchmarkPush(b *testing.B) {
	for _, name := range []string{comet.WebSocket, comet.SSE} {
		b.Run(name, func(b *testing.B) {
			base := cometServer(b, &comet.Options{Serve: func(s *comet.Session) {
				for s.Send(s.Context(), comet.Text, benchMessage) == nil {
				}
			}})
			c := cometDial(b, base, name)
			measure(b, b.N, func() {
				if _, _, err := c.Recv(b.Context()); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// BenchmarkFanOut times a broadcast reaching 100 idle WebSocket sessions,
// beside a hub loop writing a gorilla PreparedMessage to 100 gorilla
// clients; per delivery.
func BenchmarkFanOut(b *testing.B) {
	const n = 100
	got := make(chan struct{}, n)
	deliver := func(recv func() error) {
		for recv() == nil {
			got <- struct{}{}
		}
	}
	b.Run("websocket", func(b *testing.B) {
		var h *comet.Handler
		base := cometServerWith(b, &comet.Options{NegotiateRate: -1,
			Serve: func(s *comet.Session) { <-s.Context().Done() }}, &h)
		for range n {
			c := cometDial(b, base, comet.WebSocket)
			go deliver(func() error { _, _, err := c.Recv(context.Background()); return err })
		}
		m, err := h.NewPreparedMessage(comet.Text, benchMessage)
		if err != nil {
			b.Fatal(err)
		}
		measure(b, b.N/n, func() {
			h.Broadcast(m)
			for range n {
				<-got
			}
		})
	})
	b.Run("raw-websocket", func(b *testing.B) {
		conns := make(chan *websocket.Conn, n)
		u := gorillaServer(b, func(conn *websocket.Conn) {
			conns <- conn
			conn.ReadMessage() // until the client goes
		})
		var hub []*websocket.Conn
		for range n {
			conn := gorillaDial(b, u)
			go deliver(func() error { _, _, err := conn.ReadMessage(); return err })
			hub = append(hub, <-conns)
		}
		pm, err := websocket.NewPreparedMessage(websocket.TextMessage, benchMessage)
		if err != nil {
			b.Fatal(err)
		}
		measure(b, b.N/n, func() {
			for _, c := range hub {
				c.WritePreparedMessage(pm)
			}
			for range n {
				<-got
			}
		})
	})
}

// cometServer serves a Comet handler with opts (quiet unless it has a
// logger) until the benchmark ends, and returns its base URL.
func cometServer(b *testing.B, opts *comet.Options) string {
	return cometServerWith(b, opts, nil)
}

// cometServerWith is cometServer, also handing over the handler.
func cometServerWith(b *testing.B, opts *comet.Options, h **comet.Handler) string {
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	handler := comet.NewHandler(opts)
	if h != nil {
		*h = handler
	}
	mux := http.NewServeMux()
	mux.Handle("/comet/", handler)
	srv := httptest.NewServer(mux)
	b.Cleanup(func() {
		handler.Shutdown(context.Background())
		srv.Close()
	})
	return srv.URL + "/comet"
}

// cometDial opens a session on one transport, dropped when the benchmark
// ends.
func cometDial(b *testing.B, base, name string) *client.Conn {
	c, err := client.Dial(context.Background(), base, &client.Options{Transports: []string{name}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.CloseNow() })
	return c
}

// gorillaServer serves WebSocket connections to serve, each closed when
// serve returns, until the benchmark ends, and returns the ws:// URL.
func gorillaServer(b *testing.B, serve func(*websocket.Conn)) string {
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		serve(conn)
	}))
	b.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// gorillaDial dials u, closed when the benchmark ends.
func gorillaDial(b *testing.B, u string) *websocket.Conn {
	conn, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return conn
}

// measure runs op n times as the benchmark's timed part, and reports
// allocations, CPU time and context switches per benchmark operation.
func measure(b *testing.B, n int, op func()) {
	b.ReportAllocs()
	before := processUsage()
	b.ResetTimer()
	for range n {
		op()
	}
	b.StopTimer()
	after := processUsage()
	b.ReportMetric(float64(after.cpu-before.cpu)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(after.switches-before.switches)/float64(b.N), "switches/op")
}

// usage is this process's CPU time, user and system, and its context
// switches: on a busy machine they say more about the work an operation
// takes than its wall time does.
type usage struct {
	cpu      time.Duration
	switches int64
}

func processUsage() usage {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return usage{time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), ru.Nvcsw + ru.Nivcsw}
}
