package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// transports are the shim's transports, each forced in turn by
// runTransports.
var transports = []string{transport.WebSocket, transport.SSE, transport.Streaming, transport.LongPoll}

// runTransports runs test once per transport, forced (the shim's
// transports option with one entry never falls back).
func runTransports(t *testing.T, test func(t *testing.T, name string)) {
	for _, name := range transports {
		t.Run(name, func(t *testing.T) { test(t, name) })
	}
}

// params are a scenario's parameters (page.js).
type params struct {
	URL     string         `json:"url"`
	Options map[string]any `json:"options,omitempty"`
	N       int            `json:"n,omitempty"`
	Code    int            `json:"code,omitempty"`
	Reason  string         `json:"reason,omitempty"`
	Quiet   int            `json:"quiet,omitempty"`
	Idle    int            `json:"idle,omitempty"` // exchange: ms without a message, halfway
	// Settle: exchange, halfway, and echo, before its messages: wait until
	// the first race is decided, at most this many ms (page.js's settle).
	Settle int  `json:"settle,omitempty"`
	Every  int  `json:"every,omitempty"` // exchange: ms between batches
	Batch  int  `json:"batch,omitempty"` // exchange: messages per batch
	Brief  bool `json:"brief,omitempty"` // no frames in the console
}

func forced(url, name string) params {
	return params{URL: url, Options: map[string]any{"transports": []string{name}}}
}

// closeEvent is a close or error event as page.js reports it.
type closeEvent struct {
	Code       int    `json:"code"`
	Reason     string `json:"reason"`
	WasClean   bool   `json:"wasClean"`
	Status     int    `json:"status"`
	ReadyState int    `json:"readyState"`
}

type transportEvent struct {
	Transport, From, Reason string
}

// wantSettled checks that a scenario run with Settle saw its first race
// decided, rather than wait out the cap.
func wantSettled(t *testing.T, r result) {
	t.Helper()
	if r.Settled != "race" {
		t.Errorf("page: settled %q, want the first race decided within %v (transport events %+v)", r.Settled, raceSettle, r.Transports)
	}
}

// afterEarly returns a session's transport events as if it had opened on
// the transport that won its first race: without the early long-poll
// chain's, which opens the session when no candidate has proven itself
// within the shim's early wait (PROTOCOL.md section 8), and ends when one
// has. On a busy machine a healthy WebSocket can miss that wait; what the
// session ends on, and why, is the same either way.
func afterEarly(evs []transportEvent) []transportEvent {
	if len(evs) < 2 || evs[0] != (transportEvent{transport.LongPoll, "", ""}) {
		return evs
	}
	rest := slices.Clone(evs[1:])
	rest[0].From = ""
	return rest
}

// result is what a scenario resolves with; each fills the fields it uses.
type result struct {
	Transport    string           `json:"transport"`
	Transports   []transportEvent `json:"transports"`
	Reconnecting int              `json:"reconnecting"`
	Errors       []closeEvent     `json:"errors"`
	Close        closeEvent       `json:"close"`
	Opened       bool             `json:"opened"`
	ReadyState   int              `json:"readyState"`

	Sent, Got []string // echo, exchange

	First    float64  `json:"first"`    // exchange: ms from the navigation's start to the first message
	OpenedAt float64  `json:"openedAt"` // exchange: ms from the navigation's start to the open event
	Settled  string   `json:"settled"`  // exchange and echo with Settle: "race" once it was decided, "cap" if not in time
	Drops    []string `json:"drops"`    // the reasons of the reconnecting events

	// Outages are the spans without a live transport (page.js's track),
	// and ClosingAt when the page called close(), both in ms from the
	// navigation's start.
	Outages   []outage `json:"outages"`
	ClosingAt float64  `json:"closingAt"`

	Count    int    `json:"count"` // many
	FirstBad int    `json:"firstBad"`
	Sample   string `json:"sample"`

	Rounds []struct { // binary
		BinaryType string `json:"binaryType"`
		Messages   []struct{ Kind, Hex, Text string }
	} `json:"rounds"`
}

// start serves a page (removing the given globals) and opens it in a fresh
// browser context. These cases run on a working network, so unless cfg
// says otherwise the least attach timeout the server gives clients is 2 s,
// not 300 ms: on a machine loaded with other tests, a stream's open frame
// has taken longer than 300 ms to arrive, and a page forced onto that
// transport, with nothing to fall back to, gave up. The fallback matrix
// keeps the default, since timing a broken proxy is its point.
func start(t *testing.T, cfg config, remove ...string) (*server, *tab) {
	t.Helper()
	if cfg.opts.MinClientTimeout == 0 {
		cfg.opts.MinClientTimeout = 2 * time.Second
	}
	browser := needBrowser(t)
	srv := newServer(t, cfg)
	tb := newTab(t, browser)
	tb.open(srv.pageURL(srv.URL(), srv.URL(), remove...))
	return srv, tb
}

// checkOn checks that the session ran on name alone, from the page's view
// and the server's; on WebSocket chosen from the default order, the early
// long-poll probe, and the chain of polls that may come of it, are allowed
// too.
func checkOn(t *testing.T, srv *server, r result, name string) {
	t.Helper()
	if r.Transport != name {
		t.Errorf("page: transport %q, want %q", r.Transport, name)
	}
	if evs := afterEarly(r.Transports); len(evs) != 1 || evs[0].Transport != name || evs[0].From != "" {
		t.Errorf("page: transport events %+v, want one, to %s", r.Transports, name)
	}
	// WebSocket from the default order: the early chain may have opened
	// the session first, on a busy machine.
	early := name == transport.WebSocket
	for _, a := range srv.attaches() {
		if a.name != name && !(early && a.name == transport.LongPoll && a.why == "") {
			t.Errorf("server: attach %v on a session forced to %s", a, name)
		}
	}
	for _, c := range srv.transportChanges() {
		if c.to != name && !(early && c == change{"", transport.LongPoll, ""}) {
			t.Errorf("server: transport change %+v on a session forced to %s", c, name)
		}
	}
}

// checkClosed checks a clean close with code and reason.
func checkClosed(t *testing.T, who string, got closeEvent, code int, reason string) {
	t.Helper()
	if got.Code != code || got.Reason != reason || !got.WasClean {
		t.Errorf("%s: close %+v, want code %d, reason %q, wasClean", who, got, code, reason)
	}
}

// checkEnded checks how the server's application saw the session end.
func checkEnded(t *testing.T, e ended, code transport.CloseCode, remote bool) {
	t.Helper()
	if c, r := closeCode(e.err); c != code || r != remote {
		t.Errorf("server: Recv ended with %v (code %d, remote %v), want code %d, remote %v", e.err, c, r, code, remote)
	}
}

func TestEcho(t *testing.T)          { runTransports(t, testEcho) }
func TestBinary(t *testing.T)        { runTransports(t, testBinary) }
func TestThousand(t *testing.T)      { runTransports(t, testThousand) }
func TestCutMidStream(t *testing.T)  { runTransports(t, testCut) }
func TestPageCloses(t *testing.T)    { runTransports(t, testPageCloses) }
func TestServerCloses(t *testing.T)  { runTransports(t, testServerCloses) }
func TestForeignOrigin(t *testing.T) { runTransports(t, testForeignOrigin) }

// testEcho: awkward texts (empty, astral, newlines, U+2028) come back
// exactly, and a normal close is clean on both sides.
func testEcho(t *testing.T, name string) {
	srv, tb := start(t, config{})
	var r result
	tb.run("echo", forced(srv.URL()+"/comet", name), &r)
	if !slices.Equal(r.Got, r.Sent) || len(r.Sent) == 0 {
		t.Errorf("page: echoes %q, want %q", r.Got, r.Sent)
	}
	checkOn(t, srv, r, name)
	checkClosed(t, "page", r.Close, 1000, "done")
	e := srv.sessionEnd()
	if !slices.Equal(e.got, r.Sent) {
		t.Errorf("server: received %q, want %q", e.got, r.Sent)
	}
	checkEnded(t, e, 1000, true)
}

// testBinary: every binary form send takes round-trips, read back as
// ArrayBuffer and then as Blob, with a text behind a Blob kept in order.
func testBinary(t *testing.T, name string) {
	srv, tb := start(t, config{})
	var r result
	tb.run("binary", forced(srv.URL()+"/comet", name), &r)
	checkBinaryRounds(t, r)
	checkOn(t, srv, r, name)
	checkClosed(t, "page", r.Close, 1000, "done")
	if e := srv.sessionEnd(); len(e.got) != 12 {
		t.Errorf("server: received %d messages, want 12", len(e.got))
	}
	if name != transport.WebSocket {
		return
	}
	// The shim asks for raw binary WebSocket messages and the server
	// agrees (PROTOCOL.md section 4): its 10 binary messages and their
	// echoes cross as binary WebSocket messages.
	in, out := srv.wire.Counts.BinaryIn.Load(), srv.wire.Counts.BinaryOut.Load()
	t.Logf("binary WebSocket messages: %d in, %d out", in, out)
	if in != 10 || out != 10 {
		t.Errorf("server: %d binary WebSocket messages in, %d out; want 10 each way", in, out)
	}
}

// TestBinaryBase64: a server with NoBinaryFrames does not agree, and the
// shim keeps binary messages base64 in text frames on WebSocket, as before
// raw binary WebSocket messages, all 256 byte values intact.
func TestBinaryBase64(t *testing.T) {
	srv, tb := start(t, config{opts: session.Options{NoBinaryFrames: true}})
	var r result
	tb.run("binary", forced(srv.URL()+"/comet", transport.WebSocket), &r)
	checkBinaryRounds(t, r)
	checkClosed(t, "page", r.Close, 1000, "done")
	if in, out := srv.wire.Counts.BinaryIn.Load(), srv.wire.Counts.BinaryOut.Load(); in != 0 || out != 0 {
		t.Errorf("server: %d binary WebSocket messages in, %d out; want none", in, out)
	}
	if e := srv.sessionEnd(); len(e.got) != 12 {
		t.Errorf("server: received %d messages, want 12", len(e.got))
	}
}

// checkBinaryRounds checks the echoes of the binary scenario: both rounds,
// every message exact, the text behind a Blob in its place.
func checkBinaryRounds(t *testing.T, r result) {
	t.Helper()
	var all strings.Builder
	for i := range 256 {
		fmt.Fprintf(&all, "%02x", i)
	}
	wantHex := []string{all.String(), "fafbfcfdfeff", "0102", "000102", "", ""}
	if len(r.Rounds) != 2 {
		t.Fatalf("page: %d rounds, want 2: %+v", len(r.Rounds), r.Rounds)
	}
	for _, round := range r.Rounds {
		if len(round.Messages) != len(wantHex) {
			t.Errorf("%s: %d messages, want %d", round.BinaryType, len(round.Messages), len(wantHex))
			continue
		}
		for i, m := range round.Messages {
			switch {
			case i == 4:
				if m.Kind != "string" || m.Text != "after blob" {
					t.Errorf("%s: message %d is %+v, want the text \"after blob\"", round.BinaryType, i, m)
				}
			case m.Kind != round.BinaryType || m.Hex != wantHex[i]:
				t.Errorf("%s: message %d is %s %q, want %s %q", round.BinaryType, i, m.Kind, m.Hex, round.BinaryType, wantHex[i])
			}
		}
	}
}

// sequence checks that a many scenario of n messages came through
// exactly, in order, both ways.
func sequence(t *testing.T, r result, e ended, n int) {
	t.Helper()
	if r.Count != n || r.FirstBad != -1 {
		t.Errorf("page: %d echoes, first out of place at %d: %s", r.Count, r.FirstBad, r.Sample)
	}
	if len(e.got) != n {
		t.Errorf("server: received %d messages, want %d", len(e.got), n)
	}
	for i, m := range e.got {
		if want := fmt.Sprintf("m%d", i); m != want {
			t.Errorf("server: message %d is %q, want %q", i, m, want)
			break
		}
	}
}

// testThousand: 1,000 messages each way, exact and in order.
func testThousand(t *testing.T, name string) {
	const n = 1000
	srv, tb := start(t, config{})
	p := forced(srv.URL()+"/comet", name)
	p.N = n
	var r result
	tb.run("many", p, &r)
	checkOn(t, srv, r, name)
	checkClosed(t, "page", r.Close, 1000, "done")
	sequence(t, r, srv.sessionEnd(), n)
}

// testCut: the server cuts every connection halfway through a stream of
// messages both ways; the session resumes with nothing lost or doubled.
func testCut(t *testing.T, name string) {
	const n = 400
	srv, tb := start(t, config{cutAfter: n / 2})
	p := forced(srv.URL()+"/comet", name)
	p.N = n
	var r result
	tb.run("many", p, &r)
	checkOn(t, srv, r, name)
	checkClosed(t, "page", r.Close, 1000, "done")
	sequence(t, r, srv.sessionEnd(), n)
	if got := srv.ln.cuts.Load(); got == 0 {
		t.Error("server: no connection was cut")
	}
	if got := srv.negotiates.Load(); got != 1 {
		t.Errorf("server: %d negotiates, want 1 (a cut resumes the session)", got)
	}
}

// testPageCloses: close(4001) in the page reaches the server's Recv.
func testPageCloses(t *testing.T, name string) {
	srv, tb := start(t, config{})
	p := forced(srv.URL()+"/comet", name)
	p.Code, p.Reason = 4001, "page says bye"
	var c closeEvent
	tb.run("closeByPage", p, &c)
	checkClosed(t, "page", c, 4001, "page says bye")
	checkEnded(t, srv.sessionEnd(), 4001, true)
}

// testServerCloses: Close(4002) on the server reaches the page's onclose.
func testServerCloses(t *testing.T, name string) {
	srv, tb := start(t, config{})
	var c closeEvent
	tb.run("closeByServer", forced(srv.URL()+"/comet", name), &c)
	checkClosed(t, "page", c, 4002, "server says bye")
	checkEnded(t, srv.sessionEnd(), 4002, false)
}

// testForeignOrigin: a page on http://localhost:P against a server that
// allows only http://127.0.0.1:P is refused, with 3005, whatever the
// transport, and makes no session.
func testForeignOrigin(t *testing.T, name string) {
	browser := needBrowser(t)
	srv := newServer(t, config{allowSelf: true})
	tb := newTab(t, browser)
	foreign := strings.Replace(srv.URL(), "127.0.0.1", "localhost", 1)
	tb.open(srv.pageURL(foreign, srv.URL()))
	var r result
	tb.run("refused", forced(srv.URL()+"/comet", name), &r)
	if r.Opened || r.Close.Code != 3005 {
		t.Errorf("page: opened %v, close %+v; want a refusal with 3005 (forbidden origin)", r.Opened, r.Close)
	}
	if len(r.Errors) != 1 {
		t.Errorf("page: %d error events, want 1", len(r.Errors))
	}
	if n := srv.h.Sessions(); n != 0 || len(srv.transportChanges()) != 0 {
		t.Errorf("server: %d sessions, transports %+v; want none", n, srv.transportChanges())
	}
	t.Logf("requests: %v", srv.allRequests())
}

// TestAutoPicksWebSocket: with every transport available, WebSocket wins
// the race, which the page waits for: on a busy machine the early chain
// of polls may open the session first.
func TestAutoPicksWebSocket(t *testing.T) {
	srv, tb := start(t, config{})
	var r result
	tb.run("echo", params{URL: srv.URL() + "/comet", Settle: int(raceSettle.Milliseconds())}, &r)
	wantSettled(t, r)
	checkOn(t, srv, r, transport.WebSocket)
	checkClosed(t, "page", r.Close, 1000, "done")
}

// TestPreviousShim: the first release's shim, served from testdata,
// echoes on every transport with this server, and closes cleanly.
func TestPreviousShim(t *testing.T) {
	runTransports(t, func(t *testing.T, name string) {
		browser := needBrowser(t)
		srv := newServer(t, config{opts: session.Options{MinClientTimeout: 2 * time.Second}})
		tb := newTab(t, browser)
		page := srv.URL() + "/page?shim=" + srv.URL() + "/previous/comet.min.js"
		tb.open(page)
		var r result
		tb.run("echo", forced(srv.URL()+"/comet", name), &r)
		if !slices.Equal(r.Got, r.Sent) || len(r.Sent) == 0 {
			t.Errorf("page: echoes %q, want %q", r.Got, r.Sent)
		}
		checkOn(t, srv, r, name)
		// The previous shim does not ask for the close echo (noStatus at
		// negotiate), so the server's answering close has no reason.
		checkClosed(t, "page", r.Close, 1000, "")
	})
}

// TestMinifiedShim: comet.min.js works as comet.js does.
func TestMinifiedShim(t *testing.T) {
	browser := needBrowser(t)
	srv := newServer(t, config{})
	tb := newTab(t, browser)
	tb.open(strings.Replace(srv.pageURL(srv.URL(), srv.URL()), "comet.js", "comet.min.js", 1))
	var r result
	tb.run("echo", params{URL: srv.URL() + "/comet"}, &r)
	if !slices.Equal(r.Got, r.Sent) || len(r.Sent) == 0 {
		t.Errorf("page: echoes %q, want %q", r.Got, r.Sent)
	}
	checkOn(t, srv, r, transport.WebSocket)
	checkClosed(t, "page", r.Close, 1000, "done")
}

// TestFallback: a browser without some globals (deleted before the shim
// loads), or a server that refuses WebSocket, ends on the best transport
// left, and never tries one the browser lacks.
func TestFallback(t *testing.T) {
	for _, tc := range []struct {
		name     string
		remove   []string
		refuseWS bool
		want     string
		never    []string
	}{
		{name: "no WebSocket", remove: []string{"WebSocket"}, want: transport.SSE, never: []string{transport.WebSocket}},
		{name: "no EventSource", remove: []string{"EventSource"}, refuseWS: true, want: transport.Streaming, never: []string{transport.SSE}},
		{name: "XHR only", remove: []string{"WebSocket", "EventSource", "fetch", "ReadableStream"}, want: transport.Streaming,
			never: []string{transport.WebSocket, transport.SSE}},
		{name: "WebSocket refused", refuseWS: true, want: transport.SSE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, tb := start(t, config{refuseWS: tc.refuseWS}, tc.remove...)
			var r result
			// The early chain of polls may open the session before the
			// race is decided (at once where WebSocket is refused): the
			// page waits for the race before its messages.
			p := params{URL: srv.URL() + "/comet", Settle: int(raceSettle.Milliseconds())}
			tb.run("echo", p, &r)
			wantSettled(t, r)
			if !slices.Equal(r.Got, r.Sent) {
				t.Errorf("page: echoes %q, want %q", r.Got, r.Sent)
			}
			evs := afterEarly(r.Transports)
			if r.Transport != tc.want || len(evs) == 0 || evs[0].Transport != tc.want {
				t.Errorf("page: on %q after transport events %+v, want %s", r.Transport, r.Transports, tc.want)
			}
			if tc.refuseWS && len(evs) > 0 && evs[0].Reason != "ws_refused" {
				t.Errorf("page: reason %q for leaving a refused WebSocket, want ws_refused", evs[0].Reason)
			}
			for _, a := range srv.attaches() {
				if slices.Contains(tc.never, a.name) {
					t.Errorf("server: attach %v from a browser without it", a)
				}
			}
			checkClosed(t, "page", r.Close, 1000, "done")
		})
	}
}

// TestAuthRefused: a 401 at negotiate ends the session with 3003 and the
// status, after one error event, and is never retried, even with the
// reconnect option on.
func TestAuthRefused(t *testing.T) {
	cfg := config{opts: session.Options{Authorize: func(*http.Request) (any, error) {
		return nil, &session.AuthError{Status: http.StatusUnauthorized, Message: "no token"}
	}}}
	srv, tb := start(t, cfg)
	p := params{URL: srv.URL() + "/comet", Options: map[string]any{"reconnect": true, "reconnectDelay": 10, "reconnectMaxDelay": 20}}
	// A retry loop would show within the reconnect delay; the page waits
	// 25 times that after the close. (Proving that something does not
	// happen takes a bounded wait; nothing else here does.)
	p.Quiet = 500
	var r result
	tb.run("refused", p, &r)
	if r.Opened || r.Close.Code != 3003 || r.Close.Status != http.StatusUnauthorized || r.Close.WasClean {
		t.Errorf("page: opened %v, close %+v; want code 3003, status 401, not clean", r.Opened, r.Close)
	}
	if len(r.Errors) != 1 || r.Errors[0].Code != 3003 {
		t.Errorf("page: error events %+v, want one with 3003", r.Errors)
	}
	if r.Reconnecting != 0 || r.ReadyState != 3 {
		t.Errorf("page: %d reconnecting events, readyState %d; want none, CLOSED", r.Reconnecting, r.ReadyState)
	}
	if got := srv.negotiates.Load(); got != 1 {
		t.Errorf("server: %d negotiates, want exactly 1: %v", got, srv.allRequests())
	}
	if a := srv.attaches(); len(a) != 0 {
		t.Errorf("server: attaches %v after a refused negotiate", a)
	}
}

// TestMemoryAcrossReload: a page that had to fall back to SSE remembers
// it, and after a reload (same profile) starts on SSE at once instead of
// waiting for WebSocket to fail again.
func TestMemoryAcrossReload(t *testing.T) {
	srv, tb := start(t, config{refuseWS: true})
	// The first load's race is decided behind the early chain of polls:
	// it waits for that before its messages.
	p := params{URL: srv.URL() + "/comet", Settle: int(raceSettle.Milliseconds())}
	var first result
	tb.run("echo", p, &first)
	wantSettled(t, first)
	if evs := afterEarly(first.Transports); first.Transport != transport.SSE || len(evs) == 0 || evs[0].Reason != "ws_refused" {
		t.Fatalf("first load: on %q after %+v, want sse after ws_refused", first.Transport, first.Transports)
	}
	var memory map[string]struct{ T string }
	tb.run("remembered", nil, &memory)
	if m, ok := memory["comet:"+srv.URL()+"/comet"]; !ok || m.T != transport.SSE {
		t.Errorf("localStorage after the first load: %+v, want sse remembered for %s/comet", memory, srv.URL())
	}

	before := len(srv.allRequests())
	tb.open(srv.pageURL(srv.URL(), srv.URL()))
	var second result
	p.Settle = 0 // starting on the remembered SSE, it has no race to wait for
	tb.run("echo", p, &second)
	if second.Transport != transport.SSE || len(second.Transports) == 0 || second.Transports[0] != (transportEvent{transport.SSE, "", ""}) {
		t.Errorf("second load: on %q after %+v, want sse from the start", second.Transport, second.Transports)
	}
	// What the second page asked for: SSE with no reason (it left
	// nothing: it did not wait for WebSocket to fail again), WebSocket at
	// most as a background probe to upgrade to. Their arrival order at the
	// server is the network's, not the shim's, so it is not checked.
	sawSSE := false
	for _, r := range srv.allRequests()[before:] {
		switch r.name {
		case transport.SSE:
			sawSSE = true
			if r.why != "" {
				t.Errorf("second load: %v, want SSE without a reason", r)
			}
		case transport.WebSocket:
			if r.why != "upgraded" {
				t.Errorf("second load: %v, want WebSocket only as a background upgrade", r)
			}
		}
	}
	if !sawSSE {
		t.Errorf("second load: no SSE attach in %v", srv.allRequests()[before:])
	}
	// The shim is served with an ETag and no-cache: the reload revalidates
	// it (a 304) instead of fetching it again.
	revalidated := false
	for _, r := range srv.allRequests()[before:] {
		if r.name == "comet.js" {
			revalidated = r.ifNoneMatch != ""
		}
	}
	if !revalidated {
		t.Errorf("second load: comet.js not revalidated with If-None-Match: %v", srv.allRequests()[before:])
	}
	if got := srv.negotiates.Load(); got != 2 {
		t.Errorf("server: %d negotiates, want 2", got)
	}
}

// TestHTTPS: every transport, and the automatic choice, over HTTPS with a
// test certificate; the HTTP transports on HTTP/2 (WebSocket always
// takes an HTTP/1.1 connection of its own: Go has no RFC 8441).
func TestHTTPS(t *testing.T) {
	needBrowser(t)
	browser, stop, err := launch(true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	for _, name := range append(slices.Clone(transports), "auto") {
		t.Run(name, func(t *testing.T) {
			srv := newServer(t, config{tls: true})
			tb := newTab(t, browser)
			tb.open(srv.pageURL(srv.URL(), srv.URL()))
			p := forced(srv.URL()+"/comet", name)
			want := name
			if name == "auto" {
				// The automatic choice waits for its race (see
				// TestAutoPicksWebSocket).
				p, want = params{URL: srv.URL() + "/comet", Settle: int(raceSettle.Milliseconds())}, transport.WebSocket
			}
			var r result
			tb.run("echo", p, &r)
			if !slices.Equal(r.Got, r.Sent) {
				t.Errorf("page: echoes %q, want %q", r.Got, r.Sent)
			}
			if name == "auto" {
				wantSettled(t, r)
			}
			checkOn(t, srv, r, want)
			checkClosed(t, "page", r.Close, 1000, "done")
			for _, req := range srv.allRequests() {
				if req.name != transport.WebSocket && req.proto != "HTTP/2.0" {
					t.Errorf("server: %v, want HTTP/2.0", req)
				}
			}
		})
	}
}
