package comet_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet"

	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/internal/conformance"
	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// nodeIndex returns the index in mc of the node that made session id.
func nodeIndex(t *testing.T, mc *memCluster, id string) int {
	t.Helper()
	node, _, ok := strings.Cut(id, ".")
	if !ok {
		t.Fatalf("session id %q names no node", id)
	}
	for i, n := range mc.nodes {
		if n.Node() == node {
			return i
		}
	}
	t.Fatalf("session id %q names an unknown node", id)
	return -1
}

// kill stops node i as a kill -9 would, as far as one process can: the
// balancer sends it nothing more, it accepts no connection, those it had
// are cut, and its broker and the logs are out of its reach, so that
// nothing it still tries lands.
func (mc *memCluster) kill(i int) {
	mc.out[i].Store(true)
	mc.nodes[i].Close()
	mc.conns[i].Cut()
}

// TestFailoverKillOwner kills the node that owns a session amid traffic,
// on every transport: the session goes on, on another node, with the
// same id and no close; every message is echoed, in order; the new Serve
// is marked resumed; and the log of the session is gone once it closes.
func TestFailoverKillOwner(t *testing.T) {
	runTransports(t, func(t *testing.T, name string) {
		app := conformance.NewEchoApp()
		mc := newMemCluster(t, 3, &session.Options{Failover: true, Serve: app.Serve})
		ctx := testContext(t, 3*testutil.Wait)
		var transports atomic.Int64
		c, err := client.Dial(ctx, mc.url, &client.Options{Transports: []string{name},
			OnTransport: func(from, to, reason string) { transports.Add(1) }})
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		id := c.SessionID()
		owner := nodeIndex(t, mc, id)
		const n = 600
		dups := conformance.EchoThrough(t, ctx, c, n, func(k int) {
			if k == n/3 {
				mc.kill(owner)
			}
		})
		if got := c.SessionID(); got != id {
			t.Errorf("session id %q after the takeover, want %q", got, id)
		}
		if got := app.Resumed(); got != 1 {
			t.Errorf("%d Serves resumed, want 1", got)
		}
		skipped := app.Skipped()
		t.Logf("%s: owner n%d killed after %d echoes; %d echoes twice at the client, %d redelivered messages skipped by the application",
			name, owner+1, n/3, dups, skipped)
		if dups > 1 {
			t.Errorf("%d echoes came twice: more than the one a kill between a Send and the application's record of it allows", dups)
		}
		if err := c.Close(transport.CloseNormal, "done"); err != nil {
			t.Fatalf("Close: %v", err)
		}
		select {
		case <-c.Done():
		case <-ctx.Done():
			t.Fatal("close not completed")
		}
		for i, h := range mc.handlers {
			if i == owner {
				continue
			}
			if s := h.Session(id); s != nil {
				testutil.Receive(t, s.Done(), "the session's end")
			}
		}
		if got := mc.cluster.Logs(); got != 0 {
			t.Errorf("%d session logs kept after the session ended, want 0", got)
		}
	})
}

// TestFailoverShutdownHandsOver shuts the session's node down amid
// traffic: the session is handed over, its client sees no close, and
// nothing is lost.
func TestFailoverShutdownHandsOver(t *testing.T) {
	runTransports(t, func(t *testing.T, name string) {
		app := conformance.NewEchoApp()
		mc := newMemCluster(t, 3, &session.Options{Failover: true, Serve: app.Serve})
		ctx := testContext(t, 3*testutil.Wait)
		c, err := client.Dial(ctx, mc.url, &client.Options{Transports: []string{name}})
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		defer c.CloseNow()
		owner := nodeIndex(t, mc, c.SessionID())
		const n = 600
		shut := make(chan error, 1)
		dups := conformance.EchoThrough(t, ctx, c, n, func(k int) {
			if k == n/3 {
				mc.out[owner].Store(true)
				go func() { shut <- mc.handlers[owner].Shutdown(ctx) }()
			}
		})
		if err := <-shut; err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if got := app.Resumed(); got != 1 {
			t.Errorf("%d Serves resumed, want 1", got)
		}
		if err := <-app.Ends; !isCloseCode(err, transport.CloseGoingAway) {
			t.Errorf("the first Serve ended with %v, want the hand-over (1001)", err)
		}
		t.Logf("%s: %d echoes twice", name, dups)
		if dups > 1 {
			t.Errorf("%d echoes came twice", dups)
		}
	})
}

// TestFailoverFencesPausedOwner cuts the session's owner off from the
// broker past its lease, as a kill -STOP does, while its client goes on
// through the other nodes; when it comes back it learns its lease lapsed
// and gives the session up: its Serve sees the end, and it writes
// nothing more to the client or the log.
func TestFailoverFencesPausedOwner(t *testing.T) {
	app := conformance.NewEchoApp()
	mc := newMemCluster(t, 3, &session.Options{Failover: true, Serve: app.Serve})
	ctx := testContext(t, 3*testutil.Wait)
	c, err := client.Dial(ctx, mc.url, &client.Options{Transports: []string{transport.LongPoll}})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.CloseNow()
	owner := nodeIndex(t, mc, c.SessionID())
	old := mc.handlers[owner].Session(c.SessionID())
	const n = 400
	dups := conformance.EchoThrough(t, ctx, c, n, func(k int) {
		switch k {
		case n / 4:
			mc.out[owner].Store(true)
			mc.nodes[owner].SetDown(true)
			mc.servers[owner].CloseClientConnections()
		case n / 2:
			mc.nodes[owner].SetDown(false)
		}
	})
	select {
	case err := <-app.Ends:
		if !isCloseCode(err, transport.CloseGoingAway) {
			t.Errorf("the paused owner's Serve ended with %v, want the takeover's end (1001)", err)
		}
	case <-ctx.Done():
		t.Fatal("the paused owner's Serve never ended")
	}
	if got := app.Resumed(); got != 1 {
		t.Errorf("%d Serves resumed, want 1", got)
	}
	testutil.Receive(t, old.Done(), "the paused owner's copy of the session ending")
	if mc.handlers[owner].Session(c.SessionID()) != nil {
		t.Error("the paused owner still holds the session")
	}
	if dups > 1 {
		t.Errorf("%d echoes came twice", dups)
	}
}

func isCloseCode(err error, code transport.CloseCode) bool {
	var ce *transport.CloseError
	return errors.As(err, &ce) && ce.Code == code
}

// TestFailoverOrphansSwept loses every node of a session's cluster while
// its client is away for good, then starts a fresh node: it finds the
// session's log, takes the session over, and, its client never coming
// back, ends it at its grace period, and its log with it: no log
// outlives its session, whichever nodes are left.
func TestFailoverOrphansSwept(t *testing.T) {
	app := conformance.NewEchoApp()
	opts := &session.Options{Failover: true, Serve: app.Serve, Heartbeat: time.Second, Grace: time.Second}
	mc := newMemCluster(t, 3, opts)
	ctx := testContext(t, testutil.Wait)
	c, err := client.Dial(ctx, mc.url, &client.Options{Transports: []string{transport.LongPoll}})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	conformance.EchoThrough(t, ctx, c, 5, func(int) {})
	id := c.SessionID()
	// The owner dies last: a survivor that saw it die would take the
	// session over before its own turn came.
	owner := nodeIndex(t, mc, id)
	for i := range mc.nodes {
		if i != owner {
			mc.kill(i)
		}
	}
	mc.kill(owner)
	c.CloseNow() // its pending requests fail: the client is gone
	if got := mc.cluster.Logs(); got != 1 {
		t.Fatalf("%d session logs with every node dead, want 1", got)
	}

	ended := make(chan string, 1)
	o := *opts
	o.Broker = mc.cluster.Node("n4")
	o.Observer = &session.Observer{SessionClosed: func(s *session.Session, _ *transport.CloseError) { ended <- s.ID() }}
	h := comet.NewHandler(&o)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
		defer cancel()
		h.Shutdown(ctx)
		o.Broker.(*session.MemoryNode).Close()
	})
	if got := testutil.Receive(t, ended, "the orphaned session ending on the fresh node"); got != id {
		t.Fatalf("session %s ended, want %s", got, id)
	}
	if got := app.Resumed(); got != 1 {
		t.Errorf("%d Serves resumed, want 1", got)
	}
	if got := mc.cluster.Logs(); got != 0 {
		t.Errorf("%d session logs after the orphan ended, want 0", got)
	}
}
