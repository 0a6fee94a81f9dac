package main

import (
	"context"
	"fmt"
	"math"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/internal/echocheck"
	"github.com/seed-544bbf9f/comet/transport"
)

// failoverKills is how many times metric 13 kills a session's node.
func (r *runner) failoverKills() int {
	if r.rep.Quick {
		return 4
	}
	return 20
}

// failover is metric 13: a session outliving its node. Each kill is a
// fresh cluster (Redis, three nodes with Options.Failover, the balancer),
// one session echoing through the balancer on a transport taken in turn,
// and a kill -9 of the session's node amid the echo.
func (r *runner) failover() error {
	kills := r.failoverKills()
	s := r.section(13, "Failover",
		fmt.Sprintf("A session outliving its node: section 12's cluster with `Options.Failover` (each session's "+
			"log in Redis), one session echoing through the balancer, with up to %d messages in "+
			"flight, on WebSocket, SSE, XHR streaming and long-polling in turn; after %d echoes the harness kills "+
			"the session's node (SIGKILL) and times how long until the echo of the first message sent after the "+
			"kill arrives: the lease (5 s by default) and the client's way back. %d kills, each in a fresh "+
			"cluster. **Echoed twice**: messages the dead node's application took and did not commit, which "+
			"the node that takes the session over delivers again (the echo application does not skip them).",
			echocheck.Lead, failoverKillAt, kills),
		"none: no other system in the field keeps a session through its node's loss; the lease is the floor.")
	if _, err := exec.LookPath("redis-server"); err != nil {
		s.note(r.log, "skipped: redis-server is not installed (%v)", err)
		return nil
	}
	transports := []string{transport.WebSocket, transport.SSE, transport.Streaming, transport.LongPoll}
	var resumed latencies
	dups := 0
	for i := range kills {
		tr := transports[i%len(transports)]
		took, d, err := r.failoverOnce(tr)
		if err != nil {
			return fmt.Errorf("kill %d (%s): %w", i+1, tr, err)
		}
		fmt.Fprintf(r.log, "  kill %d, %s: echoing again after %v, %d echoed twice\n", i+1, tr, took.Round(time.Millisecond), d)
		resumed = append(resumed, took)
		dups += d
	}
	slices.Sort(resumed)
	for _, p := range []float64{50, 100} {
		name := fmt.Sprintf("kill -9 to resumed delivery, p%g of %d", p, kills)
		if p == 100 {
			name = fmt.Sprintf("kill -9 to resumed delivery, max of %d", kills)
		}
		s.add(r.log, figure{Name: name, Unit: "ms", Comet: resumed.ms(p), Raw: math.NaN()})
	}
	s.add(r.log, figure{Name: "messages echoed twice per kill", Unit: "messages", Comet: float64(dups) / float64(kills), Raw: math.NaN()})
	return nil
}

const (
	failoverKillAt = 300 // echoes before the kill
	failoverAfter  = 300 // echoes after the kill
)

// failoverOnce runs one kill on tr and returns the time from the kill to
// the echo of the first message sent after it, and how many echoes came
// twice.
func (r *runner) failoverOnce(tr string) (time.Duration, int, error) {
	c, err := startClusterWith(appEcho, true, true)
	if err != nil {
		return 0, 0, err
	}
	defer c.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := client.Dial(ctx, c.lb.base+"/comet", &client.Options{Transports: []string{tr}})
	if err != nil {
		return 0, 0, err
	}
	defer conn.CloseNow()
	node, _, _ := strings.Cut(conn.SessionID(), ".")
	var owner *serverProc
	for i, n := range c.nodes {
		if fmt.Sprintf("n%d", i+1) == node {
			owner = n
		}
	}
	if owner == nil {
		return 0, 0, fmt.Errorf("session %s names no node", conn.SessionID())
	}

	// The echo sends at most EchoLead messages ahead of the echoes: the
	// message numbered killAt+EchoLead (from 0) waits for the credit of
	// the echo after the kill's, and is surely sent after the kill.
	firstAfter := failoverKillAt + echocheck.Lead
	var killedAt time.Time
	var took time.Duration
	dups, err := echocheck.Run(ctx, conn, failoverKillAt+failoverAfter, func(k int) {
		switch k {
		case failoverKillAt:
			killedAt = time.Now()
			owner.cmd.Process.Kill()
		case firstAfter + 1:
			took = time.Since(killedAt)
		}
	})
	if err != nil {
		return 0, 0, err
	}
	return took, dups, nil
}
