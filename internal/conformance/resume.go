package conformance

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// testKillResume cuts the client's connections again and again while
// 10,000 messages flow each way: every message arrives once, in order.
func (su suite) testKillResume(t *testing.T, name string) {
	const (
		n = 10_000
		// cuts is kept to a few: the client backs off after every
		// attachment that drops soon after it began, doubling from 100 ms,
		// so each further cut mostly adds to how long the client waits.
		cuts = 6
	)
	serverGot := make(chan error, 1)
	e := su.newEnv(t, name, &session.Options{
		AckDelay: burstAckDelay,
		// On a machine loaded with every package's tests under the race
		// detector, while this server is busy sending, the first open
		// frame has taken longer than the default least attach timeout
		// (300 ms), and Dial failed. A cut makes a read fail at once, so
		// a roomier timeout costs the test nothing.
		MinClientTimeout: time.Second,
		Serve:            exchangeSequences(n, serverGot),
	})
	ctx := testContext(t, 90*time.Second)
	c := e.dial(ctx, nil)

	sendErr := make(chan error, 1)
	go func() {
		for i := range n {
			if err := c.Send(ctx, transport.Text, fmt.Appendf(nil, "up %d", i)); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- nil
	}()

	// Cut every connection at points of the downstream drawn at random, one
	// early in each of cuts stretches of it, so that every cut falls while
	// messages flow both ways; where the upstream and the server stand at
	// that moment is left to chance. Cuts are at least three quarters of a
	// stretch apart, more than the client holds received, so that each one
	// interrupts a live attachment rather than the client's backoff.
	seed := time.Now().UnixNano()
	t.Logf("cut schedule seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	const stretch = n / cuts
	var at []int
	for k := range cuts {
		at = append(at, k*stretch+rng.IntN(stretch/4))
	}
	received, made := 0, 0
	clientErr := expectSequence(ctx, n, "down", func(ctx context.Context) ([]byte, error) {
		for len(at) > 0 && at[0] == received {
			if e.net.cut() > 0 {
				made++
			}
			at = at[1:]
		}
		received++
		_, p, err := c.Recv(ctx)
		return p, err
	})
	if clientErr != nil {
		t.Fatalf("client: %v", clientErr)
	}
	if err := <-sendErr; err != nil {
		t.Fatalf("client Send: %v", err)
	}
	select {
	case err := <-serverGot:
		if err != nil {
			t.Fatalf("server: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("server did not get every message")
	}
	t.Logf("%d messages each way across %d cuts", n, made)
	if c.Transport() != name {
		t.Fatalf("transport %q after resumes, want %q", c.Transport(), name)
	}
}

// expectSequence receives n messages "<prefix> 0" … in order.
func expectSequence(ctx context.Context, n int, prefix string, recv func(context.Context) ([]byte, error)) error {
	for i := range n {
		p, err := recv(ctx)
		if err != nil {
			return fmt.Errorf("message %d: %w", i, err)
		}
		if want := fmt.Sprintf("%s %d", prefix, i); string(p) != want {
			return fmt.Errorf("got %q, want %q: lost, duplicated or reordered", p, want)
		}
	}
	return nil
}

// testShutdown shuts the server down with sessions open: every client is
// told 3001 with a reconnect hint, and Shutdown returns once delivered.
func (su suite) testShutdown(t *testing.T, name string) {
	const retry = 2 * time.Second
	e := su.newEnv(t, name, &session.Options{ShutdownRetry: retry})
	if e.srv.Handlers[0].Options().Failover {
		t.Skip("with failover, Shutdown hands the sessions over instead of closing them (the failover tests check it)")
	}
	ctx := testContext(t, 20*time.Second)
	var conns []interface {
		Recv(context.Context) (transport.MessageType, []byte, error)
	}
	for range 3 {
		conns = append(conns, e.dial(ctx, nil))
	}
	if err := e.shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, c := range conns {
		_, _, err := c.Recv(ctx)
		ce := wantClose(t, err, transport.CloseServerShutdown, "server shutting down", true)
		if ce.Retry > uint64(retry.Milliseconds()) {
			t.Fatalf("retry hint %d ms above %v", ce.Retry, retry)
		}
	}
	if n := e.sessionCount(); n != 0 {
		t.Fatalf("%d sessions left after Shutdown", n)
	}
}

// exchangeSequences is an application that sends "down 0" … "down n-1"
// while it checks that it receives "up 0" … "up n-1", exactly and in
// order, and reports that check's result on got.
func exchangeSequences(n int, got chan<- error) func(*session.Session) {
	return func(s *session.Session) {
		ctx := s.Context()
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := range n {
				if s.Send(ctx, transport.Text, fmt.Appendf(nil, "down %d", i)) != nil {
					return
				}
			}
		})
		got <- expectSequence(ctx, n, "up", func(ctx context.Context) ([]byte, error) {
			_, p, err := s.Recv(ctx)
			return p, err
		})
		wg.Wait()
		<-ctx.Done()
	}
}
