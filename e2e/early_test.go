package e2e

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/internal/faultproxy"
	"github.com/seed-544bbf9f/comet/transport"
)

// TestEarlyUpgradeUnderTraffic: behind a proxy that black-holes WebSocket,
// the session opens on the shim's early chain of polls (PROTOCOL.md
// section 8) and moves to SSE once SSE wins the race, while messages flow
// both ways: the exchange is paced over 3 s, which outlasts the
// head start and SSE's proof, so the upgrade happens in its midst. Nothing
// is lost, duplicated or reordered either way (exchange checks), the
// session opened before the race was decided, and no reconnecting event
// fires: an upgrade is no drop.
func TestEarlyUpgradeUnderTraffic(t *testing.T) {
	browser := needBrowser(t)
	srv := newServer(t, config{})
	fp := startFault(t, srv, &faultproxy.Options{Upgrade: faultproxy.UpgradeBlackHole})
	var rw row
	r := exchange(t, srv, openPage(t, browser, srv, fp.URL()), fp.URL(), paced(3*time.Second), &rw)
	t.Logf("transport events %+v; open at %.0f ms, first message at %.0f ms", r.Transports, rw.Opened, rw.First)
	// SSE starts after WebSocket's head start (250 ms) and the chain after
	// three probe round trips: only a machine slowed down a great deal
	// would see SSE proven first, and then there is no upgrade to see.
	want := []transportEvent{{transport.LongPoll, "", ""}, {transport.SSE, transport.LongPoll, "ws_silent"}}
	switch {
	case len(r.Transports) == 1 && r.Transports[0] == (transportEvent{transport.SSE, "", "ws_silent"}):
		t.Logf("SSE won the race before the chain opened: no upgrade under traffic this time")
	case len(r.Transports) != len(want) || r.Transports[0] != want[0] || r.Transports[1] != want[1]:
		t.Errorf("page: transport events %+v, want %+v", r.Transports, want)
	}
	if r.Transport != transport.SSE {
		t.Errorf("page: on %q at the end, want sse", r.Transport)
	}
	if rw.Reconnects != 0 {
		t.Errorf("page: %d reconnecting events, want none", rw.Reconnects)
	}
	// The chain's polls, if any, were numbered below the SSE candidate
	// that took over (the server's view).
	lastPoll, sseAttempt := chainAndCandidate(t, srv, func(a request) bool {
		return a.name == transport.SSE && a.why == "ws_silent"
	})
	if sseAttempt == 0 || lastPoll >= sseAttempt {
		t.Errorf("server: chain polls up to attempt %d, SSE candidate %d; want polls numbered below it: %v", lastPoll, sseAttempt, srv.attaches())
	}
}

// TestEarlyUpgradeToWebSocket: a WebSocket that proves itself only after
// the early chain of polls has opened the session (the server holds its
// upgrade until then) takes the session over by commit, in the midst of
// paced traffic both ways: the chain's polls are numbered below it, so
// none still on its way takes delivery back (PROTOCOL.md sections 5 and
// 8). Nothing is lost, duplicated or reordered (exchange checks), and no
// reconnecting event fires.
func TestEarlyUpgradeToWebSocket(t *testing.T) {
	browser := needBrowser(t)
	gate := make(chan struct{})
	var once sync.Once
	srv := newServer(t, config{wsGate: gate, onChange: func(c change) {
		if c.to == transport.LongPoll {
			once.Do(func() { close(gate) })
		}
	}})
	// The gate opens with the session, on the chain; a test that fails
	// before must not leave the WebSocket attach waiting.
	t.Cleanup(func() { once.Do(func() { close(gate) }) })
	var rw row
	r := exchange(t, srv, openPage(t, browser, srv, srv.URL()), srv.URL(), paced(2*time.Second), &rw)
	t.Logf("transport events %+v; open at %.0f ms, first message at %.0f ms", r.Transports, rw.Opened, rw.First)
	want := []transportEvent{{transport.LongPoll, "", ""}, {transport.WebSocket, transport.LongPoll, ""}}
	if len(r.Transports) != len(want) || r.Transports[0] != want[0] || r.Transports[1] != want[1] {
		t.Errorf("page: transport events %+v, want %+v", r.Transports, want)
	}
	if r.Transport != transport.WebSocket || rw.Reconnects != 0 {
		t.Errorf("page: on %q after %d reconnecting events; want websocket after none", r.Transport, rw.Reconnects)
	}
	lastPoll, wsAttempt := chainAndCandidate(t, srv, func(a request) bool { return a.name == transport.WebSocket })
	if lastPoll == 0 || wsAttempt <= lastPoll {
		t.Errorf("server: chain polls up to attempt %d, WebSocket %d; want polls, numbered below it: %v", lastPoll, wsAttempt, srv.attaches())
	}
	if got := srv.transportChanges(); len(got) != 2 || got[1] != (change{transport.LongPoll, transport.WebSocket, ""}) {
		t.Errorf("server: transport changes %+v, want longpoll then websocket", got)
	}
}

// paced returns the exchange parameters that spread matrixMessages over
// about d, in a batch every 10 ms: traffic both ways throughout the race.
func paced(d time.Duration) params {
	every := 10 * time.Millisecond
	return params{Every: int(every.Milliseconds()), Batch: matrixMessages * int(every) / int(d)}
}

// chainAndCandidate returns, from the attaches srv saw, the highest
// attempt of the early chain's polls (numbered below 1,000,000,000,
// PROTOCOL.md section 8; 0 if none) and the attempt of the last attach
// that isCandidate picks (0 if none).
func chainAndCandidate(t *testing.T, srv *server, isCandidate func(request) bool) (lastPoll, candidate int) {
	t.Helper()
	for _, a := range srv.attaches() {
		n, err := strconv.Atoi(a.attempt)
		switch {
		case err != nil:
			t.Errorf("server: attach %v without an attempt", a)
		case isCandidate(a):
			candidate = n
		case a.name == transport.LongPoll && n < 1_000_000_000:
			lastPoll = max(lastPoll, n)
		}
	}
	return lastPoll, candidate
}
