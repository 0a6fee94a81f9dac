package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The report of TestFallbackMatrix: one row per case, written as markdown
// when the test ends, failed or not, to COMET_MATRIX (a relative path is
// taken from this folder), or else to comet-fallback-matrix.md in the
// temporary folder. docs/fallback-matrix.md is a copy of one run's file.

// matrix collects the rows of the cases in the order they ran.
type matrix struct {
	t    *testing.T
	mu   sync.Mutex
	rows []*row
}

// row is what one case saw.
type row struct {
	Case, Path string
	Result     string // pass, FAIL or skipped
	Transport  string // the transport the session ended on
	// Reasons are the fallback reasons of the transport and reconnecting
	// events, each once, in order of appearance.
	Reasons    []string
	First      float64 // ms from the navigation's start to the first message
	Opened     float64 // ms from the navigation's start to the open event
	Up, Down   tally   // page to server, server to page
	Reconnects int     // reconnecting events
	Notes      []string
}

// tally counts the numbered messages ("m0", "m1", …) that arrived one way.
type tally struct {
	Got     int  // messages that arrived
	Lost    int  // numbers that never arrived
	Dup     int  // arrivals of a number that had arrived already
	Ordered bool // exactly m0 to mN-1, in order
}

func (c tally) exact(n int) bool { return c.Got == n && c.Lost == 0 && c.Dup == 0 && c.Ordered }

// tallyOf counts got, in which n numbered messages were expected; the
// markers the page sends between them ("half", "end") are skipped.
func tallyOf(got []string, n int) tally {
	var c tally
	seen := make(map[int]bool, n)
	c.Ordered = true
	for _, m := range got {
		if m == "half" || m == "end" {
			continue
		}
		i, err := strconv.Atoi(strings.TrimPrefix(m, "m"))
		if err != nil || !strings.HasPrefix(m, "m") || i < 0 || i >= n {
			c.Ordered = false // a stranger: neither lost nor a duplicate
			continue
		}
		if i != c.Got {
			c.Ordered = false
		}
		c.Got++
		if seen[i] {
			c.Dup++
		}
		seen[i] = true
	}
	c.Lost = n - len(seen)
	c.Ordered = c.Ordered && c.Lost == 0 && c.Dup == 0
	return c
}

// newMatrix returns a matrix that writes its report when t ends.
func newMatrix(t *testing.T) *matrix {
	m := &matrix{t: t}
	t.Cleanup(m.write)
	return m
}

// run runs case number num as a subtest, with a row of its own.
func (m *matrix) run(num, path string, test func(t *testing.T, rw *row)) bool {
	rw := &row{Case: num, Path: path, First: -1}
	m.mu.Lock()
	m.rows = append(m.rows, rw)
	m.mu.Unlock()
	return m.t.Run(num+" "+path, func(t *testing.T) {
		t.Cleanup(func() {
			switch {
			case t.Failed():
				rw.Result = "FAIL"
			case t.Skipped():
				rw.Result = "skipped"
			default:
				rw.Result = "pass"
			}
		})
		test(t, rw)
	})
}

// record fills rw from what the page saw, the end of the session on the
// server, and the requests of the session: the reasons the page gave the
// server for each attach (the why parameter) include those of transports
// it left before ever using them, which no page event reports.
func (rw *row) record(r result, e ended, reqs []request) {
	rw.Transport = r.Transport
	rw.First, rw.Opened = r.First, r.OpenedAt
	rw.Reconnects = r.Reconnecting
	var reasons []string
	for _, ev := range r.Transports {
		reasons = append(reasons, ev.Reason)
	}
	reasons = append(reasons, r.Drops...)
	for _, q := range reqs {
		reasons = append(reasons, q.why)
	}
	for _, why := range reasons {
		if why != "" && !slices.Contains(rw.Reasons, why) {
			rw.Reasons = append(rw.Reasons, why)
		}
	}
	// In a fixed order, js/README.md's (unknown ones last), so that runs
	// compare line by line.
	slices.SortStableFunc(rw.Reasons, func(a, b string) int { return reasonRank(a) - reasonRank(b) })
	rw.Down = tallyOf(r.Got, matrixMessages)
	rw.Up = tallyOf(e.got, matrixMessages)
}

// reasonRank orders the shim's reasons as js/README.md lists them.
func reasonRank(why string) int {
	order := []string{"ws_refused", "ws_hung", "ws_silent", "stream_buffered", "idle_cut", "early_death", "upgraded", "dropped"}
	if i := slices.Index(order, why); i >= 0 {
		return i
	}
	return len(order)
}

func (rw *row) note(format string, args ...any) {
	rw.Notes = append(rw.Notes, fmt.Sprintf(format, args...))
}

// matrixPath is where the report goes.
func matrixPath() string {
	if p := os.Getenv("COMET_MATRIX"); p != "" {
		return p
	}
	return filepath.Join(os.TempDir(), "comet-fallback-matrix.md")
}

// write writes the report and names its file in the test's output.
func (m *matrix) write() {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	b.WriteString(matrixHeader())
	b.WriteString("| case | transport chosen | fallback reasons seen | open | first message | messages each way | lost | duplicated | reconnects | result | notes |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	direct := 0.0 // case 1's first message, which the others are compared with
	for _, rw := range m.rows {
		if rw.Case == "1" {
			direct = rw.First
		}
	}
	for _, rw := range m.rows {
		if rw.Result == "" {
			rw.Result = "not run"
		}
		first := ms(rw.First)
		if direct > 0 && rw.First > 0 && rw.Case != "1" {
			first += fmt.Sprintf(" (%.2f×)", rw.First/direct)
		}
		fmt.Fprintf(&b, "| %s. %s | %s | %s | %s | %s | %d / %d | %d / %d | %d / %d | %d | %s | %s |\n",
			rw.Case, rw.Path, orDash(rw.Transport), orDash(strings.Join(rw.Reasons, ", ")), ms(rw.Opened), first,
			rw.Up.Got, rw.Down.Got, rw.Up.Lost, rw.Down.Lost, rw.Up.Dup, rw.Down.Dup,
			rw.Reconnects, rw.Result, orDash(strings.Join(rw.Notes, "; ")))
	}
	path := matrixPath()
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		m.t.Errorf("writing the fallback matrix: %v", err)
		return
	}
	m.t.Logf("fallback matrix written to %s", path)
}

// ms formats a time in ms from the navigation's start; "—" if none.
func ms(v float64) string {
	if v <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f ms", v)
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// matrixHeader explains the table and names what produced it.
func matrixHeader() string {
	chromium, _ := chromiumPath()
	var tools []string
	for _, p := range []struct{ name, bin, flag string }{
		{"Chromium", chromium, "--version"},
		{"nginx", lookSbin("nginx"), "-v"},
		{"haproxy", lookSbin("haproxy"), "-v"},
	} {
		if p.bin != "" {
			tools = append(tools, fmt.Sprintf("`%s`", version(p.bin, p.flag)))
		}
	}
	return fmt.Sprintf(`# Fallback matrix

What the browser shim did behind each proxy: headless Chromium running the
shim against an in-process Comet server, directly or behind real nginx and
haproxy servers, or behind the synthetic misbehaving proxy of
internal/faultproxy. Each case exchanges %d messages each way. This file
is written by TestFallbackMatrix (e2e/matrix_test.go); regenerate it with

    COMET_MATRIX=$PWD/docs/fallback-matrix.md go -C e2e test -race -run TestFallbackMatrix -v

The proxies' configurations are in e2e/proxy_test.go, the cases in
e2e/matrix_test.go. Columns: *transport chosen* is the one the session
ended on; *fallback reasons seen* are the shim's reasons in its transport
and reconnecting events and in the why parameter of its attaches
(js/README.md lists them); *open* and *first message* are the times from
the navigation's start (performance.now() in the page, so the page load
is included) to the open event and to the first message received (the
echo of the first one sent), with, in brackets, the first message's ratio
to case 1's, the direct one, of the same run; *messages each way*, *lost* and *duplicated*
are page → server / server → page; *reconnects* counts the page's
reconnecting events (a dropped transport replaced on the same session).
A session whose WebSocket is broken opens on the shim's early chain of
polls (PROTOCOL.md section 8) and moves to the transport that wins the
race; those cases wait halfway through their exchange until the race is
decided, so that the second half runs on its winner. *transport chosen*
is that winner.

Run of %s on %s/%s with %s.

`, matrixMessages, time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.GOOS, runtime.GOARCH, strings.Join(tools, ", "))
}
