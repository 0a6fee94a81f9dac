package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestJudgeSoak(t *testing.T) {
	mib := float64(1 << 20)
	sample := func(at time.Duration, heap, rss, g, files float64) soakSample {
		return soakSample{At: at, Heap: heap * mib, RSS: rss * mib, Goroutines: g, Files: files}
	}
	samples := []soakSample{
		sample(0, 50, 60, 1000, 500), // before the reference: ignored
		sample(30*time.Second, 100, 200, 3000, 1012),
		sample(time.Minute, 100, 200, 3000, 1012), // the reference
		sample(90*time.Second, 300, 900, 9000, 9000),
		sample(2*time.Minute, 104, 219, 3160, 1012),
	}
	checks := judgeSoak(samples, time.Minute)
	if len(checks) != len(soakQuantities) {
		t.Fatalf("%d checks, want %d", len(checks), len(soakQuantities))
	}
	want := map[string]struct {
		change float64
		ok     bool
	}{
		"heap + stacks": {0.04, true},  // within 5%
		"RSS":           {0.095, true}, // within 10%
		"goroutines":    {0.0533, false},
		"open files":    {0, true},
	}
	for _, c := range checks {
		w := want[c.q.name]
		if c.ref.At != time.Minute || c.last.At != 2*time.Minute {
			t.Errorf("%s: compared the samples at %v and %v, want 1m0s and 2m0s", c.q.name, c.ref.At, c.last.At)
		}
		if math.Abs(c.change-w.change) > 1e-3 || c.ok != w.ok {
			t.Errorf("%s: change %.4f ok %v, want %.4f %v", c.q.name, c.change, c.ok, w.change, w.ok)
		}
	}
	// A drop counts as much as a growth.
	down := judgeSoak([]soakSample{sample(time.Minute, 100, 100, 100, 100), sample(2*time.Minute, 90, 100, 100, 100)}, time.Minute)
	if down[0].ok {
		t.Errorf("a 10%% drop in heap passed: %+v", down[0])
	}
	// No sample after the reference, or none at all: no verdict.
	if got := judgeSoak(samples[:3], time.Minute); got != nil {
		t.Errorf("reference as the last sample: %d checks, want none", len(got))
	}
	if got := judgeSoak(samples, 5*time.Minute); got != nil {
		t.Errorf("no reference sample: %d checks, want none", len(got))
	}
}

func TestSpliceBlock(t *testing.T) {
	begin, end := blockMarkers("soak")
	block := begin + "## 9. Soak\n\nnew\n\n" + end
	old := begin + "## 9. Soak\n\nold\n\n" + end
	head := "# Benchmarks\n\n## 8. Push storm\n\ntable\n\n"
	for _, tc := range []struct{ name, doc, want string }{
		{"replaced", head + old, head + block},
		{"replaced in the middle", head + old + "## 10. Later\n", head + block + "## 10. Later\n"},
		{"appended", head, head + block},
		{"appended after a blank line", strings.TrimSuffix(head, "\n"), head + block},
		{"new document", "", block},
		{"marker not at a line's start", head + "x" + old, head + "x" + old + block},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := spliceBlock(tc.doc, "soak", block); got != tc.want {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
	if got := keptBlock(head+begin+"unterminated", "soak"); got != "" {
		t.Errorf("keptBlock of an unterminated block = %q", got)
	}
}

// TestWriteDoc checks that a soak run rewrites only its section of the
// report, and that a run without the soak keeps the section there.
func TestWriteDoc(t *testing.T) {
	doc := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	read := func() string {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	full := func(soakText string) *runner {
		r := &runner{rep: report{Started: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)}}
		r.rep.Sections = append(r.rep.Sections, &section{N: 1, Title: "WebSocket echo", About: "echo"})
		if soakText != "" {
			r.rep.Sections = append(r.rep.Sections, &section{N: 9, Title: "Soak", About: soakText, Marker: "soak"})
		}
		return r
	}
	soakOnly := func(text string) *runner {
		return &runner{rep: report{Sections: []*section{{N: 9, Title: "Soak", About: text, Marker: "soak"}}}}
	}

	// A soak into a document without one appends its section.
	if err := full("").writeDoc(doc, false); err != nil {
		t.Fatal(err)
	}
	before := read()
	if err := soakOnly("first soak").writeDoc(doc, true); err != nil {
		t.Fatal(err)
	}
	after := read()
	if !strings.HasPrefix(after, before) || !strings.Contains(after, "first soak") {
		t.Fatalf("the soak's section was not appended to the document:\n%s", after)
	}
	// A second soak replaces it, and nothing else.
	if err := soakOnly("second soak").writeDoc(doc, true); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != strings.Replace(after, "first soak", "second soak", 1) {
		t.Errorf("the second soak changed more than its section:\n%s", got)
	}
	// A run without the soak keeps the section.
	if err := full("").writeDoc(doc, false); err != nil {
		t.Fatal(err)
	}
	if got := read(); !strings.Contains(got, "second soak") || strings.Count(got, "## 9. Soak") != 1 {
		t.Errorf("a run without the soak lost or doubled its section:\n%s", got)
	}
	// A run with the soak writes its own.
	if err := full("quick soak").writeDoc(doc, false); err != nil {
		t.Fatal(err)
	}
	if got := read(); !strings.Contains(got, "quick soak") || strings.Contains(got, "second soak") {
		t.Errorf("a run with the soak kept the old section:\n%s", got)
	}
}
