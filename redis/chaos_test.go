package redis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/internal/conformance"
	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/transport"
)

// chaosDuration is how long TestFailoverChaos makes faults: COMET_CHAOS
// if set (make chaos sets 5m), else 30 s, as make test runs it.
func chaosDuration(t *testing.T) time.Duration {
	if v := os.Getenv("COMET_CHAOS"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("COMET_CHAOS=%q: want a duration such as 5m", v)
		}
		return d
	}
	return 30 * time.Second
}

// TestFailoverChaos runs a client of each transport through three nodes
// with failover while, every second or so, a random fault strikes a
// random node: its lease stops (a process paused past it), it is cut off
// from Redis for a while, its connections are dropped, or, once, it is
// killed. After each fault the node recovers, but for the killed one.
// Throughout, every client's echo is checked: one sequence, nothing lost
// or reordered, an echo twice only as often as sessions were taken over,
// and a session ends only with 3009, said to its client (then the client
// starts another). The seed is logged; COMET_CHAOS_SEED replays it.
func TestFailoverChaos(t *testing.T) {
	length := chaosDuration(t)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("COMET_CHAOS_SEED"); v != "" {
		fmt.Sscan(v, &seed)
	}
	t.Logf("chaos for %v, seed %d (COMET_CHAOS_SEED replays it)", length, seed)
	rng := rand.New(rand.NewPCG(seed, seed>>1|1))

	r := startRedis(t)
	var gates []*blackHole
	for range 3 {
		gates = append(gates, startBlackHole(t, r.Addr))
	}
	app := conformance.NewEchoApp()
	tc := newTestCluster(t, r, clusterOpts{
		// A lease of testTTL: a fault is seen within a second.
		Session:  comet.Options{Failover: true, Serve: app.Serve, BrokerTimeout: 2 * time.Second, Grace: time.Minute},
		RedisURL: func(i int) string { return "redis://" + gates[i].Addr() + "/0" },
	})

	ctx, cancel := context.WithTimeout(context.Background(), length+2*time.Minute)
	defer cancel()
	chaos, stopChaos := context.WithTimeout(ctx, length)
	defer stopChaos()

	// The clients: each echoes until the chaos ends, in sessions that end
	// only with 3009; each session's echo is checked on its own.
	var echoes, dups, sessions, lost atomic.Int64
	errs := make(chan error, len(allTransports))
	for _, tr := range allTransports {
		go func() {
			errs <- chaosClient(chaos, tc.front, tr, testutil.Logger(t).With("client", tr), &echoes, &dups, &sessions, &lost)
		}()
	}

	// The faults.
	var faults []string
	killed := -1
	for chaos.Err() == nil {
		wait := time.Duration(500+rng.IntN(1500)) * time.Millisecond
		if !sleepCtx(chaos, wait) {
			break
		}
		i := rng.IntN(len(tc.nodes))
		if i == killed {
			continue
		}
		n := tc.nodes[i]
		var fault string
		switch k := rng.IntN(10); {
		case k < 3:
			fault = "pause"
			n.b.paused.Store(true)
			sleepCtx(ctx, testTTL+time.Duration(rng.IntN(1000))*time.Millisecond)
			n.b.paused.Store(false)
		case k < 6:
			fault = "cut from Redis"
			gates[i].Sever()
			sleepCtx(ctx, time.Duration(200+rng.IntN(3000))*time.Millisecond)
			gates[i].Heal()
		case k < 9 || killed >= 0:
			fault = "connections dropped"
			n.ln.CutConns()
		default:
			fault = "killed"
			killed = i
			tc.kill(i)
		}
		faults = append(faults, fmt.Sprintf("%s: %s", n.b.Node(), fault))
	}
	stopChaos()
	for range allTransports {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	t.Logf("%d faults: %s", len(faults), strings.Join(faults, "; "))
	t.Logf("%d echoes in %d sessions; %d twice, %d Serves resumed; %d sessions ended with 3009",
		echoes.Load(), sessions.Load(), dups.Load(), app.Resumed(), lost.Load())
	if echoes.Load() == 0 {
		t.Error("no echo at all")
	}
	if d, r := dups.Load(), app.Resumed(); d > r {
		t.Errorf("%d echoes twice, more than the %d takeovers allow (one each)", d, r)
	}
}

// chaosClient echoes through u on tr until ctx ends, in one session after
// another: a session may end only with 3009, which its client is told;
// any other end, a loss, a reorder, is an error.
func chaosClient(ctx context.Context, u, tr string, log interface{ Debug(string, ...any) },
	echoes, dups, sessions, lost *atomic.Int64) error {
	for ctx.Err() == nil {
		c, err := client.Dial(ctx, u, &client.Options{Transports: []string{tr}})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// A negotiate may meet a node cut off from Redis (503): the
			// client's next try goes elsewhere.
			log.Debug("dial failed", "err", err)
			if !sleepCtx(ctx, 100*time.Millisecond) {
				return nil
			}
			continue
		}
		sessions.Add(1)
		d, err := conformance.Echo(ctx, c, 1<<30, func(int) { echoes.Add(1) })
		dups.Add(int64(d))
		c.CloseNow()
		var ce *transport.CloseError
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.As(err, &ce) && ce.Code == transport.CloseStateLost:
			lost.Add(1)
		default:
			return fmt.Errorf("%s: session %s: %w", tr, c.SessionID(), err)
		}
	}
	return nil
}

// sleepCtx waits d, and reports false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
