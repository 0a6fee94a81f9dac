package comet_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/client"
)

// BenchmarkEcho times a round trip of a 33-byte message, client and server
// in this process: Comet's Go client and handler on each transport, beside
// a gorilla/websocket client and echo server. The figures are of the whole
// exchange, both ends' CPU and their hand-offs; the bench harness
// (docs/BENCHMARKS.md) measures them apart, in separate processes.
func BenchmarkEcho(b *testing.B) {
	msg := []byte(strings.Repeat("x", 33))
	for _, name := range []string{comet.WebSocket, comet.LongPoll, comet.SSE} {
		b.Run(name, func(b *testing.B) {
			h := comet.NewHandler(&comet.Options{Logger: quiet, Serve: func(s *comet.Session) {
				ctx := s.Context()
				for {
					typ, p, err := s.Recv(ctx)
					if err != nil || s.Send(ctx, typ, p) != nil {
						return
					}
				}
			}})
			mux := http.NewServeMux()
			mux.Handle("/comet/", h)
			srv := httptest.NewServer(mux)
			defer srv.Close()
			defer h.Shutdown(context.Background())
			ctx := context.Background()
			c, err := client.Dial(ctx, srv.URL+"/comet", &client.Options{Transports: []string{name}})
			if err != nil {
				b.Fatal(err)
			}
			defer c.CloseNow()
			b.ReportAllocs()
			cpu := processCPU()
			b.ResetTimer()
			for range b.N {
				if err := c.Send(ctx, comet.Text, msg); err != nil {
					b.Fatal(err)
				}
				if _, _, err := c.Recv(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			reportCPU(b, cpu)
		})
	}
	b.Run("raw-websocket", func(b *testing.B) {
		up := websocket.Upgrader{}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer conn.Close()
			for {
				typ, p, err := conn.ReadMessage()
				if err != nil || conn.WriteMessage(typ, p) != nil {
					return
				}
			}
		}))
		defer srv.Close()
		conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		b.ReportAllocs()
		cpu := processCPU()
		b.ResetTimer()
		for range b.N {
			if err := conn.WriteMessage(websocket.TextMessage, msg); err != nil {
				b.Fatal(err)
			}
			if _, _, err := conn.ReadMessage(); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		reportCPU(b, cpu)
	})
}

// usage is this process's CPU time, user and system, and its context
// switches: on a busy machine they say more about the work a round trip
// takes than its wall time does.
type usage struct {
	cpu      time.Duration
	switches int64
}

func processCPU() usage {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return usage{time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), ru.Nvcsw + ru.Nivcsw}
}

// reportCPU reports the CPU time and context switches per round trip
// since before.
func reportCPU(b *testing.B, before usage) {
	now := processCPU()
	b.ReportMetric(float64(now.cpu-before.cpu)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(now.switches-before.switches)/float64(b.N), "switches/op")
}

// BenchmarkConnect times opening a session forced onto WebSocket and
// closing it at once, client and server in this process, beside a
// gorilla/websocket dial and close: what a connect storm costs per
// session.
func BenchmarkConnect(b *testing.B) {
	b.Run("websocket", func(b *testing.B) {
		// Sessions a client dropped wait out their grace period: the
		// per-address limits would refuse the benchmark's thousands.
		h := comet.NewHandler(&comet.Options{Logger: quiet, NegotiateRate: -1, MaxSessionsPerAddress: 1 << 30,
			Serve: func(s *comet.Session) { s.Recv(s.Context()) }})
		mux := http.NewServeMux()
		mux.Handle("/comet/", h)
		srv := httptest.NewServer(mux)
		defer srv.Close()
		defer h.Shutdown(context.Background())
		ctx := context.Background()
		opts := &client.Options{Transports: []string{comet.WebSocket}}
		b.ReportAllocs()
		cpu := processCPU()
		b.ResetTimer()
		for range b.N {
			c, err := client.Dial(ctx, srv.URL+"/comet", opts)
			if err != nil {
				b.Fatal(err)
			}
			c.CloseNow()
		}
		b.StopTimer()
		reportCPU(b, cpu)
	})
	b.Run("raw-websocket", func(b *testing.B) {
		up := websocket.Upgrader{}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			conn.ReadMessage()
			conn.Close()
		}))
		defer srv.Close()
		u := "ws" + strings.TrimPrefix(srv.URL, "http")
		b.ReportAllocs()
		cpu := processCPU()
		b.ResetTimer()
		for range b.N {
			conn, _, err := websocket.DefaultDialer.Dial(u, nil)
			if err != nil {
				b.Fatal(err)
			}
			conn.Close()
		}
		b.StopTimer()
		reportCPU(b, cpu)
	})
}

// BenchmarkPush times the delivery of a 33-byte message the server
// application sends in a loop, client and server in this process: batching
// is what Comet's push figures rest on.
func BenchmarkPush(b *testing.B) {
	msg := []byte(strings.Repeat("x", 33))
	for _, name := range []string{comet.WebSocket, comet.SSE} {
		b.Run(name, func(b *testing.B) {
			h := comet.NewHandler(&comet.Options{Logger: quiet, Serve: func(s *comet.Session) {
				ctx := s.Context()
				for s.Send(ctx, comet.Text, msg) == nil {
				}
			}})
			mux := http.NewServeMux()
			mux.Handle("/comet/", h)
			srv := httptest.NewServer(mux)
			defer srv.Close()
			defer h.Shutdown(context.Background())
			ctx := context.Background()
			c, err := client.Dial(ctx, srv.URL+"/comet", &client.Options{Transports: []string{name}})
			if err != nil {
				b.Fatal(err)
			}
			defer c.CloseNow()
			b.ReportAllocs()
			cpu := processCPU()
			b.ResetTimer()
			for range b.N {
				if _, _, err := c.Recv(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			reportCPU(b, cpu)
		})
	}
}

// BenchmarkFanOut times a broadcast reaching 100 idle WebSocket sessions,
// client and server in this process, beside a gorilla hub loop writing a
// PreparedMessage to 100 gorilla clients; per delivery.
func BenchmarkFanOut(b *testing.B) {
	const n = 100
	msg := []byte(strings.Repeat("x", 33))
	b.Run("websocket", func(b *testing.B) {
		h := comet.NewHandler(&comet.Options{Logger: quiet, NegotiateRate: -1,
			Serve: func(s *comet.Session) { <-s.Context().Done() }})
		mux := http.NewServeMux()
		mux.Handle("/comet/", h)
		srv := httptest.NewServer(mux)
		defer srv.Close()
		defer h.Shutdown(context.Background())
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		got := make(chan struct{}, n)
		for range n {
			c, err := client.Dial(ctx, srv.URL+"/comet", &client.Options{Transports: []string{comet.WebSocket}})
			if err != nil {
				b.Fatal(err)
			}
			defer c.CloseNow()
			go func() {
				for {
					if _, _, err := c.Recv(ctx); err != nil {
						return
					}
					got <- struct{}{}
				}
			}()
		}
		m, err := h.NewPreparedMessage(comet.Text, msg)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		cpu := processCPU()
		b.ResetTimer()
		for range b.N / n {
			h.Broadcast(m)
			for range n {
				<-got
			}
		}
		b.StopTimer()
		reportCPU(b, cpu)
	})
	b.Run("raw-websocket", func(b *testing.B) {
		up := websocket.Upgrader{}
		conns := make(chan *websocket.Conn, n)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			conns <- conn
			conn.ReadMessage() // until the client goes
			conn.Close()
		}))
		defer srv.Close()
		got := make(chan struct{}, n)
		var hub []*websocket.Conn
		for range n {
			conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			go func() {
				for {
					if _, _, err := conn.ReadMessage(); err != nil {
						return
					}
					got <- struct{}{}
				}
			}()
			hub = append(hub, <-conns)
		}
		pm, err := websocket.NewPreparedMessage(websocket.TextMessage, msg)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		cpu := processCPU()
		b.ResetTimer()
		for range b.N / n {
			for _, c := range hub {
				c.WritePreparedMessage(pm)
			}
			for range n {
				<-got
			}
		}
		b.StopTimer()
		reportCPU(b, cpu)
	})
}
