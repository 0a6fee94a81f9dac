package main

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/transport"
)

// Metric 12 runs Comet as a cluster: three node processes, each a Comet
// handler with the Redis broker (redis/) on one redis-server the harness
// starts, behind haproxy (examples/cluster/haproxy.cfg) where a balancer
// is wanted, or dialed directly. Its baseline is one node without broker
// or balancer, measured in the same run.

// clusterNodes is how many nodes the cluster runs.
const clusterNodes = 3

// echoAt measures echo against base: round trips per second with n
// sessions, then latency with one session.
func (r *runner) echoAt(name, base string, n int, dial func(base string) dialer) (echoResult, error) {
	var res echoResult
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d := dial(base)
	rts, err := openAll(ctx, n, d)
	if err != nil {
		return res, fmt.Errorf("%s: %w", name, err)
	}
	res.rate, err = rate(rts, r.warm, r.window)
	closeAll(rts)
	if err != nil {
		return res, fmt.Errorf("%s: %w", name, err)
	}
	rt, err := d(ctx)
	if err != nil {
		return res, fmt.Errorf("%s: %w", name, err)
	}
	defer rt.close()
	if res.lat, err = latency(rt, r.warm, r.window); err != nil {
		return res, fmt.Errorf("%s: %w", name, err)
	}
	return res, nil
}

// clusterSettings are metric 12's counts, smaller in quick mode.
type clusterSettings struct {
	fanN        int           // fan-out sessions over the nodes
	idleN       int           // idle sessions of the Redis cost
	idleFor     time.Duration // how long their commands are counted
	echoMsgs    int           // foreign echoes counted for Redis commands
	publishMsgs int           // topic publications counted
}

func (r *runner) clusterSettings() clusterSettings {
	if r.rep.Quick {
		return clusterSettings{fanN: 1000, idleN: 300, idleFor: time.Second, echoMsgs: 200, publishMsgs: 200}
	}
	return clusterSettings{fanN: 10_000, idleN: 1000, idleFor: 10 * time.Second, echoMsgs: 2000, publishMsgs: 1000}
}

// cluster is metric 12.
func (r *runner) cluster() error {
	cs := r.clusterSettings()
	s := r.section(12, "Cluster",
		fmt.Sprintf("Comet as a cluster: %d node processes, each a Comet handler with the Redis broker "+
			"(`redis.New`, its defaults: lease refresh every second) on one `redis-server` the harness starts "+
			"(no persistence), the load balancer round robin with no affinity, so that a session's requests "+
			"land on every node and are forwarded to its own through Redis. **Echo** is sections 2 and 3's "+
			"(%d sessions for the rate, one for the latency) through the balancer. **Foreign node**: one "+
			"long-poll session dialed on the nodes directly, one round trip (a POST, and its echo in the "+
			"POST's answer) at a time, either every request on the node that owns the session or every request after "+
			"the negotiate on another node. **Fan-out**: WebSocket sessions, in load processes, spread evenly "+
			"over the nodes dialed directly, each subscribed to one topic by its `Serve` "+
			"(`Session.Subscribe`); one node publishes %d messages (`Handler.Publish`), one at a time and "+
			"far enough apart to be timed alone, measured as in section 5. **Redis cost** is read from "+
			"`INFO memory` (`used_memory`) and `INFO commandstats` (every command, those run by scripts "+
			"included, less the harness's own `INFO`, `CONFIG` and `MEMORY`), per session or message after taking "+
			"off the nodes' own traffic with no session (lease refreshes and subscriber pings, counted "+
			"over the same interval or rate), which can leave a small negative remainder. A node "+
			"forwards a request to the session's node as calls between them, each message one `PUBLISH` "+
			"to the other's inbox (session/cluster_wire.go): a long-poll echo through a foreign node is "+
			"the POST (call and reply), whose reply carries the echo (PROTOCOL.md section 6): 2 in all, "+
			"while the poll stays parked; an echo that misses the POST's wait goes as before, the "+
			"echo's batch to the held poll (call and reply) and the poll's end, and the next poll's "+
			"open (call and reply).",
			clusterNodes, r.sessions, r.fanMsgs),
		"one Comet node without a broker and without a balancer, measured in the same run (the "+
			"table's \"raw\" column): the same workload on `comet.NewHandler` alone, topics in its memory. "+
			"For the foreign node, the same session's round trip with every request on its own node; for "+
			"fan-out also section 5's gorilla hub loop; for Redis, the same interval with no sessions.")
	if _, err := exec.LookPath("redis-server"); err != nil {
		s.note(r.log, "skipped: redis-server is not installed (%v)", err)
		return nil
	}

	// 1. Echo through the balancer, beside one node.
	type echoCase struct {
		t    string
		name string
	}
	cases := []echoCase{{transport.LongPoll, "long-polling"}, {transport.SSE, "SSE"}}
	singles := map[string]echoResult{}
	for _, e := range cases {
		res, err := r.measureEcho("single node "+e.t, r.sessions, func(b string) dialer { return cometDialer(b, e.t) })
		if err != nil {
			return err
		}
		singles[e.t] = res
	}
	c, err := startCluster(appEcho, true)
	if err != nil {
		return err
	}
	defer c.stop()
	s.note(r.log, "balancer: %s", c.lb.what)
	for _, e := range cases {
		res, err := r.echoAt("cluster "+e.t, c.lb.base, r.sessions, func(b string) dialer { return cometDialer(b, e.t) })
		if err != nil {
			return err
		}
		one := singles[e.t]
		s.add(r.log, figure{Name: fmt.Sprintf("%s echo, %d sessions, 3 nodes vs 1", e.name, r.sessions),
			Unit: "round trips/s", Comet: res.rate, Raw: one.rate, Higher: true})
		for _, p := range []float64{50, 99} {
			s.add(r.log, figure{Name: fmt.Sprintf("%s echo round trip, 1 session, p%g, 3 nodes vs 1", e.name, p),
				Unit: "ms", Comet: res.lat.ms(p), Raw: one.lat.ms(p)})
		}
	}

	// 2. The foreign node's added latency.
	if err := r.foreignLatency(s, c); err != nil {
		return err
	}

	// 4. Redis's cost, on the same cluster.
	if err := r.redisCost(s, c, cs); err != nil {
		return err
	}
	c.stop()

	// 3. Topic fan-out over the nodes.
	return r.clusterFanout(s, cs)
}

// foreignLatency is metric 12's foreign-node figure.
func (r *runner) foreignLatency(s *section, c *clusterProc) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	owner, err := dialComet(ctx, c.nodes[0].base, transport.LongPoll)
	if err != nil {
		return fmt.Errorf("owner session: %w", err)
	}
	own, err := latency(cometRT{owner, payload}, r.warm, r.window)
	owner.CloseNow()
	if err != nil {
		return fmt.Errorf("owner session: %w", err)
	}
	fc, route, err := dialForeign(ctx, c.nodes[0], c.nodes[1])
	if err != nil {
		return fmt.Errorf("foreign session: %w", err)
	}
	far, err := latency(cometRT{fc, payload}, r.warm, r.window)
	fc.CloseNow()
	if err != nil {
		return fmt.Errorf("foreign session: %w", err)
	}
	route.mu.Lock()
	var parts []string
	for node, k := range route.by {
		parts = append(parts, fmt.Sprintf("%s %d", cmp.Or(node, "none"), k))
	}
	route.mu.Unlock()
	slices.Sort(parts)
	by := strings.Join(parts, ", ")
	fmt.Fprintf(r.log, "  foreign session's answers by node: %s\n", by)
	for _, p := range []float64{50, 99} {
		s.add(r.log, figure{Name: fmt.Sprintf("long-poll round trip p%g, foreign node vs owner", p), Unit: "ms",
			Comet: far.ms(p), Raw: own.ms(p)})
	}
	for _, p := range []float64{50, 99} {
		s.add(r.log, figure{Name: fmt.Sprintf("added by a foreign node, p%g", p), Unit: "ms",
			Comet: far.ms(p) - own.ms(p), Raw: math.NaN()})
	}
	s.note(r.log, "foreign node: %d and %d round trips (foreign, owner); target for the added p50 on loopback: "+
		"at most 0.5 ms, measured %.3f ms (reported, not asserted); the foreign session's answers by node: %s",
		len(far), len(own), far.ms(50)-own.ms(50), by)
	return nil
}

// redisCost is metric 12's Redis figures.
func (r *runner) redisCost(s *section, c *clusterProc, cs clusterSettings) error {
	rd := c.redis
	// The nodes' own traffic, with no session: lease refreshes and the
	// subscribers' pings.
	s0, err := rd.stats()
	if err != nil {
		return err
	}
	time.Sleep(cs.idleFor)
	s1, err := rd.stats()
	if err != nil {
		return err
	}
	background := float64(s1.total()-s0.total()) / cs.idleFor.Seconds() // commands/s
	var groups []*loadGroup
	defer func() {
		for _, g := range groups {
			g.stop()
		}
	}()
	opened, failed := 0, 0
	for i, n := range c.nodes {
		k := cs.idleN/len(c.nodes) + btoi(i < cs.idleN%len(c.nodes))
		g, err := startLoad(n.base, cometKind(transport.WebSocket), k, perLoadChild, &r.src, 0)
		if err != nil {
			return err
		}
		groups = append(groups, g)
		o, err := g.open(3 * time.Minute)
		if err != nil {
			return err
		}
		opened, failed = opened+o.Opened, failed+o.Failed
		if o.Retried > 0 {
			s.note(r.log, "Redis cost: %d negotiates refused with 503 broker_unavailable while the idle sessions opened, tried again", o.Retried)
		}
	}
	if failed > 0 {
		s.note(r.log, "Redis cost: %d of %d idle sessions failed to open", failed, cs.idleN)
	}
	time.Sleep(r.settle)
	s2, err := rd.stats()
	if err != nil {
		return err
	}
	time.Sleep(cs.idleFor)
	s3, err := rd.stats()
	if err != nil {
		return err
	}
	k := float64(max(opened, 1))
	window := fmt.Sprintf("%v", cs.idleFor)
	s.add(r.log, figure{Name: fmt.Sprintf("Redis memory per idle session (%s sessions)", formatValue(k)), Unit: "bytes",
		Comet: float64(s2.usedMemory-s1.usedMemory) / k, Raw: math.NaN()})
	with, without := float64(s3.total()-s2.total()), float64(s1.total()-s0.total())
	s.add(r.log, figure{Name: fmt.Sprintf("Redis commands in %s, %s idle sessions vs none", window, formatValue(k)),
		Unit: "commands", Comet: with, Raw: without})
	s.add(r.log, figure{Name: fmt.Sprintf("Redis commands per idle session in %s", window), Unit: "commands",
		Comet: (with - without) / k, Raw: math.NaN()})
	for _, g := range groups {
		g.stop()
	}
	groups = nil
	fmt.Fprintf(r.log, "  background: %.1f commands/s (%v)\n", background, s1.minus(s0))

	// Echo through a foreign node.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	perMessage := func(name string, conn *client.Conn) error {
		defer conn.CloseNow()
		rt := cometRT{conn, payload}
		if err := rt.roundTrip(ctx); err != nil {
			return err
		}
		a, err := rd.stats()
		if err != nil {
			return err
		}
		start := time.Now()
		for range cs.echoMsgs {
			if err := rt.roundTrip(ctx); err != nil {
				return err
			}
		}
		elapsed := time.Since(start)
		b, err := rd.stats()
		if err != nil {
			return err
		}
		n := float64(cs.echoMsgs)
		own := float64(b.total()-a.total()) - background*elapsed.Seconds()
		s.add(r.log, figure{Name: "Redis commands per echoed message, " + name, Unit: "commands",
			Comet: own / n, Raw: math.NaN()})
		s.note(r.log, "Redis commands per echoed message, %s, by command (the nodes' background of %.1f/s not "+
			"taken off): %s", name, background, perCommand(b.minus(a), n))
		return nil
	}
	fc, _, err := dialForeign(ctx, c.nodes[0], c.nodes[1])
	if err != nil {
		return err
	}
	if err := perMessage("long-poll through a foreign node", fc); err != nil {
		return err
	}
	oc, err := dialComet(ctx, c.nodes[0].base, transport.LongPoll)
	if err != nil {
		return err
	}
	if err := perMessage("long-poll on the owner", oc); err != nil {
		return err
	}

	// Topic publications: a topic no session subscribes to, so that
	// only the publication's own cost is counted.
	a, err := rd.stats()
	if err != nil {
		return err
	}
	start := time.Now()
	var rep broadcastReport
	if err := c.nodes[0].call("POST", fmt.Sprintf("/_bench/publish?topic=cost&n=%d", cs.publishMsgs), &rep); err != nil {
		return err
	}
	elapsed := time.Since(start)
	b, err := rd.stats()
	if err != nil {
		return err
	}
	uctx, ucancel := context.WithTimeout(context.Background(), 5*time.Second)
	hist, err := rd.rdb.MemoryUsage(uctx, "comet:t:{cost}:h", 0).Result()
	ucancel()
	if err != nil {
		return fmt.Errorf("MEMORY USAGE of the history: %w", err)
	}
	n := float64(cs.publishMsgs)
	s.add(r.log, figure{Name: "Redis commands per topic publication", Unit: "commands",
		Comet: (float64(b.total()-a.total()) - background*elapsed.Seconds()) / n, Raw: math.NaN()})
	s.add(r.log, figure{Name: fmt.Sprintf("Redis history bytes per publication (%d-byte message)", len(`{"i":0,"ts":1765000000000000000}`)),
		Unit: "bytes", Comet: float64(hist) / n, Raw: math.NaN()})
	s.add(r.log, figure{Name: "Redis used_memory per publication", Unit: "bytes",
		Comet: float64(b.usedMemory-a.usedMemory) / n, Raw: math.NaN(), Detail: true})
	s.note(r.log, "topic publications: %d from one node in %.2f s (%.0f/s, one at a time), by command: %s",
		cs.publishMsgs, elapsed.Seconds(), n/elapsed.Seconds(), perCommand(b.minus(a), n))
	return nil
}

// perCommand prints calls by command divided by n, the largest first.
func perCommand(calls map[string]int64, n float64) string {
	names := make([]string, 0, len(calls))
	for k := range calls {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return calls[names[i]] > calls[names[j]] })
	parts := make([]string, 0, len(names))
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("`%s` %.2f", k, float64(calls[k])/n))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// clusterFanout is metric 12's fan-out: n sessions over the nodes, beside
// one node and the raw hub loop.
func (r *runner) clusterFanout(s *section, cs clusterSettings) error {
	n := cs.fanN
	// Each node process holds a third of the sessions, one connection
	// each; the load processes at most perLoadChild. All raise their soft
	// limit to the hard one (raiseFileLimit), whose value this one shares.
	if need := uint64(n/clusterNodes + 256); need > r.limits.Soft {
		scaled := (int(r.limits.Soft) - 256) * clusterNodes
		s.note(r.log, "fan-out scaled down from %s to %s sessions: the open-file limit is %d (hard %d)",
			formatValue(float64(n)), formatValue(float64(scaled)), r.limits.Soft, r.limits.Hard)
		n = scaled
	}
	// The single node holds them all.
	single := n
	if need := uint64(n + 256); need > r.limits.Soft {
		single = int(r.limits.Soft) - 256
	}
	c, err := startCluster(appTopic, false)
	if err != nil {
		return err
	}
	defer c.stop()
	clusterRes, err := r.topicFanout("3 nodes", c.nodes, c.nodes[0], n)
	c.stop()
	if err != nil {
		return err
	}
	srv, err := startServer(appTopic)
	if err != nil {
		return err
	}
	defer srv.stop()
	one, err := r.topicFanout("1 node", []*serverProc{srv}, srv, single)
	srv.stop()
	if err != nil {
		return err
	}
	raw, err := r.measureFanout(kindRawWS, "/_bench/rawbroadcast", single)
	if err != nil {
		return err
	}
	at := fmt.Sprintf("topic fan-out, %s sessions", formatValue(float64(n)))
	if single != n {
		s.note(r.log, "the single node and the raw hub loop held %s sessions (the open-file limit)", formatValue(float64(single)))
	}
	s.add(r.log, figure{Name: at + ": 3 nodes vs 1", Unit: "deliveries/s", Comet: clusterRes.rate, Raw: one.rate, Higher: true})
	s.add(r.log, figure{Name: at + ": 3 nodes vs raw hub loop", Unit: "deliveries/s", Comet: clusterRes.rate, Raw: raw.rate, Higher: true})
	s.add(r.log, figure{Name: at + ": 1 node vs raw hub loop", Unit: "deliveries/s", Comet: one.rate, Raw: raw.rate, Higher: true, Detail: true})
	for _, p := range []float64{50, 99} {
		s.add(r.log, figure{Name: fmt.Sprintf("%s: publish→receive p%g, 3 nodes vs 1", at, p), Unit: "ms",
			Comet: clusterRes.lat.ms(p), Raw: one.lat.ms(p)})
	}
	s.add(r.log, figure{Name: at + ": publish→receive p99, 3 nodes vs raw hub loop", Unit: "ms",
		Comet: clusterRes.lat.ms(99), Raw: raw.lat.ms(99), Detail: true})
	for name, res := range map[string]fanoutResult{"3 nodes": clusterRes, "1 node": one, "raw": raw} {
		if res.missing != 0 {
			s.note(r.log, "%s, %s: %d of %d deliveries missing", at, name, res.missing, n*res.published)
		}
		if res.retried != 0 {
			s.note(r.log, "%s, %s: while the sessions opened, all at once (32 connects at a time per load "+
				"process), %d negotiates were refused with 503 broker_unavailable and tried again a second "+
				"later, as the protocol asks (a node starved of CPU had not refreshed its Redis lease for "+
				"over Refresh + OpTimeout, 2 s, and refuses to negotiate until it has)", at, name, res.retried)
		}
	}
	if n < 10_000 {
		s.note(r.log, "fan-out at %s sessions, not 10,000", formatValue(float64(n)))
	}
	r.plots.fanout = append(r.plots.fanout,
		latencySeries{fmt.Sprintf("Comet topic, 3 nodes, %s", formatValue(float64(n))), clusterRes.lat},
		latencySeries{fmt.Sprintf("Comet topic, 1 node, %s", formatValue(float64(single))), one.lat})
	s.Charts = append(s.Charts, chart{r.chartFile("fanout-latency.png"),
		"publish→receive latency distribution, section 5's and the topic fan-out's"})
	return nil
}

// topicFanout opens n WebSocket sessions spread over nodes, waits until
// each is subscribed to benchTopic, publishes r.fanMsgs messages from pub
// and collects every delivery.
func (r *runner) topicFanout(name string, nodes []*serverProc, pub *serverProc, n int) (fanoutResult, error) {
	var res fanoutResult
	var groups []*loadGroup
	defer func() {
		for _, g := range groups {
			g.stop()
		}
	}()
	for i, node := range nodes {
		k := n/len(nodes) + btoi(i < n%len(nodes))
		g, err := startLoad(node.base, cometKind(transport.WebSocket), k, perLoadChild, &r.src, 0)
		if err != nil {
			return res, err
		}
		groups = append(groups, g)
	}
	start := time.Now()
	errs := make([]error, len(groups))
	opens := make([]openReport, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		wg.Go(func() { opens[i], errs[i] = g.open(3 * time.Minute) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return res, err
		}
		if opens[i].Failed > 0 {
			return res, fmt.Errorf("%s: %d sessions failed to open: %s", name, opens[i].Failed, opens[i].Err)
		}
		res.retried += opens[i].Retried
	}
	// Every session subscribed before the first publication.
	for deadline := time.Now().Add(time.Minute); ; {
		total := int64(0)
		for _, node := range nodes {
			var k int64
			if err := node.call("GET", "/_bench/subscribed", &k); err != nil {
				return res, err
			}
			total += k
		}
		if total >= int64(n) {
			break
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("%s: %d of %d sessions subscribed after a minute", name, total, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintf(r.log, "  %s: %d sessions open and subscribed in %.1fs\n", name, n, time.Since(start).Seconds())
	time.Sleep(r.settle)
	gap := max(200*time.Millisecond, time.Duration(n)*100*time.Microsecond)
	for range r.fanMsgs {
		var b broadcastReport
		if err := pub.call("POST", "/_bench/publish", &b); err != nil {
			return res, err
		}
		res.published++
		time.Sleep(gap)
	}
	time.Sleep(gap)
	var all samplesReport
	for _, g := range groups {
		a, err := g.samples()
		if err != nil {
			return res, err
		}
		all.I = append(all.I, a.I...)
		all.NS = append(all.NS, a.NS...)
		all.Bad += a.Bad
	}
	retried := res.retried
	res = summarizeFanout(all, n, res.published)
	res.retried = retried
	fmt.Fprintf(r.log, "  %s, %d: %d deliveries, %d missing, median %.0f deliveries/s, p99 %.2f ms\n",
		name, n, len(all.NS), res.missing, res.rate, res.lat.ms(99))
	return res, nil
}

// summarizeFanout computes a fan-out's figures from its samples: n
// sessions, published messages.
func summarizeFanout(all samplesReport, n, published int) fanoutResult {
	res := fanoutResult{published: published}
	res.missing = n*published - len(all.NS)
	last := make([]time.Duration, published)
	count := make([]int, published)
	res.lat = make(latencies, len(all.NS))
	for j, ns := range all.NS {
		d := time.Duration(ns)
		res.lat[j] = d
		if i := int(all.I[j]); i >= 0 && i < published {
			last[i] = max(last[i], d)
			count[i]++
		}
	}
	slices.Sort(res.lat)
	var rates []float64
	for i := range last {
		if last[i] > 0 {
			rates = append(rates, float64(count[i])/last[i].Seconds())
		}
	}
	res.rate = median(rates)
	res.lasts = last
	return res
}
