package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// fanoutResult is one fan-out configuration.
type fanoutResult struct {
	rate      float64         // deliveries/s: median over messages of n ÷ time to the last delivery
	lasts     []time.Duration // per message, from publishing it to its last delivery
	lat       latencies
	missing   int // deliveries that never arrived
	retried   int // opens refused with 503 broker_unavailable and tried again
	published int
}

// measureFanout opens n connections of kind, publishes r.fanMsgs messages
// to all of them through path, one every gap, and collects every delivery.
func (r *runner) measureFanout(kind, path string, n int) (fanoutResult, error) {
	res, err := r.measureFanouts(n, fanoutConfig{kind, path})
	if err != nil {
		return fanoutResult{}, err
	}
	return res[0], nil
}

// fanoutConfig is a fan-out configuration: the kind of connection its
// load opens, and the server path that publishes to them.
type fanoutConfig struct{ kind, path string }

// measureFanouts opens n connections of each configuration's kind, to a
// server process of its own, and publishes r.fanMsgs messages to each
// through its path, the configurations taking turns message by message,
// one publish every gap; then it collects every delivery. Taking turns,
// Comet and its baseline meet the same machine, whose speed may drift in
// the minute each would take alone.
func (r *runner) measureFanouts(n int, cfgs ...fanoutConfig) ([]fanoutResult, error) {
	type side struct {
		srv   *serverProc
		g     *loadGroup
		loops []time.Duration // what each publish took the server
	}
	sides := make([]side, len(cfgs))
	for i, cfg := range cfgs {
		srv, err := startServer(appEcho)
		if err != nil {
			return nil, err
		}
		defer srv.stop()
		g, err := startLoad(srv.base, cfg.kind, n, perLoadChild, &r.src, 0)
		if err != nil {
			return nil, err
		}
		defer g.stop()
		open, err := g.open(3 * time.Minute)
		if err != nil {
			return nil, err
		}
		if open.Failed > 0 {
			return nil, fmt.Errorf("%s: %d of %d failed to open: %s", cfg.kind, open.Failed, n, open.Err)
		}
		sides[i] = side{srv: srv, g: g}
	}
	time.Sleep(r.settle)
	// Leave time for one message to reach everyone before the next, so
	// that each is timed alone: a tenth of a millisecond per session, at
	// least 200 ms.
	gap := max(200*time.Millisecond, time.Duration(n)*100*time.Microsecond)
	for range r.fanMsgs {
		for i := range sides {
			var b broadcastReport
			if err := sides[i].srv.call("POST", cfgs[i].path, &b); err != nil {
				return nil, err
			}
			if b.Reached != n {
				fmt.Fprintf(r.log, "  %s: a broadcast reached %d of %d\n", cfgs[i].kind, b.Reached, n)
			}
			sides[i].loops = append(sides[i].loops, time.Duration(b.NS))
			time.Sleep(gap)
		}
	}
	time.Sleep(gap) // for the stragglers of the last message
	res := make([]fanoutResult, len(cfgs))
	for i, sd := range sides {
		all, err := sd.g.samples()
		if err != nil {
			return nil, err
		}
		res[i] = summarizeFanout(all, n, len(sd.loops))
		fmt.Fprintf(r.log, "  %s, %d: %d deliveries, %d missing, median %.0f deliveries/s, p99 %.2f ms\n",
			cfgs[i].kind, n, len(all.NS), res[i].missing, res[i].rate, res[i].lat.ms(99))
		// Per message: where a tail comes from, the publish or the receivers.
		fmt.Fprintf(r.log, "    ms per message, publish: %s; to the last delivery: %s\n", formatMillis(sd.loops), formatMillis(res[i].lasts))
	}
	return res, nil
}

// fanout is metric 5.
func (r *runner) fanout() error {
	s := r.section(5, "Fan-out",
		fmt.Sprintf("Idle WebSocket sessions, in load processes, each with a client goroutine parked in "+
			"`Recv`; the server publishes %d messages, one at a time and far enough apart to be timed "+
			"alone, each carrying its publish time. Comet publishes through the broadcast helper "+
			"(`Handler.NewPreparedMessage` then `Handler.Broadcast`), which offers the message to every "+
			"session without waiting on any: it writes to each WebSocket itself, as a hub loop does, on up "+
			"to GOMAXPROCS goroutines (one per CPU) when its first offers show that they write. "+
			"Deliveries/s is, per message, the "+
			"sessions reached divided by the time from publishing it to its last delivery (the median "+
			"over messages); the latency is from publish to each receive, across every delivery. Comet and "+
			"the baseline, each with a server process and load processes of its own, publish in turn, "+
			"message by message.", r.fanMsgs),
		"gorilla/websocket's `PreparedMessage`, written to every connection in turn by the publishing "+
			"goroutine (the usual hub loop), to idle gorilla clients.")
	for _, n := range r.fanNs {
		res, err := r.measureFanouts(n, fanoutConfig{cometKind(transport.WebSocket), "/_bench/broadcast"},
			fanoutConfig{kindRawWS, "/_bench/rawbroadcast"})
		if err != nil {
			return err
		}
		comet, raw := res[0], res[1]
		at := fmt.Sprintf("%s sessions", formatValue(float64(n)))
		s.add(r.log, figure{Name: at + ": deliveries/s", Unit: "deliveries/s", Comet: comet.rate, Raw: raw.rate, Higher: true})
		for _, p := range []float64{50, 99} {
			s.add(r.log, figure{Name: fmt.Sprintf("%s: publish→receive p%g", at, p), Unit: "ms", Comet: comet.lat.ms(p), Raw: raw.lat.ms(p)})
		}
		for name, res := range map[string]fanoutResult{"Comet": comet, "raw": raw} {
			if res.missing != 0 {
				s.note(r.log, "%s, %s: %d of %d deliveries missing", at, name, res.missing, n*res.published)
			}
		}
		r.plots.fanout = append(r.plots.fanout,
			latencySeries{fmt.Sprintf("Comet, %s", at), comet.lat},
			latencySeries{fmt.Sprintf("raw gorilla, %s", at), raw.lat})
	}
	if len(r.fanNs) > 0 && r.fanNs[len(r.fanNs)-1] < 10_000 {
		s.note(r.log, "quick mode: %v sessions only", r.fanNs)
	}
	s.Charts = append(s.Charts, chart{r.chartFile("fanout-latency.png"), "publish→receive latency distribution"})
	return nil
}

// formatMillis lists durations in whole milliseconds.
func formatMillis(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = strconv.FormatInt(d.Milliseconds(), 10)
	}
	return strings.Join(s, " ")
}
