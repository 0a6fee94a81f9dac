package main

import (
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var l latencies
	for i := 100; i >= 1; i-- {
		l = append(l, time.Duration(i)*time.Millisecond)
	}
	l = l.sorted()
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{
		{50, 50 * time.Millisecond},
		{99, 99 * time.Millisecond},
		{99.9, 100 * time.Millisecond},
		{100, 100 * time.Millisecond},
		{0.1, time.Millisecond},
	} {
		if got := percentile(l, tc.p); got != tc.want {
			t.Errorf("percentile(1..100 ms, %g) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
	// 100 samples say nothing about p99.9.
	if got := l.ms(99.9); !math.IsNaN(got) {
		t.Errorf("ms(99.9) of 100 samples = %v, want NaN", got)
	}
	if got := l.ms(99); got != 99 {
		t.Errorf("ms(99) = %v, want 99", got)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(tc.xs); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.xs, got, tc.want)
		}
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median(nil) is not NaN")
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{
		{1234567.4, "1,234,567"},
		{-1234.6, "-1,235"},
		{100, "100"},
		{56.78, "56.8"},
		{1.234, "1.23"},
		{0.04851, "0.0485"},
		{0, "0"},
		{math.NaN(), "—"},
	} {
		if got := formatValue(tc.v); got != tc.want {
			t.Errorf("formatValue(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
	if got := formatRatio(58.12); got != "58.1×" {
		t.Errorf("formatRatio(58.12) = %q", got)
	}
	if got := formatRatio(0.4249); got != "0.42×" {
		t.Errorf("formatRatio(0.4249) = %q", got)
	}
	if got := (figure{Comet: 1, Raw: math.NaN()}).ratio(); !math.IsNaN(got) {
		t.Errorf("ratio without a baseline = %v, want NaN", got)
	}
}

func TestMarkdown(t *testing.T) {
	r := report{Started: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC), Elapsed: 9 * time.Minute,
		Machine: machine{CPU: "Test CPU", CPUs: 2, MemGiB: 24, Go: "go1.26", Commit: "abc"}}
	s := &section{N: 1, Title: "WebSocket echo", About: "about", Baseline: "gorilla",
		Charts: []chart{{"benchmarks/latency.png", "latency"}}}
	s.Figures = append(s.Figures, figure{Name: "round trips/s, 64 sessions", Unit: "round trips/s", Comet: 24284, Raw: 58125, Higher: true},
		figure{Name: "p99.9", Unit: "ms", Comet: 0.5, Raw: math.NaN()})
	r.Sections = []*section{s}
	var b strings.Builder
	r.markdown(&b)
	got := b.String()
	for _, want := range []string{
		"## 1. WebSocket echo\n",
		"| round trips/s, 64 sessions | round trips/s | 24,284 | 58,125 | 0.42× |\n",
		"| p99.9 | ms | 0.5 | — | — |\n",
		"| 1 | round trips/s, 64 sessions (round trips/s) | 24,284 | 58,125 | 0.42× |\n",
		"![latency](benchmarks/latency.png)",
		"Raw baseline: gorilla",
		"| CPU | Test CPU, 2 logical CPUs |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the report lacks %q:\n%s", want, got)
		}
	}
}

// matrixDoc is shaped like the browser tests' fallback matrix.
const matrixDoc = "# Fallback matrix\n\nSome prose | with a pipe.\n\n" +
	"```\n| not | a table |\n|---|---|\n```\n\n" +
	"| case | transport chosen | fallback reasons seen | first message | lost | notes |\n" +
	"|---|---|---|:---:|---|---|\n" +
	"| 1. direct, no proxy | websocket | — | 180 ms | 0 / 0 | — |\n" +
	"| 3. nginx, buffering | longpoll | stream_buffered | 900 ms | 0 / 0 | a \\| b |\n" +
	"| 6. synthetic: upgrade answered 101, then every frame dropped | sse | ws_silent | 640 ms | 0 / 0 | — |\n" +
	"| 7. synthetic: upgrade never answered | sse | ws_hung | 650 ms | 0 / 0 | — |\n" +
	"\n## Other\n\n| a | b |\n|---|---|\n| hang | 1 |\n"

func TestParseTables(t *testing.T) {
	tables := parseTables(matrixDoc)
	if len(tables) != 2 {
		t.Fatalf("found %d tables, want 2 (none in the code block): %+v", len(tables), tables)
	}
	if got := len(tables[0].Rows); got != 4 {
		t.Errorf("first table: %d rows, want 4", got)
	}
	if got := tables[0].Rows[1][5]; got != `a \| b` {
		t.Errorf("escaped pipe cell = %q", got)
	}
	if tables[1].Heading != "Other" {
		t.Errorf("second table's heading = %q, want Other", tables[1].Heading)
	}
	faults := faultRows(tables)
	if len(faults) != 2 {
		t.Fatalf("fault tables: %d, want 2", len(faults))
	}
	want := "| case | transport chosen | fallback reasons seen | first message |\n|---|---|---|---|\n" +
		"| 1. direct, no proxy | websocket | — | 180 ms |\n" +
		"| 6. synthetic: upgrade answered 101, then every frame dropped | sse | ws_silent | 640 ms |\n" +
		"| 7. synthetic: upgrade never answered | sse | ws_hung | 650 ms |\n"
	if got := faults[0].markdown(); got != want {
		t.Errorf("quoted table:\n%s\nwant:\n%s", got, want)
	}
	// A table without the quoted columns is quoted whole.
	if got := faults[1].markdown(); got != "| a | b |\n|---|---|\n| hang | 1 |\n" {
		t.Errorf("second quoted table:\n%s", got)
	}
}

func TestBrowserFigures(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fallback-matrix.md")
	if got := browserFigures(path); !strings.Contains(got, "does not exist") {
		t.Errorf("absent matrix: %q", got)
	}
	if err := os.WriteFile(path, []byte("# Fallback matrix\n\nno tables yet\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := browserFigures(path); !strings.Contains(got, "no table row") {
		t.Errorf("matrix without rows: %q", got)
	}
	if err := os.WriteFile(path, []byte(matrixDoc), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := browserFigures(path); !strings.Contains(got, "| 7. synthetic: upgrade never answered | sse | ws_hung | 650 ms |") {
		t.Errorf("matrix quote lacks the hang row:\n%s", got)
	}
}

func TestParseFanout(t *testing.T) {
	i, ts, ok := parseFanout([]byte(`{"i":7,"ts":1700000000123456789}`))
	if !ok || i != 7 || ts != 1700000000123456789 {
		t.Errorf("parseFanout = %d, %d, %v", i, ts, ok)
	}
	for _, bad := range []string{``, `{"i":7}`, `{"i":x,"ts":1}`, `{"i":1,"ts":2`, `hello`} {
		if _, _, ok := parseFanout([]byte(bad)); ok {
			t.Errorf("parseFanout(%q) accepted", bad)
		}
	}
}

func TestSessionsFor(t *testing.T) {
	for _, tc := range []struct {
		kind   string
		target int
		soft   uint64
		want   int
	}{
		{cometKind("websocket"), 10_000, 20_000, 10_000},
		{kindSSEFallback, 10_000, 20_000, 5000},
		{kindSSEFallback, 10_000, 1 << 20, 10_000},
		{kindSSEFallback, 10_000, 8000, 3872},
		{cometKind("sse"), 10_000, 20_000, 10_000},
		{kindRawSSE, 10_000, 20_000, 10_000},
	} {
		if got := sessionsFor(tc.kind, tc.target, tc.soft); got != tc.want {
			t.Errorf("sessionsFor(%s, %d, %d) = %d, want %d", tc.kind, tc.target, tc.soft, got, tc.want)
		}
	}
}

func TestSourceAddr(t *testing.T) {
	for i, want := range map[int]string{0: "127.0.0.2", 252: "127.0.0.254", 253: "127.0.1.1", 506: "127.0.1.254", 507: "127.0.2.1"} {
		if got := sourceAddr(i); !got.Equal(net.ParseIP(want)) {
			t.Errorf("sourceAddr(%d) = %v, want %s", i, got, want)
		}
	}
}
