package leakcheck

import (
	"runtime"
	"strconv"
	"strings"
)

// goroutine is one record of a runtime.Stack dump.
type goroutine struct {
	id uint64
	// start is the function the goroutine was started with, such as
	// "net/http.(*persistConn).readLoop".
	start string
	// stack is the record as the runtime printed it, for the report.
	stack string
}

// ignored reports whether g is one of the goroutines that live as long as
// the process by design, and so are never a test's leak.
func (g goroutine) ignored() bool {
	for _, prefix := range []string{
		// System goroutines, which runtime.Stack lists only under
		// GOTRACEBACK=system or higher. The runtime itself draws the line
		// this way (isSystemGoroutine).
		"runtime.",
		// Tests still running, such as parallel peers of a test that
		// uses Check, and the machinery of benchmarks and fuzzing.
		"testing.",
		// signal.Notify's loop: started once, then parked in signal_recv
		// for the life of the process.
		"os/signal.",
	} {
		if strings.HasPrefix(g.start, prefix) {
			return true
		}
	}
	return false
}

// snapshot returns the goroutines that runtime.Stack lists.
func snapshot() []goroutine {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return parseStacks(string(buf[:n]))
		}
		buf = make([]byte, 2*len(buf))
	}
}

// currentID returns the ID of the calling goroutine.
func currentID() uint64 {
	// The header, "goroutine N [running]:", comes first; the ID fits even
	// when GOTRACEBACK=system adds " gp=… m=…" after it.
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	g, _ := parseGoroutine(string(buf[:n]))
	return g.id
}

// parseStacks splits a runtime.Stack dump into its goroutines. Records are
// separated by a blank line.
func parseStacks(dump string) []goroutine {
	var gs []goroutine
	for rec := range strings.SplitSeq(strings.TrimSpace(dump), "\n\n") {
		if g, ok := parseGoroutine(rec); ok {
			gs = append(gs, g)
		}
	}
	return gs
}

// parseGoroutine parses one record:
//
//	goroutine 7 [chan receive]:
//	example.com/pkg.worker(0xc000010000)
//		/src/pkg/worker.go:12 +0x2c
//	created by example.com/pkg.Start in goroutine 6
//		/src/pkg/worker.go:9 +0x5a
//
// A function line is followed by a tab-indented file line; the last
// function before "created by" is the one the goroutine started with.
func parseGoroutine(rec string) (goroutine, bool) {
	header, body, _ := strings.Cut(rec, "\n")
	rest, ok := strings.CutPrefix(header, "goroutine ")
	if !ok {
		return goroutine{}, false
	}
	idText, _, _ := strings.Cut(rest, " ")
	id, err := strconv.ParseUint(idText, 10, 64)
	if err != nil {
		return goroutine{}, false
	}
	g := goroutine{id: id, stack: rec}
	for line := range strings.SplitSeq(body, "\n") {
		if strings.HasPrefix(line, "created by ") {
			break
		}
		// Skip file lines and "...N frames elided...". Under
		// GOTRACEBACK=system the stack ends in runtime.goexit, which
		// every goroutine returns to and none starts with.
		if line == "" || line[0] == '\t' || strings.HasPrefix(line, "...") {
			continue
		}
		if fn := funcName(line); fn != "runtime.goexit" {
			g.start = fn
		}
	}
	return g, true
}

// funcName strips the argument list from a function line:
// "net/http.(*persistConn).readLoop(0xc0001b2000)" becomes
// "net/http.(*persistConn).readLoop". Arguments are printed as hex words,
// "{…}", "?" and "...", never with parentheses, so the last "(" opens them.
func funcName(line string) string {
	if i := strings.LastIndexByte(line, '('); i > 0 {
		return line[:i]
	}
	return line
}
