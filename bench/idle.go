package main

import (
	"fmt"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// serverConns is how many connections one idle session holds at the
// server (section 4 reports the count measured), which with the open-file
// limit decides how many sessions fit. WebSocket and long-polling hold one:
// the socket, or the parked poll. A stream forced on the client holds
// one, the stream, since its client has no probe to send. A stream that
// could be left for long-polling holds two: the stream, and the keep-alive
// connection of the client's POSTs (the probe a client sends right after
// attaching, PROTOCOL.md section 8, then acks and keepalives), which a
// browser keeps idle as the Go client does.
var serverConns = map[string]int{
	cometKind(transport.WebSocket): 1,
	cometKind(transport.SSE):       1,
	cometKind(transport.Streaming): 1,
	cometKind(transport.LongPoll):  1,
	kindSSEFallback:                2,
	kindDeflateComet:               1,
	kindRawWS:                      1,
	kindRawSSE:                     1,
	kindRawPark:                    1,
}

// perLoadChild is the most connections one load child opens: it keeps each
// child well inside a modest open-file limit, and spreads the client work
// over processes as it would be over machines.
const perLoadChild = 2500

// idleResult is one configuration of metrics 4 and 6.
type idleResult struct {
	n                 int     // sessions open
	storm             float64 // seconds to open them
	heap, rss         float64 // bytes per session
	stacks            float64 // the part of heap that is goroutine stacks
	goroutines, conns float64 // per session, at the server
	failed            int
}

// sessionsFor returns how many sessions of kind fit the open-file limit
// soft: the target, or 5,000 when the target does not fit, or fewer still.
func sessionsFor(kind string, target int, soft uint64) int {
	need := func(n int) uint64 { return uint64(n*serverConns[kind] + 256) }
	if need(target) <= soft {
		return target
	}
	if n := min(target, 5000); need(n) <= soft {
		return n
	}
	return max(0, (int(soft)-256)/serverConns[kind])
}

// measureIdle opens n idle connections of kind against a fresh server
// process, timing the storm, then reads the server's memory.
func (r *runner) measureIdle(kind string, n int) (idleResult, error) {
	return r.measureIdleWith(serverConfig{app: appEcho, allocs: true}, kind, n)
}

// measureIdleWith is measureIdle against a server configured by cfg.
func (r *runner) measureIdleWith(cfg serverConfig, kind string, n int) (idleResult, error) {
	res := idleResult{n: n}
	srv, err := startServerWith(cfg)
	if err != nil {
		return res, err
	}
	defer srv.stop()
	before, err := srv.mem()
	if err != nil {
		return res, err
	}
	g, err := startLoad(srv.base, kind, n, perLoadChild, &r.src, 0)
	if err != nil {
		return res, err
	}
	defer g.stop()
	open, err := g.open(3 * time.Minute)
	if err != nil {
		return res, err
	}
	res.storm = time.Duration(open.NS).Seconds()
	res.failed = open.Failed
	if open.Failed > 0 {
		fmt.Fprintf(r.log, "  %s: %d of %d failed to open; first error: %s\n", kind, open.Failed, n, open.Err)
	}
	time.Sleep(r.settle) // let the last commits and acks land
	after, err := srv.mem()
	if err != nil {
		return res, err
	}
	if err := srv.snapshot(kind); err != nil {
		return res, err
	}
	k := float64(max(open.Opened, 1))
	res.heap = (float64(after.HeapInuse+after.StackInuse) - float64(before.HeapInuse+before.StackInuse)) / k
	res.stacks = (float64(after.StackInuse) - float64(before.StackInuse)) / k
	res.rss = (float64(after.RSS) - float64(before.RSS)) / k
	res.goroutines = float64(after.Goroutines-before.Goroutines) / k
	res.conns = float64(after.FDs-before.FDs) / k
	r.loadLimits = g.limits
	r.serverLimits = srv.hello.Limits
	fmt.Fprintf(r.log, "  %s: %d open in %.2fs; per session %.1f KiB heap+stack (stacks %.1f), %.1f KiB RSS, %.2f goroutines, %.2f fds\n",
		kind, open.Opened, res.storm, res.heap/1024, res.stacks/1024, res.rss/1024, res.goroutines, res.conns)
	return res, nil
}

// idleMemory runs metrics 4 (idle memory) and 6 (connect storm), which
// share their configurations: the storm is the opening of the sessions
// whose memory is then read.
func (r *runner) idleMemory() error {
	mem := r.section(4, "Idle memory per session",
		fmt.Sprintf("%s sessions (or connections) are opened and left idle; the server's heap and stacks in "+
			"use after two garbage collections (`HeapInuse + StackInuse`), and its resident set "+
			"(`VmRSS`), are read before and after, and the difference divided by the number open. "+
			"Every Comet session runs a realistic application goroutine parked in `Recv`. A fresh server "+
			"process serves each configuration, since RSS does not shrink after a collection. The Go "+
			"clients run in separate load processes of at most %s connections each, bound to source "+
			"addresses 127.0.0.2 and up.", formatValue(float64(r.idleN)), formatValue(perLoadChild)),
		"an idle gorilla/websocket connection (its handler parked in `NextReader`) for WebSocket; an idle "+
			"net/http SSE stream (headers flushed, handler parked) for SSE and XHR streaming; a parked "+
			"net/http request (headers flushed, handler parked) for long-polling.")
	storm := r.section(6, "Connect storm",
		"The time from telling the load processes to start to the last session established, with 32 "+
			"connects at once per load process. A Comet session is established when `client.Dial` "+
			"returns: negotiate, then attach until the open frame. A raw connection is established when "+
			"the upgrade or the response headers arrive. These are the openings of section 4.",
		"the same raw connections as section 4.")
	type pair struct{ comet, raw string }
	pairs := []pair{
		{cometKind(transport.WebSocket), kindRawWS},
		{cometKind(transport.SSE), kindRawSSE},
		{cometKind(transport.Streaming), kindRawSSE},
		{cometKind(transport.LongPoll), kindRawPark},
	}
	raws := map[string]idleResult{}
	for _, p := range pairs {
		n := sessionsFor(p.comet, r.idleN, r.limits.Soft)
		if n != r.idleN {
			mem.note(r.log, "%s, and its raw baseline, measured at %s sessions, not %s: a session holds %d "+
				"connections at the server, and the open-file limit is %d (hard %d), which the harness may not "+
				"raise here (raising a hard limit takes CAP_SYS_RESOURCE)", p.comet[len("comet-"):],
				formatValue(float64(n)), formatValue(float64(r.idleN)), serverConns[p.comet], r.limits.Soft, r.limits.Hard)
		}
		raw, ok := raws[fmt.Sprint(p.raw, n)]
		if !ok {
			var err error
			if raw, err = r.measureIdle(p.raw, n); err != nil {
				return err
			}
			raws[fmt.Sprint(p.raw, n)] = raw
		}
		comet, err := r.measureIdle(p.comet, n)
		if err != nil {
			return err
		}
		t := p.comet[len("comet-"):]
		at := fmt.Sprintf("%s, %s sessions", t, formatValue(float64(n)))
		mem.add(r.log, figure{Name: at + ": heap + stacks", Unit: "KiB/session", Comet: comet.heap / 1024, Raw: raw.heap / 1024})
		mem.add(r.log, figure{Name: at + ": RSS", Unit: "KiB/session", Comet: comet.rss / 1024, Raw: raw.rss / 1024})
		mem.add(r.log, figure{Name: at + ": goroutines", Unit: "per session", Comet: comet.goroutines, Raw: raw.goroutines, Detail: true})
		mem.add(r.log, figure{Name: at + ": server connections", Unit: "per session", Comet: comet.conns, Raw: raw.conns, Detail: true})
		storm.add(r.log, figure{Name: at, Unit: "s", Comet: comet.storm, Raw: raw.storm})
		for _, res := range []idleResult{comet, raw} {
			if res.failed > 0 {
				storm.note(r.log, "%s: %d connections failed to open", at, res.failed)
			}
		}
		r.plots.memory = append(r.plots.memory, barPair{t, comet.heap / 1024, raw.heap / 1024})
		r.plots.storm = append(r.plots.storm, barPair{t, comet.storm, raw.storm})
	}
	// A stream whose client may fall back probes it, and keeps the
	// connection of its POSTs: an extra row, beside the forced stream's.
	n := sessionsFor(kindSSEFallback, r.idleN, r.limits.Soft)
	raw, ok := raws[fmt.Sprint(kindRawSSE, n)]
	if !ok {
		var err error
		if raw, err = r.measureIdle(kindRawSSE, n); err != nil {
			return err
		}
	}
	comet, err := r.measureIdle(kindSSEFallback, n)
	if err != nil {
		return err
	}
	at := fmt.Sprintf("sse, long-polling to fall back to, %s sessions", formatValue(float64(n)))
	mem.add(r.log, figure{Name: at + ": heap + stacks", Unit: "KiB/session", Comet: comet.heap / 1024, Raw: raw.heap / 1024, Detail: true})
	mem.add(r.log, figure{Name: at + ": RSS", Unit: "KiB/session", Comet: comet.rss / 1024, Raw: raw.rss / 1024, Detail: true})
	mem.add(r.log, figure{Name: at + ": server connections", Unit: "per session", Comet: comet.conns, Raw: raw.conns, Detail: true})
	mem.note(r.log, "The stream rows above are for a client forced to the stream, which sends no probe (PROTOCOL.md "+
		"section 8) and so holds one connection; a client that may leave the stream for long-polling probes it "+
		"and keeps the connection of its POSTs open, as a browser does: the row \"%s\".", at)
	mem.Charts = append(mem.Charts, chart{r.chartFile("memory.png"), "heap and stacks per idle session, Comet and raw"})
	storm.Charts = append(storm.Charts, chart{r.chartFile("storm.png"), "time to establish every session, Comet and raw"})
	return nil
}
