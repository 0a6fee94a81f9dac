package main

import (
	"context"
	"fmt"
	"math"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/seed-544bbf9f/comet/client"
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
			"log in Redis), one session echoing through the balancer, a message at a time with up to %d in "+
			"flight, on WebSocket, SSE, XHR streaming and long-polling in turn; after %d echoes the harness kills "+
			"the session's node (SIGKILL) and times how long until the echo of the first message sent after the "+
			"kill arrives: the lease (5 s by default) and the client's way back. %d kills, each in a fresh "+
			"cluster. **Echoed twice**: messages the dead node's application took and did not commit, which "+
			"the node that takes the session over delivers again (the echo application does not skip them).",
			failoverLead, failoverKillAt, kills),
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
	failoverLead   = 16  // echoes in flight
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

	total := failoverKillAt + failoverAfter
	sendErr := make(chan error, 1)
	credits := make(chan struct{}, failoverLead)
	for range failoverLead {
		credits <- struct{}{}
	}
	var killedAt time.Time
	var firstAfter atomic.Int64 // the first message sent after the kill
	firstAfter.Store(-1)
	killed := make(chan struct{})
	go func() {
		for i := range total {
			select {
			case <-credits:
			case <-ctx.Done():
				return
			}
			select {
			case <-killed:
				firstAfter.CompareAndSwap(-1, int64(i))
			default:
			}
			if err := conn.Send(ctx, transport.Text, fmt.Appendf(nil, "m%d", i)); err != nil {
				sendErr <- err
				return
			}
		}
	}()
	next, dups := 0, 0
	var took time.Duration
	for next < total {
		_, p, err := conn.Recv(ctx)
		if err != nil {
			select {
			case e := <-sendErr:
				err = e
			default:
			}
			return 0, 0, fmt.Errorf("after %d echoes: %w", next, err)
		}
		var k int
		fmt.Sscanf(string(p), "m%d", &k)
		switch {
		case k < next:
			dups++
			continue
		case k > next:
			return 0, 0, fmt.Errorf("echo of m%d before m%d: a message was lost", k, next)
		}
		next++
		if next == failoverKillAt {
			// Killed before the next message may go, so that every
			// message after this one is sent after the kill.
			killedAt = time.Now()
			owner.cmd.Process.Kill()
			close(killed)
		}
		credits <- struct{}{}
		if f := firstAfter.Load(); took == 0 && f >= 0 && int64(next) > f {
			took = time.Since(killedAt)
		}
	}
	return took, dups, nil
}
