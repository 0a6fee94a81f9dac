// Package testutil holds the helpers that the tests of several packages
// share: a logger that routes a server's logs to the test, and bounded
// channel waits. It is imported by tests only.
package testutil

import (
	"bytes"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Wait bounds every step a test waits for: long enough never to fire on a
// loaded machine, short enough that a hang fails the test, not the run.
const Wait = 10 * time.Second

// Logger returns a logger writing to t until the test's cleanups have run.
// Records that arrive later, from timers or goroutines finishing after the
// test, are dropped: t.Log would panic on them.
func Logger(t testing.TB) *slog.Logger {
	w := &logWriter{t: t}
	t.Cleanup(w.stop) // registered first, so it runs last
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type logWriter struct {
	mu      sync.Mutex
	t       testing.TB
	stopped bool
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Logf("server: %s", bytes.TrimRight(p, "\n"))
	}
	return len(p), nil
}

func (w *logWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}

// Receive returns the next value from ch, failing the test if none comes
// within Wait.
func Receive[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(Wait)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("no %s within %v", what, Wait)
		panic("unreachable")
	}
}

// Offer sends v on ch if it has room, and drops it otherwise: for hooks
// that must never block the code under test.
func Offer[T any](ch chan T, v T) {
	select {
	case ch <- v:
	default:
	}
}

// Stacks returns the stacks of every goroutine of the process, one
// record per goroutine, records separated by an empty line.
func Stacks() string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}

// StacksMention reports whether the stack of one goroutine of the
// process mentions every one of funcs: a test waits with it until a
// goroutine is parked where it means to observe it.
func StacksMention(funcs ...string) bool {
	for rec := range strings.SplitSeq(Stacks(), "\n\n") {
		all := true
		for _, f := range funcs {
			all = all && strings.Contains(rec, f)
		}
		if all {
			return true
		}
	}
	return false
}
