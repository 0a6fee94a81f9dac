package leakcheck

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// maxWait bounds the time a check waits for goroutines to exit. Stopping
// goroutines takes microseconds to milliseconds; seconds means they are not
// stopping.
const maxWait = 5 * time.Second

// idleClosers holds the transports registered with CloseIdle.
var idleClosers struct {
	sync.Mutex
	list []interface{ CloseIdleConnections() }
}

// Main runs the tests of m and then, if they passed, checks that they left
// no goroutines running. It does not return: it exits with the status of
// m.Run, or with 1 after printing the stacks of leaked goroutines to
// standard error.
func Main(m *testing.M) {
	os.Exit(run(m, os.Stderr, maxWait))
}

// Check checks, when t ends, that t left no goroutines running, and marks
// t failed if it did. Call it first in the test, so that its cleanup runs
// after the others (t.Cleanup runs them last in, first out).
func Check(t testing.TB) {
	check(t, maxWait)
}

// CloseIdle has the idle connections of t closed before every check, as
// those of http.DefaultTransport are. t is typically an *http.Transport or
// an *http.Client that outlives the tests, such as a package's default;
// one that a single test creates is better closed by that test's cleanup.
func CloseIdle(t interface{ CloseIdleConnections() }) {
	idleClosers.Lock()
	defer idleClosers.Unlock()
	idleClosers.list = append(idleClosers.list, t)
}

// closeIdle closes the idle connections of http.DefaultTransport and of the
// transports registered with CloseIdle. Their goroutines exit soon after,
// not at once; find waits for them.
func closeIdle() {
	if t, ok := http.DefaultTransport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
	idleClosers.Lock()
	list := slices.Clone(idleClosers.list)
	idleClosers.Unlock()
	for _, t := range list {
		t.CloseIdleConnections()
	}
}

// run is Main without the exit, so that it can be tested.
func run(m interface{ Run() int }, stderr io.Writer, limit time.Duration) int {
	base := ids(snapshot())
	if code := m.Run(); code != 0 {
		return code
	}
	closeIdle()
	if leaks := find(base, limit, time.Sleep); len(leaks) > 0 {
		fmt.Fprint(stderr, describe(leaks, limit))
		return 1
	}
	return 0
}

// check is Check with the wait bounded by limit.
func check(t testing.TB, limit time.Duration) {
	base := ids(snapshot())
	t.Cleanup(func() {
		if t.Failed() {
			return
		}
		closeIdle()
		if leaks := find(base, limit, time.Sleep); len(leaks) > 0 {
			t.Error(describe(leaks, limit))
		}
	})
}

// find returns the goroutines that are neither in base, nor the caller,
// nor ignored. As long as there are some, it retries after waiting 1 ms,
// 2 ms, 4 ms… for at most limit in all, and then returns those left.
func find(base map[uint64]bool, limit time.Duration, wait func(time.Duration)) []goroutine {
	self := currentID()
	delay, waited := time.Millisecond, time.Duration(0)
	for {
		var leaks []goroutine
		for _, g := range snapshot() {
			if !base[g.id] && g.id != self && !g.ignored() {
				leaks = append(leaks, g)
			}
		}
		if len(leaks) == 0 || waited >= limit {
			return leaks
		}
		d := min(delay, limit-waited)
		wait(d)
		waited += d
		delay *= 2
	}
}

// ids returns the set of the IDs of gs. The runtime never reuses an ID, so
// a goroutine in the set is one that existed when gs was taken.
func ids(gs []goroutine) map[uint64]bool {
	set := make(map[uint64]bool, len(gs))
	for _, g := range gs {
		set[g.id] = true
	}
	return set
}

// describe reports leaks with their full stacks.
func describe(leaks []goroutine, waited time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "leakcheck: %d goroutine(s) still running %v after the tests passed:\n", len(leaks), waited)
	for _, g := range leaks {
		b.WriteString("\n")
		b.WriteString(g.stack)
		b.WriteString("\n")
	}
	return b.String()
}
