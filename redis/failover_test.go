package redis

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/internal/conformance"
	"github.com/seed-544bbf9f/comet/internal/testutil"
)

// kill stops node i as a kill -9 would, as far as one process can: the
// front sends it nothing more, it accepts no connection and those it had
// are cut (hijacked ones too), its lease is renewed no more, and its
// Redis client is closed, so that nothing it still tries lands.
func (tc *testCluster) kill(i int) {
	n := tc.nodes[i]
	n.dead.Store(true)
	n.b.paused.Store(true)
	n.ln.Cut()
	n.b.client.Close()
}

// owner returns the index of the node that made session id.
func (tc *testCluster) owner(t *testing.T, id string) int {
	t.Helper()
	node := id[:max(strings.LastIndexByte(id, '.'), 0)]
	for i, n := range tc.nodes {
		if n.b.Node() == node {
			return i
		}
	}
	t.Fatalf("session id %q names no node of the cluster", id)
	return -1
}

// sessionKeys counts the keys of session logs in r.
func sessionKeys(t *testing.T, ctx context.Context, r *testutil.Redis) int {
	t.Helper()
	keys, err := admin(t, r).Keys(ctx, DefaultPrefix+":s:*").Result()
	if err != nil {
		t.Fatalf("KEYS: %v", err)
	}
	return len(keys)
}

// TestFailoverKillOwner kills the node that owns a session amid an echo,
// on every transport, with the session's log in a real Redis: the session
// goes on on another node once the owner's lease lapses, with the same
// id, no close, every message echoed in order, the new Serve resumed;
// and its log is gone from Redis once it closes.
func TestFailoverKillOwner(t *testing.T) {
	r := startRedis(t)
	for _, tr := range allTransports {
		t.Run(tr, func(t *testing.T) {
			app := conformance.NewEchoApp()
			tc := newTestCluster(t, r, clusterOpts{Session: comet.Options{Failover: true, Serve: app.Serve}})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			c := dial(t, tc.front, tr, client.Options{})
			id := c.SessionID()
			owner := tc.owner(t, id)
			const n, killAt = 1500, 500
			var killed time.Time
			var resumedAfter time.Duration
			dups := conformance.EchoThrough(t, ctx, c, n, func(k int) {
				switch k {
				case killAt:
					killed = time.Now()
					tc.kill(owner)
				case killAt + conformance.EchoLead + 1:
					// The echo of a message sent after the kill: the
					// new owner's.
					resumedAfter = time.Since(killed)
				}
			})
			if got := c.SessionID(); got != id {
				t.Errorf("session id %q after the takeover, want %q", got, id)
			}
			if got := app.Resumed(); got != 1 {
				t.Errorf("%d Serves resumed, want 1", got)
			}
			t.Logf("%s: echoes again %v after the kill (lease %v); %d echoes twice at the client, %d redelivered messages skipped",
				tr, resumedAfter.Round(time.Millisecond), testTTL, dups, app.Skipped())
			if dups > 1 {
				t.Errorf("%d echoes came twice, want at most 1", dups)
			}
			if bound := 3 * (testTTL + time.Second); resumedAfter > bound {
				t.Errorf("echoes resumed %v after the kill, want within %v", resumedAfter, bound)
			}
			if err := c.Close(comet.CloseNormal, "done"); err != nil {
				t.Fatalf("Close: %v", err)
			}
			testutil.Receive(t, c.Done(), "the close")
			for i, n := range tc.nodes {
				if s := n.h.Session(id); s != nil && i != owner {
					testutil.Receive(t, s.Done(), "the session's end")
				}
			}
			if k := sessionKeys(t, ctx, r); k != 0 {
				t.Errorf("%d session log keys in Redis after the session ended, want 0", k)
			}
		})
	}
}

// TestFailoverKillCarrier kills a node that is not the session's owner
// amid an echo: the transports that passed through it resume through
// the others; nothing is lost and the session is not taken over.
func TestFailoverKillCarrier(t *testing.T) {
	r := startRedis(t)
	for _, tr := range allTransports {
		t.Run(tr, func(t *testing.T) {
			app := conformance.NewEchoApp()
			tc := newTestCluster(t, r, clusterOpts{Session: comet.Options{Failover: true, Serve: app.Serve}})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			c := dial(t, tc.front, tr, client.Options{})
			other := (tc.owner(t, c.SessionID()) + 1) % len(tc.nodes)
			dups := conformance.EchoThrough(t, ctx, c, 600, func(k int) {
				if k == 200 {
					tc.kill(other)
				}
			})
			if dups != 0 || app.Resumed() != 0 {
				t.Errorf("%d echoes twice and %d Serves resumed, want none", dups, app.Resumed())
			}
		})
	}
}
