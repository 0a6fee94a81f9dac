package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/session"
)

// TestNew checks what New refuses and what it fills in.
func TestNew(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts *Options
		want string // in the error; "" for none
	}{
		{"nil", nil, "neither URL nor Client"},
		{"both", &Options{URL: "redis://127.0.0.1:1/0", Client: idleClient(t)}, "both URL and Client"},
		{"bad node", &Options{URL: "redis://127.0.0.1:1/0", Node: "a.b"}, "invalid node id"},
		{"long node", &Options{URL: "redis://127.0.0.1:1/0", Node: strings.Repeat("a", 33)}, "invalid node id"},
		{"bad URL", &Options{URL: "http://127.0.0.1:1/0"}, "URL"},
		{"short lease", &Options{URL: "redis://127.0.0.1:1/0", LeaseTTL: time.Second}, "must exceed"},
		{"defaults", &Options{URL: "redis://127.0.0.1:1/0"}, ""},
		{"client", &Options{Client: idleClient(t), Node: "n-1_A", Logger: slog.New(slog.DiscardHandler)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := New(tc.opts)
			if tc.want != "" {
				if !errContains(err, tc.want) {
					t.Fatalf("New: %v, want an error saying %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if !session.ValidNode(b.Node()) {
				t.Errorf("Node() = %q, not valid", b.Node())
			}
			if b.nodesKey != "comet:nodes" || b.inbox != "comet:node:"+b.Node() {
				t.Errorf("keys %q %q, want them under comet:", b.nodesKey, b.inbox)
			}
			if err := b.Err(); !errors.Is(err, session.ErrBrokerUnavailable) {
				t.Errorf("Err before Start = %v, want ErrBrokerUnavailable", err)
			}
		})
	}
}

// TestMessaging has two, then three, brokers on one Redis send to each
// other and to themselves from one goroutine per (sender, destination),
// and checks every message arrives once, in its sender's order.
func TestMessaging(t *testing.T) {
	t.Parallel()
	for _, n := range []int{2, 3} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			t.Parallel()
			bs, recs := startN(t, startRedis(t), n, Options{})
			const per = 300
			var wg sync.WaitGroup
			errs := make(chan error, n*n)
			for _, from := range bs {
				for _, to := range bs {
					wg.Go(func() {
						for k := range per {
							msg := fmt.Sprintf("%s %d", from.Node(), k)
							if err := from.Send(context.Background(), to.Node(), []byte(msg)); err != nil {
								errs <- err
								return
							}
						}
					})
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			for i, rec := range recs {
				next := map[string]int{}
				for range n * per {
					m := recv(t, rec.msgs, 10*time.Second, "message")
					from, k, _ := strings.Cut(m, " ")
					if k != strconv.Itoa(next[from]) {
						t.Fatalf("node %d got %q after %d from %s", i, m, next[from], from)
					}
					next[from]++
				}
				if len(rec.msgs) != 0 || rec.dropped.Load() != 0 {
					t.Fatalf("node %d got %d more messages, dropped %d", i, len(rec.msgs), rec.dropped.Load())
				}
			}
		})
	}
}

// TestCloseWithdraws closes one of three brokers whose leases last an
// hour: the others hear it gone, which only the withdrawal can explain.
func TestCloseWithdraws(t *testing.T) {
	t.Parallel()
	bs, recs := startN(t, startRedis(t), 3, Options{LeaseTTL: time.Hour})
	gone := bs[2]
	if err := gone.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if got := recv(t, recs[i].gone, 10*time.Second, "NodeGone"); got != gone.Node() {
			t.Fatalf("broker %d: NodeGone(%q), want %q", i, got, gone.Node())
		}
		if bs[i].Alive(gone.Node()) {
			t.Errorf("broker %d: Alive(%s) after its NodeGone", i, gone.Node())
		}
		if !bs[i].Alive(bs[1-i].Node()) {
			t.Errorf("broker %d: the other live node not Alive", i)
		}
	}
	if err := gone.Err(); !errors.Is(err, session.ErrBrokerUnavailable) {
		t.Errorf("Err after Close = %v", err)
	}
	if err := gone.Send(context.Background(), bs[0].Node(), []byte("x")); err == nil {
		t.Error("Send after Close succeeded")
	}
	if gone.Alive(gone.Node()) {
		t.Error("a closed broker says itself alive")
	}
	if err := gone.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestLapsedLease stops one broker's refresh without closing it, as a
// hung node would: the others hear it gone once its lease lapses, within
// LeaseTTL + Refresh + OpTimeout (and a margin for a loaded machine), and
// once only; it comes back when it refreshes again.
func TestLapsedLease(t *testing.T) {
	t.Parallel()
	bs, recs := startN(t, startRedis(t), 3, Options{})
	hung := bs[2]
	hung.paused.Store(true)
	stopped := time.Now()
	bound := testTTL + testRefresh + testOpTimeout + 2*time.Second
	for i := range 2 {
		if got := recv(t, recs[i].gone, bound-time.Since(stopped), "NodeGone"); got != hung.Node() {
			t.Fatalf("broker %d: NodeGone(%q), want %q", i, got, hung.Node())
		}
		if bs[i].Alive(hung.Node()) {
			t.Errorf("broker %d: Alive(%s) after its NodeGone", i, hung.Node())
		}
	}
	hung.paused.Store(false)
	waitUntil(t, "the hung node alive again", func() bool {
		return bs[0].Alive(hung.Node()) && bs[1].Alive(hung.Node())
	})
	for i := range 2 {
		if n := len(recs[i].gone); n != 0 {
			t.Errorf("broker %d: %d more NodeGone for one disappearance", i, n)
		}
	}
	flows(t, bs[0], hung, recs[2])
}

// TestInOrder sends 10,000 messages from one goroutine to another node
// and checks they all arrive, in order.
func TestInOrder(t *testing.T) {
	t.Parallel()
	bs, recs := startN(t, startRedis(t), 2, Options{})
	const n = 10_000
	sent := make(chan error, 1)
	go func() {
		for k := range n {
			if err := bs[0].Send(context.Background(), bs[1].Node(), []byte(strconv.Itoa(k))); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	defer func() {
		if err := <-sent; err != nil {
			t.Error(err)
		}
	}()
	for k := range n {
		if m := recv(t, recs[1].msgs, 10*time.Second, "message "+strconv.Itoa(k)); m != strconv.Itoa(k) {
			t.Fatalf("message %d is %q", k, m)
		}
	}
	if len(recs[1].msgs) != 0 || recs[1].dropped.Load() != 0 {
		t.Fatalf("%d more messages, %d dropped", len(recs[1].msgs), recs[1].dropped.Load())
	}
}

// TestConnections sends from 20 goroutines of each of two brokers whose
// URL sets pool_size=2: each holds at most its pool, its lease's
// connection and its subscriber connection, however many Sends wait.
func TestConnections(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	var bs []*Broker
	var recs []*recorder
	for range 2 {
		b, rec := start(t, Options{URL: redisURL(r) + "?pool_size=2"})
		bs, recs = append(bs, b), append(recs, rec)
	}
	waitUntil(t, "both alive", func() bool { return bs[0].Alive(bs[1].Node()) && bs[1].Alive(bs[0].Node()) })
	const senders, per = 20, 100
	var wg sync.WaitGroup
	errs := make(chan error, 2*senders)
	for i, b := range bs {
		for range senders {
			wg.Go(func() {
				for range per {
					if err := b.Send(context.Background(), bs[1-i].Node(), []byte("m")); err != nil {
						errs <- err
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	list, err := admin(t, r).ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	n := strings.Count(list, "\n") - 1 // less the admin's own
	t.Logf("%d connections", n)
	if n > 2*(2+2) { // each: its pool, the lease's connection, the subscriber
		t.Errorf("%d connections of two brokers with pool_size=2:\n%s", n, list)
	}
	for i, rec := range recs {
		for range senders * per {
			recv(t, rec.msgs, 10*time.Second, "message")
		}
		if rec.dropped.Load() != 0 {
			t.Errorf("broker %d dropped %d", i, rec.dropped.Load())
		}
	}
}
