package e2e

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/internal/faultproxy"
	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/transport"
)

// The fallback matrix: Chromium running the shim through the proxies that
// break WebSocket, buffer streams or kill idle connections, each case
// exchanging matrixMessages messages each way, with a row of the report
// (report_test.go) per case.

// matrixMessages is how many messages each case sends each way.
const matrixMessages = 1000

// matrixTimeout bounds a case's tab: the idle case waits 20 s on purpose.
const matrixTimeout = 90 * time.Second

// firstMessageLimit is the most a case whose WebSocket is broken may take
// to its first message, from the navigation's start. The shim's early
// chain of polls delivers a round trip or two after negotiate, whatever
// the race's fate (before it, 1 s was the aim: a 250 ms head start, then
// an HTTP transport); the limit leaves room for a loaded machine, and the
// report shows the real figure.
const firstMessageLimit = 3 * time.Second

// raceSettle bounds how long a case whose first transport may be broken
// waits, halfway through its exchange, for its first race to be decided.
// The early chain of polls carries the session from its first round trips
// (PROTOCOL.md section 8), so the whole exchange could end before the
// race does; the wait lets the race be decided (the head start, then a
// stream's proof or attach timeout), so that the row shows the transport
// the race chose, and the second half runs on it. The bound leaves room
// for a loaded machine; the race is over in well under a second.
const raceSettle = 10 * time.Second

// haproxyIdle is the idle timeout of the haproxy case, and pageIdle how long
// its page sends nothing: four timeouts, so that the shim must notice the
// cuts and shorten its heartbeat to keep its transport.
const (
	haproxyIdle = 5 * time.Second
	pageIdle    = 20 * time.Second
)

func TestFallbackMatrix(t *testing.T) {
	browser := needBrowser(t)
	// The first page a fresh Chromium loads pays for its cold start; an
	// unmeasured load first keeps that out of case 1's figures.
	warm := newServer(t, config{})
	newTab(t, browser).open(warm.pageURL(warm.URL(), warm.URL()))

	m := newMatrix(t)

	m.run("1", "direct, no proxy", func(t *testing.T, rw *row) {
		srv := newServer(t, config{})
		r := exchange(t, srv, openPage(t, browser, srv, srv.URL()), srv.URL(), params{}, rw)
		wantTransport(t, r, transport.WebSocket)
		wantStraight(t, r)
	})

	m.run("2", "nginx, plain proxy_pass (Upgrade dropped)", func(t *testing.T, rw *row) {
		srv := newServer(t, config{})
		px := startNginx(t, srv, nginxPlain)
		r := exchange(t, srv, openPage(t, browser, srv, px.url), px.url, settle(), rw)
		wantTransport(t, r, transport.SSE, transport.Streaming)
		wantReason(t, rw, "ws_refused")
		wantFirstWithin(t, rw)
		// The WebSocket attach did reach the server: as a plain HTTP/1.0
		// GET, without its Upgrade header, which the server refused.
		wantUpstream(t, srv, transport.WebSocket, "HTTP/1.0")
		rw.note("upstream HTTP/1.0; the stream passed because Comet sends X-Accel-Buffering: no")
	})

	m.run("3", "nginx, buffering (X-Accel-Buffering ignored)", func(t *testing.T, rw *row) {
		srv := newServer(t, config{})
		px := startNginx(t, srv, nginxBuffering)
		r := exchange(t, srv, openPage(t, browser, srv, px.url), px.url, settle(), rw)
		wantTransport(t, r, transport.LongPoll)
		wantReason(t, rw, "stream_buffered")
		wantUpstream(t, srv, transport.SSE, "HTTP/1.0")
		wantFirstWithin(t, rw)
		rw.note("SSE held back by nginx: its open frame never came in time")
	})

	m.run("4", "nginx, configured for WebSocket", func(t *testing.T, rw *row) {
		srv := newServer(t, config{})
		px := startNginx(t, srv, nginxWebSocket)
		r := exchange(t, srv, openPage(t, browser, srv, px.url), px.url, params{}, rw)
		wantTransport(t, r, transport.WebSocket)
		wantStraight(t, r)
		wantUpstream(t, srv, transport.WebSocket, "HTTP/1.1")
	})

	m.run("5", "haproxy, 5 s idle timeouts, page idle 20 s", func(t *testing.T, rw *row) {
		srv := newServer(t, config{})
		px := startHAProxy(t, srv, haproxyIdle)
		r := exchange(t, srv, openPage(t, browser, srv, px.url), px.url, params{Idle: int(pageIdle.Milliseconds())}, rw)
		// The session keeps its transport: no transport event after the
		// first, whatever reconnects the cuts cost.
		wantTransport(t, r, transport.WebSocket)
		wantStraight(t, r)
		var hbs []int
		for _, a := range srv.attaches() {
			if hb, err := strconv.Atoi(a.hb); err == nil {
				hbs = append(hbs, hb)
			}
		}
		if len(hbs) == 0 || hbs[len(hbs)-1] >= int(haproxyIdle.Milliseconds()) {
			t.Errorf("heartbeats asked for by the attaches: %v ms; want the last below the %v cut", hbs, haproxyIdle)
		} else {
			rw.note("heartbeat asked for after the cuts: %d ms", hbs[len(hbs)-1])
		}
	})

	// Case 10 is a second load of case 6's page in the same tab (the same
	// browser profile, its localStorage included): the two share a server,
	// a proxy and a tab, made here, in the parent test.
	bhSrv := newServer(t, config{})
	bhProxy := startFault(t, bhSrv, &faultproxy.Options{Upgrade: faultproxy.UpgradeBlackHole})
	bhTab := newTabWithin(t, browser, matrixTimeout)

	m.run("6", "synthetic: upgrade answered 101, then every frame dropped", func(t *testing.T, rw *row) {
		tb := bhTab.in(t)
		tb.open(bhSrv.pageURL(bhProxy.URL(), bhProxy.URL()))
		r := exchange(t, bhSrv, tb, bhProxy.URL(), settle(), rw)
		wantTransport(t, r, transport.SSE)
		wantReason(t, rw, "ws_silent")
		wantFirstWithin(t, rw)
		rw.note("upgrades black-holed: %d", bhProxy.Stats().BlackHoled)
	})

	m.run("7", "synthetic: upgrade never answered", func(t *testing.T, rw *row) {
		srv := newServer(t, config{})
		fp := startFault(t, srv, &faultproxy.Options{Upgrade: faultproxy.UpgradeHang})
		r := exchange(t, srv, openPage(t, browser, srv, fp.URL()), fp.URL(), settle(), rw)
		wantTransport(t, r, transport.SSE)
		wantReason(t, rw, "ws_hung")
		wantFirstWithin(t, rw)
		rw.note("upgrades left hanging: %d", fp.Stats().Hung)
	})

	m.run("8", "synthetic: every connection cut 1–3 s after it opened", func(t *testing.T, rw *row) {
		seed := cutSeed(t)
		srv := newServer(t, config{})
		fp := startFault(t, srv, &faultproxy.Options{Cut: &faultproxy.Cut{Min: time.Second, Max: 3 * time.Second}, Seed: seed})
		// Paced over cutPace, so that the exchange outlives several cuts.
		p := params{Every: int(cutEvery.Milliseconds()), Batch: matrixMessages * int(cutEvery) / int(cutPace)}
		exchange(t, srv, openPage(t, browser, srv, fp.URL()), fp.URL(), p, rw)
		st := fp.Stats()
		if st.Cuts == 0 {
			t.Errorf("proxy: no connection was cut: %+v", st)
		}
		// Never given up: one session throughout, resumed after every cut.
		if n := srv.negotiates.Load(); n != 1 {
			t.Errorf("server: %d negotiates, want 1", n)
		}
		rw.note("seed %d; %d of %d connections cut", seed, st.Cuts, st.Conns)
	})

	legacy := removable // every global the page can remove: WebSocket, EventSource, fetch, ReadableStream
	m.run("9a", "legacy page (no WebSocket, EventSource, fetch, ReadableStream), direct", func(t *testing.T, rw *row) {
		srv := newServer(t, config{})
		r := exchange(t, srv, openPage(t, browser, srv, srv.URL(), legacy...), srv.URL(), settle(), rw)
		wantTransport(t, r, transport.Streaming)
		wantOnlyXHR(t, srv)
	})

	m.run("9b", "legacy page, nginx buffering", func(t *testing.T, rw *row) {
		srv := newServer(t, config{})
		px := startNginx(t, srv, nginxBuffering)
		r := exchange(t, srv, openPage(t, browser, srv, px.url, legacy...), px.url, settle(), rw)
		wantTransport(t, r, transport.LongPoll)
		wantReason(t, rw, "stream_buffered")
		wantOnlyXHR(t, srv)
		wantFirstWithin(t, rw)
	})

	m.run("10", "second load after case 6, same browser profile", func(t *testing.T, rw *row) {
		tb := bhTab.in(t)
		before := len(bhSrv.allRequests())
		tb.open(bhSrv.pageURL(bhProxy.URL(), bhProxy.URL()))
		r := exchange(t, bhSrv, tb, bhProxy.URL(), params{}, rw)
		wantTransport(t, r, transport.SSE)
		// Started on the remembered transport: SSE first, with no reason
		// (nothing was left), WebSocket only as a background upgrade probe.
		if len(r.Transports) == 0 || r.Transports[0] != (transportEvent{transport.SSE, "", ""}) {
			t.Errorf("page: transport events %+v; want sse first, without a reason", r.Transports)
		}
		for _, a := range bhSrv.allRequests()[before:] {
			if a.name == transport.WebSocket && a.why != "upgraded" {
				t.Errorf("server: %v; want WebSocket only as a background upgrade probe", a)
			}
		}
		wantFirstWithin(t, rw)
		rw.note("remembered sse; WebSocket probed in the background only")
	})
}

// The pace of case 8: a batch of messages every cutEvery, all of them
// over cutPace.
const (
	cutEvery = 200 * time.Millisecond
	cutPace  = 8 * time.Second
)

// wantUpstream checks that the requests for name reached the server over
// proto: what the proxy in front spoke upstream.
func wantUpstream(t *testing.T, srv *server, name, proto string) {
	t.Helper()
	seen := false
	for _, a := range srv.attaches() {
		if a.name == name {
			seen = true
			if a.proto != proto {
				t.Errorf("server: %v; want %s from the proxy", a, proto)
			}
		}
	}
	if !seen {
		t.Errorf("server: no %s attach reached it: %v", name, srv.attaches())
	}
}

// wantOnlyXHR checks that a legacy page attached with XHR transports only.
func wantOnlyXHR(t *testing.T, srv *server) {
	t.Helper()
	for _, a := range srv.attaches() {
		if a.name != transport.Streaming && a.name != transport.LongPoll {
			t.Errorf("server: %v from a page without WebSocket and EventSource", a)
		}
	}
}

// openPage opens the page at base (the server, or a proxy in front of it)
// in a tab of its own, the shim loaded from base too, so that every request
// of the page takes the same path.
func openPage(t *testing.T, browser context.Context, srv *server, base string, remove ...string) *tab {
	t.Helper()
	tb := newTabWithin(t, browser, matrixTimeout)
	tb.open(srv.pageURL(base, base, remove...))
	return tb
}

// startFault starts a faultproxy in front of srv, stopped with the test.
func startFault(t *testing.T, srv *server, opts *faultproxy.Options) *faultproxy.Proxy {
	t.Helper()
	fp, err := faultproxy.Start(srv.URL(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fp.Close() })
	return fp
}

// exchange runs the page's exchange scenario through base (the endpoint
// is base/comet), records it in rw, and checks that every message arrived
// exactly once, in order, both ways, and that the page's close was clean.
func exchange(t *testing.T, srv *server, tb *tab, base string, p params, rw *row) result {
	t.Helper()
	p.URL = base + "/comet"
	p.N = matrixMessages
	p.Brief = true
	before := len(srv.allRequests())
	var r result
	tb.run("exchange", p, &r)
	// Not srv.sessionEnd: srv may belong to the parent test (cases 6, 10).
	e := testutil.Receive(t, srv.ended, "end of the session")
	rw.record(r, e, srv.allRequests()[before:])
	if p.Settle > 0 {
		wantSettled(t, r)
	}
	for _, d := range []struct {
		name string
		got  tally
	}{{"page to server", rw.Up}, {"server to page", rw.Down}} {
		if !d.got.exact(matrixMessages) {
			t.Errorf("%s: %+v; want %d messages, each once, in order", d.name, d.got, matrixMessages)
		}
	}
	checkClosed(t, "page", r.Close, 1000, "done")
	if len(r.Errors) != 0 {
		t.Errorf("page: error events %+v", r.Errors)
	}
	return r
}

// settle returns the exchange parameters of a case whose race may
// outlast the early chain: a wait, halfway, for the race to be decided.
func settle() params {
	return params{Settle: int(raceSettle.Milliseconds())}
}

// wantTransport checks that the session ended on one of names.
func wantTransport(t *testing.T, r result, names ...string) {
	t.Helper()
	if !slices.Contains(names, r.Transport) {
		t.Errorf("page: on %q after %+v; want %s", r.Transport, r.Transports, strings.Join(names, " or "))
	}
}

// wantStraight checks that the first transport was never left (after the
// early long-poll chain, if a busy machine let it open the session).
func wantStraight(t *testing.T, r result) {
	t.Helper()
	if evs := afterEarly(r.Transports); len(evs) != 1 || evs[0].From != "" || evs[0].Reason != "" {
		t.Errorf("page: transport events %+v; want only the first, without a reason", r.Transports)
	}
}

// wantReason checks that reason was among the fallback reasons seen.
func wantReason(t *testing.T, rw *row, reason string) {
	t.Helper()
	if !slices.Contains(rw.Reasons, reason) {
		t.Errorf("page: fallback reasons %v; want %s among them", rw.Reasons, reason)
	}
}

// wantFirstWithin checks the time to the first message.
func wantFirstWithin(t *testing.T, rw *row) {
	t.Helper()
	if rw.First <= 0 || rw.First > float64(firstMessageLimit.Milliseconds()) {
		t.Errorf("page: first message %.0f ms after the navigation's start; want at most %v", rw.First, firstMessageLimit)
	}
}
