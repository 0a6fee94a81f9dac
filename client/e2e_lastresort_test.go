package client_test

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// slowAttachTimeout is the attach timeout the servers of these tests give
// their clients: minTimeout and maxTimeout both.
const slowAttachTimeout = 50 * time.Millisecond

// delayAttaches holds each attach GET for the duration delay returns
// before the server sees it: a server too busy to answer within the
// client's attach timeout. Negotiate and POSTs pass at once.
func delayAttaches(delay func() time.Duration) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && !strings.HasSuffix(r.URL.Path, "/negotiate") {
				t := time.NewTimer(delay())
				select {
				case <-t.C:
				case <-r.Context().Done():
					t.Stop()
					return
				}
			}
			h.ServeHTTP(w, r)
		})
	}
}

// TestForcedSlowAttach delays every attach to ten times the client's
// attach timeout: a forced transport has nothing to fall back to, so it
// waits for the open frame (up to Options.LastResortTimeout) and the
// session works, where it used to fail Dial with 3004.
func TestForcedSlowAttach(t *testing.T) {
	runTransports(t, func(t *testing.T, name string) {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		srv := newServer(t, session.Options{Serve: echo, MinClientTimeout: slowAttachTimeout, MaxClientTimeout: slowAttachTimeout},
			delayAttaches(func() time.Duration { return 10 * slowAttachTimeout }))
		c := dial(t, ctx, srv.url, name, nil)
		exchange(t, ctx, c, numbered(3), 0, 3)
	})
}

// TestLastResortTimeout delays every attach past Options.LastResortTimeout:
// the forced transport gives up then, and Dial fails with 3004.
func TestLastResortTimeout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	release := make(chan struct{})
	defer close(release)
	srv := newServer(t, session.Options{Serve: echo, MinClientTimeout: slowAttachTimeout, MaxClientTimeout: slowAttachTimeout,
		Grace: 100 * time.Millisecond}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/comet/longpoll" {
				select { // held until the test ends or the client gives up
				case <-release:
				case <-r.Context().Done():
				}
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	start := time.Now()
	_, err := client.Dial(ctx, srv.url, &client.Options{Transports: []string{transport.LongPoll},
		LastResortTimeout: 200 * time.Millisecond})
	if transport.CloseStatus(err) != transport.CloseUnreachable {
		t.Fatalf("Dial = %v, want a CloseError 3004", err)
	}
	t.Logf("Dial gave up after %v", time.Since(start))
}

// TestForcedDialFailureRate dials forced transports while every attach is
// held for a random time in [0, 3×) the attach timeout, as a loaded server
// answers, and counts the Dials that fail. Every Dial must succeed: before
// forced transports waited past the attach timeout, about two in three of
// them failed with 3004 here.
func TestForcedDialFailureRate(t *testing.T) {
	const dials = 20
	runTransports(t, func(t *testing.T, name string) {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		var mu sync.Mutex
		late := 0
		srv := newServer(t, session.Options{Serve: echo, MinClientTimeout: slowAttachTimeout, MaxClientTimeout: slowAttachTimeout,
			Grace: 200 * time.Millisecond}, delayAttaches(func() time.Duration {
			d := time.Duration(rand.Int64N(int64(3 * slowAttachTimeout)))
			if d > slowAttachTimeout {
				mu.Lock()
				late++
				mu.Unlock()
			}
			return d
		}))
		var wg sync.WaitGroup
		failed := make(chan error, dials)
		for range dials {
			wg.Go(func() {
				c, err := client.Dial(ctx, srv.url, &client.Options{Transports: []string{name}})
				if err != nil {
					failed <- err
					return
				}
				if err := c.Close(transport.CloseNormal, ""); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
		}
		wg.Wait()
		close(failed)
		n := 0
		for err := range failed {
			n++
			t.Logf("Dial: %v", err)
		}
		mu.Lock()
		t.Logf("%s: %d of %d forced dials failed (%.0f%%); %d attaches were held past the attach timeout of %v",
			name, n, dials, 100*float64(n)/dials, late, slowAttachTimeout)
		mu.Unlock()
		if n > 0 {
			t.Errorf("%d of %d forced dials failed, want none", n, dials)
		}
	})
}
