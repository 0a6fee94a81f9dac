package session_test

import (
	"context"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// TestRequestInfoIsBounded: a session keeps the headers RequestHeaders
// names and the cookies, within MaxRequestInfo, however large the
// negotiate request was. Before, it kept a full copy of every header: 200
// negotiates with one 900 KiB header each grew the heap by ~180 MiB.
func TestRequestInfoIsBounded(t *testing.T) {
	t.Parallel()
	t.Run("what is kept", func(t *testing.T) {
		t.Parallel()
		l := startLive(t, &session.Options{RequestHeaders: []string{"user-agent", "X-Tenant"}, MaxRequestInfo: 64})
		hdr := http.Header{
			"User-Agent":  {"test-agent"},
			"X-Tenant":    {"acme"},
			"X-Huge":      {strings.Repeat("h", 4096)},
			"Referer":     {"https://app.example/page"},
			"Cookie":      {"a=1; big=" + strings.Repeat("c", 100) + "; b=2"},
			"X-Forwarded": {"x"},
		}
		resp, body := l.do(t, http.MethodPost, prefix+"/negotiate?v=1", hdr, "")
		n, err := transport.ParseNegotiateResponse(body)
		if resp.StatusCode != http.StatusOK || err != nil {
			t.Fatalf("negotiate: %s %v %s", resp.Status, err, body)
		}
		info := l.session(t, n).Request()
		want := http.Header{"User-Agent": {"test-agent"}, "X-Tenant": {"acme"}}
		if len(info.Header) != len(want) || info.Header.Get("User-Agent") != "test-agent" || info.Header.Get("X-Tenant") != "acme" {
			t.Errorf("Request().Header = %v, want %v", info.Header, want)
		}
		var names []string
		for _, c := range info.Cookies {
			names = append(names, c.Name+"="+c.Value)
		}
		// 10+8 header bytes, then a=1 (2), big (103) does not fit, b=2 (2).
		if got := strings.Join(names, " "); got != "a=1 b=2" {
			t.Errorf("Request().Cookies = %q, want the ones that fit: a=1 b=2", got)
		}
		if !info.ClientAddr.IsLoopback() {
			t.Errorf("Request().ClientAddr = %v, want the loopback peer", info.ClientAddr)
		}
	})
}

// TestRequestInfoHeap measures what sessions keep of huge requests. It
// reads the process's heap, so it runs alone: not in parallel with the
// package's other tests.
func TestRequestInfoHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 100 MiB of headers")
	}
	// The sessions never attach: on a loaded machine the 100 negotiates
	// take longer than the default first-attach deadline.
	l := startLive(t, &session.Options{AttachTimeout: 10 * time.Minute})
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	big := strings.Repeat("h", 500<<10)
	before := heap()
	for range 100 {
		l.do(t, http.MethodPost, prefix+"/negotiate?v=1", http.Header{"X-Huge": {big}, "User-Agent": {big}}, "")
	}
	after := heap()
	t.Logf("heap after 100 negotiates with 1,000 KiB of headers each: %+d KiB", (int64(after)-int64(before))>>10)
	if l.h.Sessions() != 100 {
		t.Fatalf("%d sessions, want 100", l.h.Sessions())
	}
	if grown := int64(after) - int64(before); grown > 10<<20 {
		t.Errorf("100 sessions hold %d MiB: their requests' headers were kept", grown>>20)
	}
}

// TestSessionsPerAddressCap: negotiate answers 429 to an address holding
// MaxSessionsPerAddress sessions, and admits it again once one has ended;
// behind a trusted proxy, the address is the forwarded one.
func TestSessionsPerAddressCap(t *testing.T) {
	t.Parallel()
	l := startLive(t, &session.Options{MaxSessionsPerAddress: 2,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
	from := func(addr string) (*http.Response, []byte) {
		return l.do(t, http.MethodPost, prefix+"/negotiate?v=1", http.Header{"X-Forwarded-For": {addr}}, "")
	}
	var first *transport.NegotiateResponse
	for i := range 2 {
		resp, body := from("198.51.100.7")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("negotiate %d: %s %s", i+1, resp.Status, body)
		}
		if first == nil {
			first, _ = transport.ParseNegotiateResponse(body)
		}
	}
	resp, body := from("198.51.100.7")
	wantError(t, resp, body, http.StatusTooManyRequests, transport.CodeRateLimited)
	wantRetryAfter(t, resp.Header, 1, 10)
	if resp, body := from("198.51.100.8"); resp.StatusCode != http.StatusOK {
		t.Fatalf("another address behind the same proxy: %s %s", resp.Status, body)
	}
	s := l.session(t, first)
	s.CloseNow()
	<-s.Done()
	if resp, body := from("198.51.100.7"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after one of its sessions ended: %s %s", resp.Status, body)
	}
}

// TestNegotiateRateBehindProxy: the negotiate rate limit keys on the
// forwarded client, so that users behind one proxy do not share a bucket,
// and a forged X-Forwarded-For from an untrusted peer changes nothing.
func TestNegotiateRateBehindProxy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		second  int
	}{
		{"trusted proxy", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}, http.StatusOK},
		{"untrusted peer", nil, http.StatusTooManyRequests},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := startLive(t, &session.Options{NegotiateRate: 0.001, NegotiateBurst: 1, TrustedProxies: tc.trusted})
			for i, addr := range []string{"198.51.100.7", "198.51.100.8"} {
				resp, body := l.do(t, http.MethodPost, prefix+"/negotiate?v=1", http.Header{"X-Forwarded-For": {addr}}, "")
				want := http.StatusOK
				if i == 1 {
					want = tc.second
				}
				if resp.StatusCode != want {
					t.Fatalf("negotiate from %s: %s %s, want %d", addr, resp.Status, body, want)
				}
			}
		})
	}
}

// TestBufferedBytesBudget: while the sessions' windows hold
// MaxBufferedBytes, negotiate answers 503 overloaded; once the client
// acknowledges, new sessions are admitted again.
func TestBufferedBytesBudget(t *testing.T) {
	t.Parallel()
	l := startLive(t, &session.Options{MaxBufferedBytes: 100 << 10, MaxMessage: 64 << 10})
	n := l.negotiate(t)
	s := l.session(t, n)
	payload := []byte(strings.Repeat("x", 60<<10))
	for range 2 {
		if err := s.TrySend(transport.Text, payload); err != nil {
			t.Fatal(err)
		}
	}
	resp, body := l.do(t, http.MethodPost, prefix+"/negotiate?v=1", nil, "")
	wantError(t, resp, body, http.StatusServiceUnavailable, transport.CodeOverloaded)
	wantRetryAfter(t, resp.Header, 1, 10)

	// The client's ack, on a POST, releases the window.
	if resp, body := l.post(t, n.SessionID, batch(key(n.Secret, 2, false))); resp.StatusCode != http.StatusOK {
		t.Fatalf("POST: %s %s", resp.Status, body)
	}
	l.negotiate(t)
}

// TestInboundRate: a client that sends faster than InboundRate is closed
// with 3007, and the POST that broke the limit is refused.
func TestInboundRate(t *testing.T) {
	t.Parallel()
	closed := make(chan error, 1)
	l := startLive(t, &session.Options{InboundRate: 0.001, InboundBurst: 3, Serve: func(s *session.Session) {
		for {
			if _, _, err := s.Recv(context.Background()); err != nil {
				closed <- err
				return
			}
		}
	}})
	n := l.negotiate(t)
	resp, body := l.post(t, n.SessionID, batch(key(n.Secret, 0, false), text(1, "a"), text(2, "b"), text(3, "c")))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a burst of 3: %s %s", resp.Status, body)
	}
	resp, body = l.post(t, n.SessionID, batch(key(n.Secret, 0, false), text(4, "d")))
	wantError(t, resp, body, http.StatusBadRequest, transport.CodeMalformed)
	err := <-closed
	if transport.CloseStatus(err) != transport.CloseRateExceeded {
		t.Fatalf("Recv = %v, want close 3007", err)
	}
}
