package websocket_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// cometFuncs are the goroutines of the library an idle session may keep,
// by a function on their stacks: the application's Serve, parked in
// Recv, which waits on the connection's socket itself.
var cometFuncs = []string{
	"comet/session.(*Handler).runApplication",
}

// libraryPackages are the packages an idle session's goroutines may run
// in; test functions (websocket_test) are not among them.
var libraryPackages = []string{"comet/session.", "comet/websocket.", "comet/transport.", "comet/internal/"}

// libraryGoroutines counts the goroutines whose stacks pass through the
// library: by each function of cometFuncs, and "other" for any other
// library function (a writer, a request's goroutine still in ServeAttach).
func libraryGoroutines() map[string]int {
	counts := map[string]int{}
	for rec := range strings.SplitSeq(testutil.Stacks(), "\n\n") {
		library := false
		for _, p := range libraryPackages {
			library = library || strings.Contains(rec, p)
		}
		if !library || strings.Contains(rec, "testing.(*") {
			continue // not the library's, or the tests' own (TestMain, a paused test)
		}
		kind := "other"

		for _, f := range cometFuncs {
			if strings.Contains(rec, f) {
				kind = f
				break
			}
		}
		counts[kind]++
	}
	return counts
}

// TestIdleGoroutines pins what an idle WebSocket session costs in
// goroutines: its application's, waiting in Recv, which reads the
// connection itself, and no more. The request's goroutine returns once
// the connection is hijacked, the writer exists only while there is
// something to write, the heartbeat is a timer, and no goroutine is
// parked in a read. Sessions that have just echoed a message settle back
// to it.
func TestIdleGoroutines(t *testing.T) {
	const sessions = 8
	s := start(t, &session.Options{Serve: echo})
	peers := make([]*peer, sessions)
	for i := range peers {
		n := s.negotiate(t)
		peers[i], _ = s.mustDial(t, deliver(n, n.Tickets[0], 1))
	}
	want := fmt.Sprint(map[string]int{cometFuncs[0]: sessions})
	settled := func(what string) {
		t.Helper()
		// A writer goes, and a request's goroutine returns, just after
		// the write the client has read: wait for them, within a bound.
		deadline := time.Now().Add(testutil.Wait)
		for {
			got := fmt.Sprint(libraryGoroutines())
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: library goroutines %s, want %s", what, got, want)
			}
			runtime.Gosched()
		}
	}
	settled("idle after the open frames")
	for _, p := range peers {
		p.send(transport.Frame{Type: transport.TypeText, Seq: 1, Payload: []byte("ping")})
		if f := p.nextOf(transport.TypeText); string(f.Payload) != "ping" {
			t.Fatalf("echo %q, want ping", f.Payload)
		}
	}
	settled("idle after an echo each")
}
