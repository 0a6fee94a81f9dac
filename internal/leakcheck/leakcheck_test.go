package leakcheck

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

// The tests below compare against every goroutine in the process, so none
// of them is parallel.

// shortWait bounds the checks that are meant to find a leak, so that
// finding one does not take the full maxWait.
const shortWait = 20 * time.Millisecond

// blockUntil starts a goroutine that runs until stop is closed, and makes
// sure the test closes it.
func blockUntil(t *testing.T, stop chan struct{}) {
	t.Cleanup(func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
	})
	go parkedWorker(stop)
}

// parkedWorker is the leak the tests look for, by name, in reported stacks.
func parkedWorker(stop <-chan struct{}) { <-stop }

func mentions(leaks []goroutine, fn string) bool {
	for _, g := range leaks {
		if strings.Contains(g.stack, fn) {
			return true
		}
	}
	return false
}

func TestFindReportsLeak(t *testing.T) {
	base := ids(snapshot())
	blockUntil(t, make(chan struct{}))

	leaks := find(base, shortWait, time.Sleep)
	if len(leaks) != 1 || !mentions(leaks, "leakcheck.parkedWorker") {
		t.Fatalf("find = %d goroutines, want the one in parkedWorker:\n%s", len(leaks), describe(leaks, shortWait))
	}
	if leaks[0].start != "github.com/seed-544bbf9f/comet/internal/leakcheck.parkedWorker" {
		t.Errorf("start = %q, want the full name of parkedWorker", leaks[0].start)
	}
}

func TestFindWaitsForExit(t *testing.T) {
	base := ids(snapshot())
	stop := make(chan struct{})
	blockUntil(t, stop)

	// The first comparison sees the goroutine parked; only then is it let
	// go, so that it exits while find is waiting.
	waits := 0
	wait := func(d time.Duration) {
		if waits == 0 {
			close(stop)
		}
		waits++
		time.Sleep(d)
	}
	if leaks := find(base, maxWait, wait); len(leaks) != 0 {
		t.Fatalf("reported a goroutine that exited:\n%s", describe(leaks, maxWait))
	}
	if waits == 0 {
		t.Fatal("find did not wait: the goroutine was gone before the first comparison")
	}
}

func TestFindBackoff(t *testing.T) {
	base := ids(snapshot())
	blockUntil(t, make(chan struct{}))

	var waits []time.Duration
	find(base, 50*time.Millisecond, func(d time.Duration) { waits = append(waits, d) })

	ms := time.Millisecond
	want := []time.Duration{1 * ms, 2 * ms, 4 * ms, 8 * ms, 16 * ms, 19 * ms}
	if !slices.Equal(waits, want) {
		t.Errorf("waits = %v, want %v: doubling from 1ms, %v in all", waits, want, 50*ms)
	}
}

// runFunc runs fake tests in place of a *testing.M.
type runFunc func() int

func (f runFunc) Run() int { return f() }

func TestRun(t *testing.T) {
	tests := []struct {
		name      string
		code      int  // what the fake tests return
		leak      bool // whether they leave a goroutine behind
		wantCode  int
		wantStack bool
	}{
		{name: "clean", code: 0, wantCode: 0},
		{name: "leak", code: 0, leak: true, wantCode: 1, wantStack: true},
		{name: "failed tests are not checked", code: 2, leak: true, wantCode: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tests := runFunc(func() int {
				if tc.leak {
					blockUntil(t, make(chan struct{}))
				}
				return tc.code
			})
			var stderr strings.Builder
			if code := run(tests, &stderr, shortWait); code != tc.wantCode {
				t.Errorf("run = %d, want %d", code, tc.wantCode)
			}
			if got := strings.Contains(stderr.String(), "leakcheck.parkedWorker"); got != tc.wantStack {
				t.Errorf("stack of the leak printed: %v, want %v; stderr:\n%s", got, tc.wantStack, stderr.String())
			}
		})
	}
}

// recorder stands in for a test under Check: it keeps the cleanups and
// errors for the test to look at. The embedded TB supplies the rest.
type recorder struct {
	testing.TB
	cleanups []func()
	errors   []string
}

func (r *recorder) Cleanup(f func())  { r.cleanups = append(r.cleanups, f) }
func (r *recorder) Error(args ...any) { r.errors = append(r.errors, fmt.Sprint(args...)) }
func (r *recorder) Failed() bool      { return len(r.errors) > 0 }

// end runs the cleanups as the testing package would: last in, first out.
func (r *recorder) end() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

func TestCheck(t *testing.T) {
	t.Run("leak", func(t *testing.T) {
		r := &recorder{TB: t}
		check(r, shortWait)
		blockUntil(t, make(chan struct{}))
		r.end()
		if len(r.errors) != 1 || !strings.Contains(r.errors[0], "leakcheck.parkedWorker") {
			t.Errorf("errors = %q, want one with the stack of parkedWorker", r.errors)
		}
	})
	t.Run("clean", func(t *testing.T) {
		r := &recorder{TB: t}
		check(r, maxWait)
		stop := make(chan struct{})
		blockUntil(t, stop)
		close(stop)
		r.end()
		if len(r.errors) != 0 {
			t.Errorf("errors = %q, want none", r.errors)
		}
	})
	t.Run("real test", func(t *testing.T) {
		Check(t)
		done := make(chan struct{})
		go func() { close(done) }()
		<-done
	})
}

// TestHTTPConnections shows that the goroutines of an idle keep-alive
// connection count as leaks until CloseIdle's transports are closed.
func TestHTTPConnections(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	idleClosers.Lock()
	saved := idleClosers.list
	idleClosers.Unlock()
	defer func() {
		idleClosers.Lock()
		idleClosers.list = saved
		idleClosers.Unlock()
	}()

	base := ids(snapshot())
	resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	if leaks := find(base, shortWait, time.Sleep); !mentions(leaks, "net/http.(*persistConn).readLoop") {
		t.Fatalf("idle connection not reported; leaks:\n%s", describe(leaks, shortWait))
	}
	CloseIdle(tr)
	closeIdle()
	if leaks := find(base, maxWait, time.Sleep); len(leaks) != 0 {
		t.Fatalf("goroutines left after closing idle connections:\n%s", describe(leaks, maxWait))
	}
}
