package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/internal/faultproxy"
)

// fallbackResult is one proxy behaviour of metric 7.
type fallbackResult struct {
	times      []float64 // ms, dial start to first message
	transports []string  // the transport each repetition ended on
}

// measureFallback dials the greeting server through a fault proxy doing
// f, r.fallbackReps times, with the Go client's default options, and
// times each from the start of Dial to the greeting.
func (r *runner) measureFallback(base string, f fault) (fallbackResult, error) {
	var res fallbackResult
	p, err := faultproxy.Start(base, &f.opts)
	if err != nil {
		return res, err
	}
	defer p.Close()
	// One dial first, not counted: the first of a process pays for setting
	// up what later ones reuse, which is no part of a fallback.
	for i := -1; i < r.fallbackReps; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		start := time.Now()
		c, err := client.Dial(ctx, p.URL()+"/comet", nil)
		if err != nil {
			cancel()
			return res, fmt.Errorf("fallback (%s): %w", f.name, err)
		}
		_, msg, err := c.Recv(ctx)
		d := time.Since(start)
		t := c.Transport()
		c.CloseNow()
		cancel()
		if err != nil {
			return res, fmt.Errorf("fallback (%s): %w", f.name, err)
		}
		if !bytes.Equal(msg, greeting) {
			return res, fmt.Errorf("fallback (%s): first message %q, want %q", f.name, msg, greeting)
		}
		if i >= 0 {
			res.times = append(res.times, float64(d)/float64(time.Millisecond))
			res.transports = append(res.transports, t)
		}
	}
	return res, nil
}

// fallback is metric 7.
func (r *runner) fallback() error {
	s := r.section(7, "Fallback time to first message",
		fmt.Sprintf("The Go client, with its default options, dials a server whose application sends a "+
			"greeting at once, through the fault proxy of the browser tests (`internal/faultproxy`), which "+
			"refuses the WebSocket upgrade (400), black-holes it (relays the 101, then drops every byte) "+
			"or hangs it (never answers), or refuses it and holds every response until it ends (a "+
			"buffering proxy, which streams never pass). Each figure is the time from the start of `client.Dial` to the "+
			"greeting's arrival; %d repetitions after one not counted, each a fresh session, median and "+
			"maximum.", r.fallbackReps),
		"not a raw primitive here but the same dial through the same proxy with WebSocket working, so the "+
			"ratio is the cost of the fault.")
	srv, err := startServer(appGreet)
	if err != nil {
		return err
	}
	defer srv.stop()
	pass, err := r.measureFallback(srv.base, fault{name: "pass"})
	if err != nil {
		return err
	}
	passMed, passMax := median(pass.times), slices.Max(pass.times)
	var used []string
	for _, f := range faults {
		res, err := r.measureFallback(srv.base, f)
		if err != nil {
			return err
		}
		s.add(r.log, figure{Name: fmt.Sprintf("WebSocket %s: median", f.name), Unit: "ms", Comet: median(res.times), Raw: passMed})
		s.add(r.log, figure{Name: fmt.Sprintf("WebSocket %s: max", f.name), Unit: "ms", Comet: slices.Max(res.times), Raw: passMax})
		used = append(used, fmt.Sprintf("%s → %s", f.name, strings.Join(uniq(res.transports), ", ")))
		r.plots.fallback = append(r.plots.fallback, barPair{f.name, median(res.times), passMed})
	}
	s.note(r.log, "transport reached: %s (with WebSocket working: %s)", strings.Join(used, "; "), strings.Join(uniq(pass.transports), ", "))
	s.Extra = browserFigures(r.matrixPath)
	s.Charts = append(s.Charts, chart{r.chartFile("fallback.png"), "time to first message per proxy fault, Go client"})
	return nil
}

// fault is one misbehaviour of the proxy in metric 7, named as the report
// says it.
type fault struct {
	name string
	opts faultproxy.Options
}

// faults are metric 7's: what the proxy does to the upgrade, and a proxy
// that refuses it and buffers every response as well (the buffering nginx
// of the browser matrix).
var faults = []fault{
	{"refused", faultproxy.Options{Upgrade: faultproxy.UpgradeRefuse}},
	{"black-holed", faultproxy.Options{Upgrade: faultproxy.UpgradeBlackHole}},
	{"hung", faultproxy.Options{Upgrade: faultproxy.UpgradeHang}},
	{"refused, streams buffered", faultproxy.Options{Upgrade: faultproxy.UpgradeRefuse, Buffer: true}},
}

// uniq returns the distinct strings of xs, in order of first appearance.
func uniq(xs []string) []string {
	var out []string
	for _, x := range xs {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}
