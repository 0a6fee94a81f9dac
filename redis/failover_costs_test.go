package redis

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/internal/conformance"
)

// commandCalls returns Redis's count of each command since it started,
// INFO's left out: those scripts run included, under their own names.
func commandCalls(t *testing.T, ctx context.Context, a *goredis.Client) map[string]int64 {
	t.Helper()
	info, err := a.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]int64{}
	for line := range strings.SplitSeq(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok || name == "cmdstat_info" {
			continue
		}
		v, _ := strconv.ParseInt(strings.Split(rest, ",")[0], 10, 64)
		calls[strings.TrimPrefix(name, "cmdstat_")] = v
	}
	return calls
}

// TestFailoverCosts measures what failover costs Redis: the memory of an
// idle session's log, and the commands of a message on the cluster path.
// It asserts generous bounds and logs the figures.
func TestFailoverCosts(t *testing.T) {
	r := startRedis(t)
	tc := newTestCluster(t, r, clusterOpts{LeaseTTL: DefaultLeaseTTL, Refresh: DefaultRefresh, OpTimeout: DefaultOpTimeout,
		Session: comet.Options{Failover: true, AttachTimeout: 5 * time.Minute, Grace: 5 * time.Minute}})
	a := admin(t, r)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	usedMemory := func() int64 {
		t.Helper()
		info, err := a.Info(ctx, "memory").Result()
		if err != nil {
			t.Fatal(err)
		}
		v, _ := strconv.ParseInt(infoField(info, "used_memory"), 10, 64)
		return v
	}

	// Idle sessions: each keeps its state and its place in its node's
	// set; nothing else, until it has traffic.
	const sessions = 500
	before := usedMemory()
	for i := range sessions {
		negotiate(t, tc.nodes[i%len(tc.nodes)].url)
	}
	perSession := float64(usedMemory()-before) / sessions
	t.Logf("Redis memory per idle session: %.0f bytes (%d sessions)", perSession, sessions)
	if perSession > 4096 {
		t.Errorf("%.0f bytes of Redis memory per idle session, want well under 4 KiB", perSession)
	}

	// Messages: an echo, one at a time, over WebSocket through the
	// round-robin front.
	c := dial(t, tc.front, comet.WebSocket, client.Options{})
	conformance.EchoThrough(t, ctx, c, 10, func(int) {})
	const n = 1000
	c0 := commandCalls(t, ctx, a)
	start := time.Now()
	for range n {
		conformance.EchoThrough(t, ctx, c, 1, func(int) {})
	}
	took := time.Since(start)
	c1 := commandCalls(t, ctx, a)
	var all, scripts int64
	for name, v := range c1 {
		d := v - c0[name]
		all += d
		if name == "evalsha" || name == "eval" {
			scripts += d
		}
	}
	// The nodes' own refreshes and pings run meanwhile: a few a second.
	t.Logf("Redis per echo (a message each way, one at a time): %.2f script calls, %.2f commands in all, scripts' own included, over %v",
		float64(scripts)/n, float64(all)/n, took.Round(time.Millisecond))
	if per := float64(scripts) / n; per > 4 {
		t.Errorf("%.2f script calls per echo, want about 2 (the log's write of each direction)", per)
	}
}
