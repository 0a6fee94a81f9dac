package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// forwardedClientIP is the address the proxy cases negotiate from: the
// proxies dial from 127.0.0.1, so the address Comet reports tells which
// of the two it took.
const forwardedClientIP = "127.0.0.2"

// negotiateVia sends a negotiate through px from forwardedClientIP, with
// the Origin and the extra headers given, and returns the answer.
func negotiateVia(t *testing.T, px *proxyProc, origin string, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy:           nil,
		TLSClientConfig: px.tls,
		DialContext:     (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(forwardedClientIP)}}).DialContext,
	}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, px.url+"/comet/negotiate?v=1", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Origin", origin)
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	t.Logf("negotiate through %s, Origin %s: %s %s", px.name, origin, resp.Status, body)
	return resp, body
}

// originRefusal decodes the body of a 403 origin_refused, or fails.
func originRefusal(t *testing.T, resp *http.Response, body []byte) transport.ErrorBody {
	t.Helper()
	var e transport.ErrorBody
	if resp.StatusCode != http.StatusForbidden || json.Unmarshal(body, &e) != nil || e.Code != transport.CodeOriginRefused {
		t.Fatalf("negotiate: %s %s, want 403 origin_refused", resp.Status, body)
	}
	return e
}

// clientAddrOf returns the client address of the session an admitted
// negotiate made, which it ends (never attached, it has nothing to
// deliver).
func clientAddrOf(t *testing.T, srv *server, resp *http.Response, body []byte) string {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("negotiate: %s, want 200; body %s", resp.Status, body)
	}
	n, err := transport.ParseNegotiateResponse(body)
	if err != nil {
		t.Fatal(err)
	}
	s := srv.h.Session(n.SessionID)
	if s == nil {
		t.Fatal("no session")
	}
	defer s.CloseNow()
	return s.Request().ClientAddr.String()
}
