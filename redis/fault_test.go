package redis

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/seed-544bbf9f/comet/internal/leakcheck"
	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/session"
)

// unavailableWithin waits until b.Err wraps ErrBrokerUnavailable, and
// fails the test if that takes longer than bound.
func unavailableWithin(t *testing.T, b *Broker, since time.Time, bound time.Duration) {
	t.Helper()
	waitUntil(t, "Err non-nil", func() bool { return b.Err() != nil })
	if d := time.Since(since); d > bound {
		t.Errorf("Err non-nil %v after the fault, want at most %v", d, bound)
	}
	if err := b.Err(); err != nil && !errors.Is(err, session.ErrBrokerUnavailable) {
		t.Errorf("Err = %v, not ErrBrokerUnavailable", err)
	}
}

// TestRedisRestart shuts Redis down, with no save, and starts it again
// on the same port, empty: the same brokers report it unavailable, then
// reachable again, and carry messages again. The restart takes less than
// the lease, so no node is reported gone, though Redis forgot them all.
func TestRedisRestart(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	bs, recs := startN(t, r, 2, Options{LeaseTTL: 10 * time.Second})
	flows(t, bs[0], bs[1], recs[1])

	// go-redis takes the connection closing as SHUTDOWN's success;
	// Err going non-nil below is the real check.
	if err := admin(t, r).ShutdownNoSave(context.Background()).Err(); err != nil {
		t.Fatalf("SHUTDOWN NOSAVE: %v", err)
	}
	down := time.Now()
	for _, b := range bs {
		// The next refresh, at most Refresh away, fails within
		// OpTimeout; the subscriber's read fails at once.
		unavailableWithin(t, b, down, testRefresh+testOpTimeout+time.Second)
	}
	if err := bs[0].Send(context.Background(), bs[1].Node(), []byte("lost")); !errors.Is(err, session.ErrBrokerUnavailable) {
		t.Errorf("Send with Redis down: %v", err)
	}

	_, port, _ := net.SplitHostPort(r.Addr)
	p, _ := strconv.Atoi(port)
	r2 := testutil.StartRedisOn(t, p, "--maxmemory-policy", "noeviction")
	waitUntil(t, "both nodes in the new server's registry", func() bool {
		n, _ := admin(t, r2).ZCard(context.Background(), "comet:nodes").Result()
		return n == 2
	})
	// Each broker's first refresh with the new server, which found the
	// registry empty but for itself, has ended once two more have.
	for i, b := range bs {
		n := b.refreshes.Load()
		waitUntil(t, "two more refreshes", func() bool { return b.refreshes.Load() >= n+2 })
		if err := b.Err(); err != nil {
			t.Errorf("broker %d: Err = %v", i, err)
		}
		if !b.Alive(bs[1-i].Node()) {
			t.Errorf("broker %d: the other node not alive", i)
		}
	}
	flows(t, bs[0], bs[1], recs[1])
	flows(t, bs[1], bs[0], recs[0])
	for i, rec := range recs {
		if n := len(rec.gone); n != 0 {
			t.Errorf("broker %d: %d NodeGone for a Redis restart", i, n)
		}
	}
}

// TestSubscriberKilled kills the subscribers' connections: go-redis
// reconnects and subscribes again, and messages flow again.
func TestSubscriberKilled(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	bs, recs := startN(t, r, 2, Options{})
	flows(t, bs[0], bs[1], recs[1])
	n, err := admin(t, r).ClientKillByFilter(context.Background(), "TYPE", "pubsub").Result()
	if err != nil || n != 2 {
		t.Fatalf("CLIENT KILL TYPE pubsub: %d, %v; want 2 killed", n, err)
	}
	flows(t, bs[0], bs[1], recs[1])
	flows(t, bs[1], bs[0], recs[0])
	waitUntil(t, "Err nil", func() bool { return bs[0].Err() == nil && bs[1].Err() == nil })
}

// TestClientPause pauses every client of Redis for 3 s: a Send with no
// deadline of its own fails within OpTimeout rather than waiting the
// pause out, Err says Redis is unavailable, and both recover after.
func TestClientPause(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	bs, recs := startN(t, r, 2, Options{})
	if err := admin(t, r).Do(context.Background(), "CLIENT", "PAUSE", "3000", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	err := bs[0].Send(context.Background(), bs[1].Node(), []byte("paused"))
	took := time.Since(paused)
	if !errors.Is(err, session.ErrBrokerUnavailable) {
		t.Fatalf("Send during CLIENT PAUSE: %v", err)
	}
	// The pause is 3 s; a Send bounded by OpTimeout (300 ms) ends long
	// before it, even on a slow machine.
	if took > 2*time.Second {
		t.Errorf("Send took %v during a 3 s pause, OpTimeout %v", took, testOpTimeout)
	}
	unavailableWithin(t, bs[0], paused, testRefresh+testOpTimeout+time.Second)
	waitUntil(t, "Err nil after the pause", func() bool { return bs[0].Err() == nil && bs[1].Err() == nil })
	flows(t, bs[0], bs[1], recs[1])
}

// TestCloseStopsEverything checks that Close ends every goroutine of a
// Broker: started, never started, and started with Redis unreachable.
// It runs alone (not parallel) for leakcheck.Check.
func TestCloseStopsEverything(t *testing.T) {
	leakcheck.Check(t)
	r := startRedis(t)
	t.Run("started", func(t *testing.T) {
		bs, _ := startN(t, r, 1, Options{})
		if err := bs[0].Close(); err != nil {
			t.Fatal(err)
		}
		// Close leaves a withdrawal mark (a negative score) for a lease's
		// length, and no lease.
		if n, err := admin(t, r).ZCount(context.Background(), "comet:nodes", "0", "+inf").Result(); err != nil || n != 0 {
			t.Errorf("%d leases left after Close, %v", n, err)
		}
	})
	t.Run("not started", func(t *testing.T) {
		b, err := New(&Options{URL: redisURL(r)})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		b.Start(newRecorder()) // after Close: does nothing
	})
	t.Run("unreachable", func(t *testing.T) {
		port, err := testutil.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := start(t, Options{URL: "redis://127.0.0.1:" + strconv.Itoa(port) + "/0"})
		waitUntil(t, "Err says why", func() bool { return errContains(b.Err(), "connection refused") })
		if err := b.Close(); err == nil {
			t.Error("Close withdrew a lease from no Redis")
		}
	})
	t.Run("client", func(t *testing.T) {
		c := goredis.NewClient(&goredis.Options{Addr: r.Addr, ContextTimeoutEnabled: true})
		defer c.Close()
		b, _ := start(t, Options{Client: c})
		waitUntil(t, "Err nil", func() bool { return b.Err() == nil })
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if err := c.Ping(context.Background()).Err(); err != nil {
			t.Errorf("the Client passed in was closed: %v", err)
		}
	})
}
