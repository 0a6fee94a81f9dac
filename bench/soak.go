package main

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// soakHeartbeat is the server's heartbeat (and long-poll hold) during the
// soak: short, so that heartbeats and polls flow all through it, where the
// default (25 s) would leave the sessions almost silent.
const soakHeartbeat = 5 * time.Second

// soakSample is one reading of a soaked server.
type soakSample struct {
	At         time.Duration // since every session of the soak was open
	Heap       float64       // bytes: HeapInuse + StackInuse after two collections
	RSS        float64       // bytes: VmRSS
	Goroutines float64
	Files      float64 // open file descriptors
	Sessions   int     // Comet sessions the handler holds
}

// soakQuantity is one quantity the soak watches, and how far its last
// sample may stray from the reference sample.
type soakQuantity struct {
	name  string
	unit  string // of value
	limit float64
	value func(soakSample) float64
}

var soakQuantities = []soakQuantity{
	{"heap + stacks", "MiB", 0.05, func(s soakSample) float64 { return s.Heap / (1 << 20) }},
	{"RSS", "MiB", 0.10, func(s soakSample) float64 { return s.RSS / (1 << 20) }},
	{"goroutines", "", 0.05, func(s soakSample) float64 { return s.Goroutines }},
	{"open files", "", 0.05, func(s soakSample) float64 { return s.Files }},
}

// soakCheck is the verdict on one quantity of one soaked server.
type soakCheck struct {
	q         soakQuantity
	ref, last soakSample
	change    float64 // (last - ref) / ref
	ok        bool
}

// judgeSoak compares the last sample with the reference, the first sample
// taken at or after refAt, quantity by quantity. It returns nothing when
// there is no reference sample or no sample after it.
func judgeSoak(samples []soakSample, refAt time.Duration) []soakCheck {
	ref := -1
	for i, s := range samples {
		if s.At >= refAt {
			ref = i
			break
		}
	}
	if ref < 0 || ref == len(samples)-1 {
		return nil
	}
	var checks []soakCheck
	for _, q := range soakQuantities {
		c := soakCheck{q: q, ref: samples[ref], last: samples[len(samples)-1]}
		a, b := q.value(c.ref), q.value(c.last)
		c.change = (b - a) / a
		if a == 0 {
			c.change = map[bool]float64{true: 0, false: math.Inf(1)}[b == 0]
		}
		c.ok = math.Abs(c.change) <= q.limit
		checks = append(checks, c)
	}
	return checks
}

// soakRun is one transport's soak: its server, its load and its samples.
type soakRun struct {
	name    string // the transport
	n       int    // sessions open
	srv     *serverProc
	load    *loadGroup
	samples []soakSample
}

func (s *soakRun) stop() {
	s.load.stop()
	s.srv.stop()
}

// soakRefAt is when the reference sample is taken: after a minute, when
// the sessions have settled, or a quarter of the way in a shorter soak.
func (r *runner) soakRefAt() time.Duration { return min(time.Minute, r.soakFor/4) }

// soak is metric 9: idle sessions of three transports held side by side,
// each in its own server process, with heartbeats flowing, while the
// servers' memory, goroutines and open files are sampled.
func (r *runner) soak() error {
	s := r.section(9, "Soak: idle sessions over time",
		fmt.Sprintf("Idle sessions (%s for WebSocket and long-polling; SSE holds two connections per "+
			"session, so it gets what the open-file limit allows, as in section 4) are opened, one "+
			"transport after another, each against its own server process, then held side by side "+
			"for %s. The server's heartbeat, and long-polling's hold, is %s rather than the default "+
			"25 s, so that heartbeats and polls keep flowing. Every %s each server reports its heap "+
			"and stacks in use after two collections (`HeapInuse + StackInuse`, as in section 4), its "+
			"resident set (`VmRSS`), its goroutines and its open files. **Pass**: the last sample within "+
			"5%% of the reference sample (the first taken %s or more into the soak, when the sessions "+
			"have settled) for heap, goroutines and open files, and within 10%% for RSS.", formatValue(float64(r.soakN)), r.soakFor, soakHeartbeat, r.soakEvery, r.soakRefAt()),
		"")
	s.Marker = "soak"
	life := r.soakFor + 15*time.Minute // opening the sessions comes first
	var runs []*soakRun
	defer func() {
		for _, run := range runs {
			run.stop()
		}
	}()
	for _, t := range []string{transport.WebSocket, transport.SSE, transport.LongPoll} {
		kind := cometKind(t)
		run := &soakRun{name: t, n: sessionsFor(kind, r.soakN, r.limits.Soft)}
		if run.n != r.soakN {
			s.note(r.log, "%s: %s sessions, not %s: a session holds %d connections at the server, and the "+
				"open-file limit is %d", t, formatValue(float64(run.n)), formatValue(float64(r.soakN)),
				serverConns[kind], r.limits.Soft)
		}
		var err error
		if run.srv, err = startServerWith(serverConfig{app: appEcho, heartbeat: soakHeartbeat, life: life}); err != nil {
			return err
		}
		runs = append(runs, run)
		if run.load, err = startLoad(run.srv.base, kind, run.n, perLoadChild, &r.src, life); err != nil {
			return err
		}
		open, err := run.load.open(3 * time.Minute)
		if err != nil {
			return err
		}
		if open.Failed > 0 {
			s.note(r.log, "%s: %d of %d sessions failed to open; first error: %s", t, open.Failed, run.n, open.Err)
		}
		run.n = open.Opened
		fmt.Fprintf(r.log, "  %s: %d sessions open in %v\n", t, open.Opened, time.Duration(open.NS).Round(time.Millisecond))
	}

	start := time.Now()
	for i := range int(r.soakFor/r.soakEvery) + 1 {
		time.Sleep(time.Until(start.Add(time.Duration(i) * r.soakEvery)))
		var line []string
		for _, run := range runs {
			m, err := run.srv.mem()
			if err != nil {
				return fmt.Errorf("soak, %s: %w", run.name, err)
			}
			run.samples = append(run.samples, soakSample{At: time.Since(start), Heap: float64(m.HeapInuse + m.StackInuse),
				RSS: float64(m.RSS), Goroutines: float64(m.Goroutines), Files: float64(m.FDs), Sessions: m.Sessions})
			line = append(line, fmt.Sprintf("%s %.1f MiB heap, %.1f MiB RSS, %d goroutines, %d files",
				run.name, float64(m.HeapInuse+m.StackInuse)/(1<<20), float64(m.RSS)/(1<<20), m.Goroutines, m.FDs))
		}
		fmt.Fprintf(r.log, "  %4.0fs: %s\n", time.Since(start).Seconds(), strings.Join(line, "; "))
	}

	var b strings.Builder
	fmt.Fprintf(&b, "| transport | sessions held | quantity | reference | last | change | allowed | verdict |\n")
	fmt.Fprintf(&b, "|---|---:|---|---:|---:|---:|---:|---|\n")
	pass := true
	for _, run := range runs {
		checks := judgeSoak(run.samples, r.soakRefAt())
		if checks == nil {
			return fmt.Errorf("soak, %s: no reference sample at %v", run.name, r.soakRefAt())
		}
		for _, c := range checks {
			verdict := "pass"
			if !c.ok {
				verdict, pass = "**fail**", false
			}
			unit := ""
			if c.q.unit != "" {
				unit = " " + c.q.unit
			}
			fmt.Fprintf(&b, "| %s | %s → %s | %s | %s%s at %s | %s%s at %s | %+.1f%% | ±%.0f%% | %s |\n", run.name,
				formatValue(float64(c.ref.Sessions)), formatValue(float64(c.last.Sessions)), c.q.name, formatValue(c.q.value(c.ref)), unit, c.ref.At.Round(time.Second),
				formatValue(c.q.value(c.last)), unit, c.last.At.Round(time.Second), 100*c.change, 100*c.q.limit, verdict)
			fmt.Fprintf(r.log, "  %-10s %-14s %12s → %-12s %+6.1f%% (±%.0f%%) %s\n", run.name, c.q.name,
				formatValue(c.q.value(c.ref)), formatValue(c.q.value(c.last)), 100*c.change, 100*c.q.limit, verdict)
		}
		if a, z := run.samples[0].Sessions, run.samples[len(run.samples)-1].Sessions; a != run.n || z != run.n {
			s.note(r.log, "%s: %d sessions opened; the server held %d at the first sample and %d at the last",
				run.name, run.n, a, z)
		}
		r.plots.soak = append(r.plots.soak, soakSeries{run.name, run.samples})
	}
	fmt.Fprintf(&b, "\nVerdict: %s. Soaked on %s at commit %s, %d CPUs; load average (1, 5, 15 min) %s "+
		"before the soak and %s at its end, which counts its own processes. The rest of this document may "+
		"come from another run (`make bench` keeps this section, `make soak` rewrites only it).\n",
		map[bool]string{true: "**pass**", false: "**fail**"}[pass], r.rep.Started.UTC().Format("2006-01-02 15:04 MST"),
		r.rep.Machine.Commit, r.rep.Machine.CPUs, r.rep.Machine.LoadStart, loadAverage())
	r.soakPassed = pass
	fmt.Fprintf(r.log, "  soak: %s\n", map[bool]string{true: "pass", false: "FAIL"}[pass])
	s.Extra = b.String()
	s.Charts = append(s.Charts, chart{r.chartFile("soak.png"), "each server's heap, RSS, goroutines and open files over the soak"})
	return nil
}
