package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet/transport"
)

// The push storm's shape (metric 8). Its targets and duration are runner
// settings, smaller in quick mode.
const (
	stormSenders = 20        // server goroutines pushing
	stormSize    = 64 << 10  // bytes per pushed message: Comet's largest by default
	stormWindow  = 256 << 10 // Comet's outbound window per session in this configuration
	stormTarget  = 100.0     // ms: the p99 echo round trip Comet should stay within
)

// stormEcho is the interactive session's message: 64 bytes.
var stormEcho = bytes.Repeat([]byte("e"), 64)

// stormResult is one configuration of metric 8.
type stormResult struct {
	lat     latencies // echo round trips started while the storm pushed, sorted
	pushing time.Duration
	storm   stormReport
	heap    float64 // the server's heap and stacks in use after the storm, bytes
}

// stormRound is one echo round trip during the storm.
type stormRound struct {
	start time.Time
	d     time.Duration
}

// whilePushing returns, sorted, the round trips that started no later than
// last, the storm's last accepted push: once every target is full the
// storm is over, whatever time it has left.
func whilePushing(rounds []stormRound, last time.Time) latencies {
	var l latencies
	for _, r := range rounds {
		if !r.start.After(last) {
			l = append(l, r.d)
		}
	}
	return l.sorted()
}

// ms returns the p-th percentile of the storm's round trips in
// milliseconds, however few they are: a round trip that takes seconds
// leaves only a few samples, and those are the result.
func (s stormResult) ms(p float64) float64 {
	if len(s.lat) == 0 {
		return math.NaN()
	}
	return float64(percentile(s.lat, p)) / float64(time.Millisecond)
}

// measureStorm opens r.stormN targets of kind (clients that never read)
// against a fresh storm server, and one interactive WebSocket session that
// echoes; then it starts the storm and times echo round trips one after
// another until the storm is over.
func (r *runner) measureStorm(kind string) (stormResult, error) {
	var res stormResult
	srv, err := startServerWith(serverConfig{app: appStorm, window: stormWindow})
	if err != nil {
		return res, err
	}
	defer srv.stop()
	g, err := startLoad(srv.base, kind, r.stormN, perLoadChild, &r.src, 0)
	if err != nil {
		return res, err
	}
	defer g.stop()
	open, err := g.open(3 * time.Minute)
	if err != nil {
		return res, err
	}
	if open.Failed > 0 {
		return res, fmt.Errorf("%s: %d of %d failed to open: %s", kind, open.Failed, r.stormN, open.Err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.warm+r.stormFor+2*time.Minute)
	defer cancel()
	rt, err := dialStormEcho(ctx, srv.base, kind == kindStallRaw)
	if err != nil {
		return res, fmt.Errorf("%s: interactive session: %w", kind, err)
	}
	defer rt.close()
	for end := time.Now().Add(r.warm); time.Now().Before(end); {
		if err := rt.roundTrip(ctx); err != nil {
			return res, fmt.Errorf("%s: interactive session: %w", kind, err)
		}
	}

	type answer struct {
		rep stormReport
		err error
	}
	done := make(chan answer, 1)
	go func() {
		path := fmt.Sprintf("/_bench/storm?d=%s&senders=%d&size=%d", r.stormFor, stormSenders, stormSize)
		if kind == kindStallRaw {
			path += "&raw=1"
		}
		var a answer
		a.err = srv.call(http.MethodPost, path, &a.rep)
		done <- a
	}()
	var rounds []stormRound
	for over := false; !over; {
		start := time.Now()
		if err := rt.roundTrip(ctx); err != nil {
			return res, fmt.Errorf("%s: interactive session during the storm: %w", kind, err)
		}
		rounds = append(rounds, stormRound{start, time.Since(start)})
		select {
		case a := <-done:
			if a.err != nil {
				return res, a.err
			}
			res.storm, over = a.rep, true
		default:
		}
	}
	if res.storm.Sent == 0 {
		return res, fmt.Errorf("%s: the storm pushed nothing", kind)
	}
	res.lat = whilePushing(rounds, time.Unix(0, res.storm.LastSent))
	res.pushing = time.Duration(res.storm.LastSent - res.storm.Start)
	mem, err := srv.mem()
	if err != nil {
		return res, err
	}
	res.heap = float64(mem.HeapInuse + mem.StackInuse)
	fmt.Fprintf(r.log, "  %s: %d targets, %d messages pushed (%d failed) in %v of %v; %d round trips then (%d in all), p50 %.2f ms, p99 %.2f ms, max %.2f ms; server heap %.0f MiB\n",
		kind, res.storm.Targets, res.storm.Sent, res.storm.Failed, res.pushing.Round(time.Millisecond),
		time.Duration(res.storm.NS).Round(time.Millisecond), len(res.lat), len(rounds), res.ms(50), res.ms(99), res.ms(100), res.heap/(1<<20))
	if res.storm.Targets != r.stormN {
		return res, fmt.Errorf("%s: the server held %d targets, want %d", kind, res.storm.Targets, r.stormN)
	}
	return res, nil
}

// dialStormEcho opens the interactive session: Comet over WebSocket, or
// with raw a gorilla connection to the raw echo handler.
func dialStormEcho(ctx context.Context, base string, raw bool) (roundTripper, error) {
	if raw {
		c, resp, err := websocket.DefaultDialer.DialContext(ctx, "ws"+strings.TrimPrefix(base, "http")+"/raw/ws", nil)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		return rawWSRT{c, stormEcho}, nil
	}
	c, err := dialComet(ctx, base, transport.WebSocket)
	if err != nil {
		return nil, err
	}
	return cometRT{c, stormEcho}, nil
}

// pushStorm is metric 8.
func (r *runner) pushStorm() error {
	s := r.section(8, "Push storm: interactive latency beside bulk pushes",
		fmt.Sprintf("%s WebSocket sessions whose clients never read (the Go client with a receive buffer "+
			"of one message, never calling `Recv`), so that their windows fill and `Send` into them "+
			"waits. For up to %s, %d server goroutines push %d KiB text messages round-robin into them, "+
			"each into its own share of the sessions, with `Send`; the storm is over when every window "+
			"is full (the time that takes is in the table). Meanwhile one interactive WebSocket "+
			"session echoes %d-byte messages one after another; the round trips that start while the "+
			"storm pushes (up to its last accepted push) are timed. The target "+
			"is a p99 of %s ms or less: bulk pushes to clients that do not keep up should not hold up "+
			"one that does. Comet runs with its outbound window set to %d KiB per session "+
			"(`Options.WindowBytes`; the default is 1 MiB), which bounds the payload the server holds "+
			"for the stalled sessions to %s MiB; the table gives its heap after the storm. Few samples mean slow round trips, so p99 is the "+
			"nearest-rank percentile of however many there are.",
			formatValue(float64(r.stormN)), r.stormFor, stormSenders, stormSize>>10, len(stormEcho),
			formatValue(stormTarget), stormWindow>>10, formatValue(float64(r.stormN*stormWindow>>20))),
		fmt.Sprintf("gorilla/websocket connections that are never read, each with one writer goroutine "+
			"fed by a queue of %d messages (the same %d KiB as Comet's window), into which the same "+
			"goroutines push the same messages round-robin, waiting while a queue is full (behind each "+
			"queue the kernel's socket buffers take more: compare the messages pushed); the "+
			"interactive session is a gorilla echo.", rawStallQueue, rawStallQueue*stormSize>>10))
	comet, err := r.measureStorm(kindStallComet)
	if err != nil {
		return err
	}
	raw, err := r.measureStorm(kindStallRaw)
	if err != nil {
		return err
	}
	for _, p := range []struct {
		name string
		p    float64
	}{{"p50", 50}, {"p99", 99}, {"max", 100}} {
		s.add(r.log, figure{Name: "echo round trip during the storm, " + p.name, Unit: "ms", Comet: comet.ms(p.p), Raw: raw.ms(p.p)})
	}
	s.add(r.log, figure{Name: "echo round trips during the storm", Unit: "count", Comet: float64(len(comet.lat)), Raw: float64(len(raw.lat)), Higher: true, Detail: true})
	s.add(r.log, figure{Name: "time the storm pushed", Unit: "ms", Comet: comet.pushing.Seconds() * 1000, Raw: raw.pushing.Seconds() * 1000, Detail: true})
	s.add(r.log, figure{Name: "messages pushed during the storm", Unit: "count", Comet: float64(comet.storm.Sent), Raw: float64(raw.storm.Sent), Higher: true, Detail: true})
	s.add(r.log, figure{Name: "server heap + stacks after the storm", Unit: "MiB", Comet: comet.heap / (1 << 20), Raw: raw.heap / (1 << 20), Detail: true})
	if p99 := comet.ms(99); p99 <= stormTarget {
		s.note(r.log, "target met: Comet's p99 is %s ms, within %s ms", formatValue(p99), formatValue(stormTarget))
	} else {
		s.note(r.log, "**target not met**: Comet's p99 is %s ms, the target %s ms", formatValue(p99), formatValue(stormTarget))
	}
	r.plots.pushStorm = append(r.plots.pushStorm,
		latencySeries{"Comet", comet.lat}, latencySeries{"raw gorilla", raw.lat})
	s.Charts = append(s.Charts, chart{r.chartFile("push-storm-latency.png"), "echo round trip during the push storm, Comet and raw"})
	return nil
}
