package client_test

import (
	"context"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/internal/faultproxy"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// blockWebSocket refuses WebSocket upgrades while blocked is set.
func blockWebSocket(blocked *atomic.Bool) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/comet/websocket" && blocked.Load() {
				transport.WriteError(w, http.StatusServiceUnavailable, transport.ErrorBody{Code: "blocked", Message: "no WebSocket now"}, 0)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
}

// TestUpgrade refuses WebSocket at first, so that the client falls back
// to each other transport in turn, then lets it through while messages
// flow both ways: a background probe finds WebSocket working, and the
// session moves onto it (reason "upgraded") with every message echoed
// once, in order. With compression asked for at both ends, the probe's
// handshake agrees to it too.
func TestUpgrade(t *testing.T) {
	for _, tc := range []struct {
		name, fallback string
		compression    *transport.Compression
	}{
		{transport.SSE, transport.SSE, nil},
		{transport.Streaming, transport.Streaming, nil},
		{transport.LongPoll, transport.LongPoll, nil},
		{"longpoll, compressed", transport.LongPoll, &transport.Compression{}},
	} {
		fallback := tc.fallback
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			var blocked atomic.Bool
			blocked.Store(true)
			srv := newServer(t, session.Options{Serve: echo, Compression: tc.compression}, blockWebSocket(&blocked))
			changes := make(chan [3]string, 8)
			upgraded := make(chan struct{})
			c, err := client.Dial(ctx, srv.url, &client.Options{
				Transports:   []string{transport.WebSocket, fallback},
				Compression:  tc.compression,
				UpgradeDelay: 100 * time.Millisecond,
				OnTransport: func(from, to, reason string) {
					changes <- [3]string{from, to, reason}
					if to == transport.WebSocket && from != "" {
						close(upgraded)
					}
				},
			})
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer c.Close(transport.CloseNormal, "")
			if got, want := <-changes, [3]string{transport.WebSocket, fallback, "ws_refused"}; got != want {
				t.Fatalf("OnTransport%q, want %q", got, want)
			}

			// The sender runs until the upgrade is done and then sends 100
			// more; it says how many it sent in all.
			total := make(chan int, 1)
			var received atomic.Int64
			go func() {
				n := 0
				defer func() { total <- n }()
				after := -1
				for ; n != after && n < 1_000_000; n++ {
					if n == 50 {
						blocked.Store(false)
					}
					if after < 0 {
						select {
						case <-upgraded:
							after = n + 100
							t.Logf("upgraded after %d sent, %d received", n, received.Load())
						default:
						}
					}
					if err := c.Send(ctx, transport.Text, []byte(fmt.Sprint(n))); err != nil {
						t.Errorf("Send(%d): %v", n, err)
						return
					}
				}
			}()
			want := -1
			for i := 0; i != want; i++ {
				_, p, err := c.Recv(ctx)
				if err != nil {
					t.Fatalf("Recv, want %d: %v", i, err)
				}
				received.Add(1)
				if string(p) != fmt.Sprint(i) {
					t.Fatalf("Recv = %q, want %d", p, i)
				}
				if want < 0 {
					select {
					case want = <-total:
					default:
					}
				}
			}
			if got, want := <-changes, [3]string{fallback, transport.WebSocket, "upgraded"}; got != want {
				t.Fatalf("OnTransport%q, want %q", got, want)
			}
			if c.Transport() != transport.WebSocket {
				t.Fatalf("Transport() = %q, want websocket", c.Transport())
			}
			t.Logf("%s: %d messages echoed across the upgrade", fallback, want)
		})
	}
}

// TestUpgradeProbeFails puts the client behind a proxy that answers every
// WebSocket upgrade and then drops its bytes: the client falls back to
// SSE, and its background probes of WebSocket fail without disturbing the
// session, which stays on SSE.
func TestUpgradeProbeFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	srv := newServer(t, session.Options{Serve: echo}, nil)
	const probes = 3
	var upgrades atomic.Int32
	probed := make(chan struct{})
	proxy, err := faultproxy.Start(strings.TrimSuffix(srv.url, "/comet"), &faultproxy.Options{
		Upgrade: faultproxy.UpgradeBlackHole,
		OnUpgrade: func(faultproxy.Upgrade) {
			if upgrades.Add(1) == 1+probes { // Dial's attach, then the probes
				close(probed)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	c, err := client.Dial(ctx, proxy.URL()+"/comet", &client.Options{UpgradeDelay: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close(transport.CloseNormal, "")
	msgs := numbered(6)
	exchange(t, ctx, c, msgs, 0, 3)
	select {
	case <-probed:
	case <-ctx.Done():
		t.Fatalf("%d WebSocket upgrades seen, want %d", upgrades.Load(), 1+probes)
	}
	exchange(t, ctx, c, msgs, 3, 6)
	if c.Transport() != transport.SSE {
		t.Fatalf("Transport() = %q, want sse", c.Transport())
	}
}

// TestBufferedStreamSkipsToLongPoll puts the client behind a proxy that
// refuses WebSocket and holds every response until it ends: SSE's open
// frame never comes, and the client goes from SSE to long-polling at
// once, past XHR streaming, which the same proxy would hold back too.
func TestBufferedStreamSkipsToLongPoll(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var mu sync.Mutex
	var attaches []string
	record := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if name := path.Base(r.URL.Path); name != "negotiate" && name != "send" {
				mu.Lock()
				attaches = append(attaches, name)
				mu.Unlock()
			}
			next.ServeHTTP(w, r)
		})
	}
	srv := newServer(t, session.Options{Serve: echo, MinClientTimeout: 100 * time.Millisecond}, record)
	proxy, err := faultproxy.Start(strings.TrimSuffix(srv.url, "/comet"), &faultproxy.Options{Upgrade: faultproxy.UpgradeRefuse, Buffer: true})
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	ch := make(changes, 4)
	c, err := client.Dial(ctx, proxy.URL()+"/comet", &client.Options{UpgradeDelay: -1, OnTransport: ch.record})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close(transport.CloseNormal, "")
	ch.expect(t, ctx, [3]string{transport.SSE, transport.LongPoll, "stream_buffered"})
	exchange(t, ctx, c, numbered(4), 0, 4)
	mu.Lock()
	defer mu.Unlock()
	if slices.Contains(attaches, transport.Streaming) {
		t.Errorf("server: attaches %v; want none by XHR streaming after SSE was held back", attaches)
	}
}
