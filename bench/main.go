// Command bench measures Comet against the raw primitives it is built on:
// gorilla/websocket, net/http request/response and a flush-per-event SSE
// handler, in the same run, and writes docs/BENCHMARKS.md with PNG charts.
//
//	go -C bench run . -doc ../docs/BENCHMARKS.md -out ../docs/benchmarks
//
// (make bench runs it from the repository root.) Every configuration gets
// a fresh server process, this program started again with the hidden
// subcommand "serve"; load clients that hold thousands of connections run
// as further copies ("load"). Children exit when their stdin closes, and
// after a lifetime limit in any case, so a run always ends.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	if len(os.Args) > 1 {
		var err error
		switch os.Args[1] {
		case "serve":
			err = serveMain(os.Args[2:])
		case "load":
			err = loadMain(os.Args[2:])
		default:
			err = benchMain(os.Args[1:])
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if err := benchMain(nil); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// runner holds a run's settings and results.
type runner struct {
	log io.Writer

	sessions     int           // concurrent sessions of the rate workloads
	warm, window time.Duration // warm-up and measuring window of each rate or latency
	settle       time.Duration // pause after a storm before memory is read
	idleN        int           // idle sessions of metrics 4 and 6
	fanNs        []int         // session counts of metric 5
	fanMsgs      int           // messages published per fan-out configuration
	fallbackReps int           // dials per proxy fault in metric 7
	stormN       int           // push-storm targets of metric 8
	stormFor     time.Duration // how long the push storm lasts
	soakN        int           // sessions per transport in the soak (metric 9)
	soakFor      time.Duration // how long the soak holds them
	soakEvery    time.Duration // time between samples
	soakPassed   bool

	matrixPath string // docs/fallback-matrix.md
	chartDir   string // where charts are written
	chartLink  string // chartDir relative to the document

	limits                   fileLimit // this process's, after raising
	serverLimits, loadLimits fileLimit
	src                      int     // next free source address (see sourceAddr)
	rawPOST                  float64 // section 2's raw POST echo rate, reused by section 3

	rep   report
	plots plotData
}

// section starts a new section of the report.
func (r *runner) section(n int, title, about, baseline string) *section {
	s := &section{N: n, Title: title, About: about, Baseline: baseline}
	r.rep.Sections = append(r.rep.Sections, s)
	fmt.Fprintf(r.log, "\n== %d. %s\n", n, title)
	return s
}

// chartFile returns the link to chart name from the document.
func (r *runner) chartFile(name string) string {
	return filepath.ToSlash(filepath.Join(r.chartLink, name))
}

func benchMain(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	quick := fs.Bool("quick", false, "every metric at small scale, in about a minute and a half (writes to .cache/bench/quick unless -doc and -out are set)")
	doc := fs.String("doc", "", "the report to write (default docs/BENCHMARKS.md, quick: .cache/bench/quick/BENCHMARKS.md)")
	out := fs.String("out", "", "the folder for the charts (default docs/benchmarks, quick: .cache/bench/quick)")
	matrix := fs.String("matrix", "docs/fallback-matrix.md", "the browser fallback matrix quoted in metric 7")
	only := fs.String("only", "", "comma-separated metric numbers to run (default 1 to 8 and 10 to 13, and in quick mode 9); the report then has only those")
	soakOnly := fs.Bool("soak", false, "run only the soak (metric 9) and rewrite only its section of the report")
	soakFor := fs.Duration("soak-duration", 0, "how long the soak holds its sessions (default 10m, quick: 20s)")
	fs.StringVar(&profileDir, "profile", "", "write every server process's CPU, block and mutex profiles, every load process's CPU profile, and section 4's heap and goroutine snapshots, to this folder")
	fs.Parse(args)
	// Paths given are relative to where the command runs; the defaults to
	// the repository's root, so that `go -C bench run .` works too.
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, p := range map[string]*string{"doc": doc, "out": out, "matrix": matrix, "profile": &profileDir} {
		if set[name] && !filepath.IsAbs(*p) {
			abs, err := filepath.Abs(*p)
			if err != nil {
				return err
			}
			*p = abs
		}
	}
	if root, err := repoRoot(); err == nil {
		if err := os.Chdir(root); err != nil {
			return err
		}
	}

	r := &runner{log: os.Stdout, matrixPath: *matrix, rawPOST: math.NaN(),
		sessions: 64, warm: time.Second, window: 6 * time.Second, settle: time.Second,
		idleN: 10_000, fanNs: []int{1000, 10_000}, fanMsgs: 20, fallbackReps: 10,
		stormN: 1000, stormFor: 3 * time.Second,
		soakN: 10_000, soakFor: 10 * time.Minute, soakEvery: 10 * time.Second}
	if *quick {
		r.warm, r.window, r.settle = 100*time.Millisecond, 700*time.Millisecond, 300*time.Millisecond
		r.idleN, r.fanNs, r.fanMsgs, r.fallbackReps = 1000, []int{1000}, 3, 2
		// The soak's 20 s and the storm are half the quick run: fewer
		// sessions keep it short.
		r.stormN, r.stormFor = 300, 2*time.Second
		r.soakN, r.soakFor = 300, 20*time.Second
	}
	if *soakFor > 0 {
		r.soakFor = *soakFor
	}
	if r.soakFor < 2*r.soakEvery {
		return fmt.Errorf("-soak-duration %v: the soak takes a sample every %v and needs three", r.soakFor, r.soakEvery)
	}
	if *doc == "" {
		*doc = map[bool]string{false: "docs/BENCHMARKS.md", true: ".cache/bench/quick/BENCHMARKS.md"}[*quick]
	}
	if *out == "" {
		*out = map[bool]string{false: "docs/benchmarks", true: ".cache/bench/quick"}[*quick]
	}
	r.chartDir = *out
	link, err := filepath.Rel(filepath.Dir(*doc), *out)
	if err != nil {
		return err
	}
	r.chartLink = link
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(*doc), 0o755); err != nil {
		return err
	}
	if profileDir != "" {
		if err := os.MkdirAll(profileDir, 0o755); err != nil {
			return err
		}
	}

	r.limits, err = raiseFileLimit()
	if err != nil {
		fmt.Fprintln(r.log, "bench:", err)
	}
	r.rep = report{Quick: *quick, Started: time.Now(), Machine: describeMachine()}
	fmt.Fprintf(r.log, "bench: %s, %d CPUs, %s, commit %s, load %s; open files: soft %d, hard %d\n",
		r.rep.Machine.CPU, r.rep.Machine.CPUs, r.rep.Machine.Go, r.rep.Machine.Commit,
		r.rep.Machine.LoadStart, r.limits.Soft, r.limits.Hard)

	metrics := []func() error{r.webSocketEcho, r.longPolling, r.streams, r.idleMemory, r.fanout, r.fallback, r.pushStorm, r.soak,
		r.binaryFrames, r.compression, r.cluster, r.failover}
	// Metrics 4 and 6 share their runs (idleMemory); number them as the
	// issue does by running the shared one for either.
	want := map[int]bool{}
	for _, f := range strings.Split(*only, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
			want[n] = true
		}
	}
	numbers := [][]int{{1}, {2}, {3}, {4, 6}, {5}, {7}, {8}, {9}, {10}, {11}, {12}, {13}}
	// The soak takes ten minutes: a full run leaves it to `make soak`
	// (-soak), and keeps the section that wrote.
	switch {
	case *soakOnly:
		want = map[int]bool{9: true}
	case len(want) == 0:
		for n := 1; n <= 13; n++ {
			want[n] = true
		}
		want[9] = *quick
	}
	var failed []string
	for i, m := range metrics {
		run := false
		for _, n := range numbers[i] {
			run = run || want[n]
		}
		if !run {
			continue
		}
		start := time.Now()
		err := m()
		fmt.Fprintf(r.log, "  (%v)\n", time.Since(start).Round(100*time.Millisecond))
		if err != nil {
			fmt.Fprintf(r.log, "bench: metric %v failed: %v\n", numbers[i], err)
			failed = append(failed, fmt.Sprintf("%v: %v", numbers[i], err))
			if len(r.rep.Sections) > 0 {
				s := r.rep.Sections[len(r.rep.Sections)-1]
				s.Notes = append(s.Notes, "**This metric failed in this run:** "+err.Error())
			}
		}
	}
	r.orderSections()
	r.rep.Limits = fmt.Sprintf("soft %d, hard %d in the bench process; server processes %d/%d, load processes %d/%d "+
		"(each raises its soft limit to the hard one)", r.limits.Soft, r.limits.Hard,
		r.serverLimits.Soft, r.serverLimits.Hard, r.loadLimits.Soft, r.loadLimits.Hard)
	r.rep.Machine.LoadEnd = loadAverage()
	r.rep.Elapsed = time.Since(r.rep.Started)

	if err := r.plots.write(r.chartDir); err != nil {
		return err
	}
	if err := r.writeDoc(*doc, *soakOnly); err != nil {
		return err
	}
	fmt.Fprintf(r.log, "\nbench: wrote %s and charts in %s in %s\n", *doc, *out, r.rep.Elapsed.Round(time.Second))
	if len(failed) > 0 {
		return fmt.Errorf("%d metric(s) failed: %s", len(failed), strings.Join(failed, "; "))
	}
	if *soakOnly && !r.soakPassed {
		return fmt.Errorf("the soak failed its criterion (see the table above)")
	}
	return nil
}

// writeDoc writes the report to doc. With soakOnly it replaces only the
// soak's section of the document there; otherwise it writes the whole
// document, keeping the soak's section of the old one if the soak did not
// run.
func (r *runner) writeDoc(doc string, soakOnly bool) error {
	old, err := os.ReadFile(doc)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var b strings.Builder
	if soakOnly {
		for _, s := range r.rep.Sections {
			s.markdown(&b)
		}
		return os.WriteFile(doc, []byte(spliceBlock(string(old), "soak", b.String())), 0o644)
	}
	r.rep.markdown(&b)
	out := b.String()
	if keptBlock(out, "soak") == "" {
		if kept := keptBlock(string(old), "soak"); kept != "" {
			out = spliceBlock(out, "soak", kept)
		}
	}
	return os.WriteFile(doc, []byte(out), 0o644)
}

// orderSections sorts the sections by metric number: the connect storm
// (6) is measured with idle memory (4), before fan-out (5).
func (r *runner) orderSections() {
	slices.SortStableFunc(r.rep.Sections, func(a, b *section) int { return a.N - b.N })
}

// repoRoot returns the nearest folder, from the working directory up,
// holding the go.mod of Comet's root module.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(b), "module github.com/seed-544bbf9f/comet\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no Comet repository above the working directory")
		}
		dir = parent
	}
}

// describeMachine reads what the report says about the machine.
func describeMachine() machine {
	m := machine{CPU: "unknown", Kernel: "unknown", Go: runtime.Version(), CPUs: runtime.NumCPU(), LoadStart: loadAverage()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.Join(strings.Fields(v), " ")
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				m.MemGiB = kb / (1 << 20)
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.Commit = "unknown"
	if b, err := exec.Command("git", "describe", "--always", "--dirty", "--abbrev=12").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(b))
	}
	return m
}

// loadAverage returns the 1, 5 and 15 minute load averages.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], ", ")
}
