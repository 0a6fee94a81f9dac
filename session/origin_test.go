package session_test

import (
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// hostPlaceholder in a test case stands for the server's host:port.
const hostPlaceholder = "{host}"

// originRequest is one kind of request the Origin policy guards. It sends
// the request with hdr and returns the response and body; admitted is the
// status of a request the policy lets through.
type originRequest struct {
	name     string
	admitted int
	send     func(t *testing.T, l *live, hdr http.Header) (*http.Response, []byte)
}

// originRequests are every request PROTOCOL.md section 11 puts under the
// policy: negotiate and each transport request. The transport requests
// carry a fresh session and ticket, made without an Origin, so that only
// the policy can refuse them.
var originRequests = []originRequest{
	{"negotiate", http.StatusOK, func(t *testing.T, l *live, hdr http.Header) (*http.Response, []byte) {
		return l.do(t, http.MethodPost, prefix+"/negotiate?v=1", hdr, "")
	}},
	{"websocket upgrade", http.StatusSwitchingProtocols, func(t *testing.T, l *live, hdr http.Header) (*http.Response, []byte) {
		n := l.negotiate(t)
		conn, resp, err := l.dial(t, transport.AttachParams{Session: n.SessionID, Ticket: n.Tickets[0], Attempt: 1, Deliver: true}, hdr)
		if resp == nil {
			t.Fatalf("dial: %v", err)
		}
		if conn != nil {
			conn.Close()
			return resp, nil
		}
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}},
	{"longpoll", http.StatusOK, func(t *testing.T, l *live, hdr http.Header) (*http.Response, []byte) {
		n := l.negotiate(t)
		return l.do(t, http.MethodGet, attachTarget(transport.LongPoll, transport.AttachParams{
			Session: n.SessionID, Ticket: n.Tickets[0], Attempt: 1}), hdr, "")
	}},
	{"send", http.StatusOK, func(t *testing.T, l *live, hdr http.Header) (*http.Response, []byte) {
		n := l.negotiate(t)
		hdr = hdr.Clone()
		hdr.Set("Content-Type", "text/plain;charset=UTF-8")
		return l.do(t, http.MethodPost, sendTarget(n.SessionID), hdr, batch(key(n.Secret, 0, false)))
	}},
}

// loopback trusts the test server's peer as a proxy.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

func TestOriginPolicy(t *testing.T) {
	t.Parallel()
	const app, evil = "https://app.example", "https://evil.example"
	tests := []struct {
		name string
		opts session.Options
		hdr  map[string]string // {host} is replaced by the server's host:port
		// refusedHost is the host a refusal names; "" means admitted.
		refusedHost string
		// cors is the Access-Control-Allow-Origin of an admitted request.
		cors  string
		creds bool
	}{
		{name: "same origin", hdr: map[string]string{"Origin": "http://{host}"}},
		{name: "same host, other scheme", hdr: map[string]string{"Origin": "https://{host}"}, refusedHost: "{host}"},
		{name: "same origin, upper case", hdr: map[string]string{"Origin": "HTTP://{host}"}},
		{name: "userinfo", hdr: map[string]string{"Origin": "http://evil@{host}"}, refusedHost: "{host}"},
		{name: "a path", hdr: map[string]string{"Origin": "http://{host}/app"}, refusedHost: "{host}"},
		{name: "a trailing slash", hdr: map[string]string{"Origin": "http://{host}/"}, refusedHost: "{host}"},
		{name: "a query", hdr: map[string]string{"Origin": "http://{host}?x"}, refusedHost: "{host}"},
		{name: "no scheme", hdr: map[string]string{"Origin": "{host}"}, refusedHost: "{host}"},
		{name: "no Origin", hdr: map[string]string{}},
		{name: "no Origin, same-site fetch", hdr: map[string]string{"Sec-Fetch-Site": "same-site"}},
		{name: "no Origin, cross-site fetch", hdr: map[string]string{"Sec-Fetch-Site": "cross-site"},
			refusedHost: "{host}"},

		{name: "allowlisted", opts: session.Options{AllowedOrigins: []string{app}},
			hdr: map[string]string{"Origin": app}, cors: app},
		{name: "allowlisted with credentials", opts: session.Options{AllowedOrigins: []string{app}, AllowCredentials: true},
			hdr: map[string]string{"Origin": app}, cors: app, creds: true},
		{name: "allowlist entry with a slash", opts: session.Options{AllowedOrigins: []string{app + "/"}},
			hdr: map[string]string{"Origin": app}, cors: app},
		{name: "not allowlisted", opts: session.Options{AllowedOrigins: []string{app}, AllowCredentials: true},
			hdr: map[string]string{"Origin": evil}, refusedHost: "{host}"},
		{name: "allowlisted host, other port", opts: session.Options{AllowedOrigins: []string{app}},
			hdr: map[string]string{"Origin": app + ":8443"}, refusedHost: "{host}"},
		{name: "allowlisted name as a prefix", opts: session.Options{AllowedOrigins: []string{app}},
			hdr: map[string]string{"Origin": app + ".evil.example"}, refusedHost: "{host}"},
		{name: "opaque origin", hdr: map[string]string{"Origin": "null"}, refusedHost: "{host}"},

		{name: "any origin, insecurely", opts: session.Options{InsecureAllowAnyOrigin: true},
			hdr: map[string]string{"Origin": evil}, cors: evil},
		{name: "any origin, credentials only for the allowlist", opts: session.Options{InsecureAllowAnyOrigin: true,
			AllowCredentials: true}, hdr: map[string]string{"Origin": evil}, cors: evil},
		{name: "any origin, allowlisted with credentials", opts: session.Options{InsecureAllowAnyOrigin: true,
			AllowCredentials: true, AllowedOrigins: []string{app}}, hdr: map[string]string{"Origin": app}, cors: app, creds: true},
		{name: "any origin with credentials", opts: session.Options{InsecureAllowAnyOriginWithCredentials: true},
			hdr: map[string]string{"Origin": evil}, cors: evil, creds: true},

		{name: "forwarded host trusted", opts: session.Options{TrustForwardedHost: true},
			hdr: map[string]string{"Origin": "https://public.example", "X-Forwarded-Host": "public.example", "X-Forwarded-Proto": "https"}},
		{name: "forwarded host, scheme not forwarded", opts: session.Options{TrustForwardedHost: true},
			hdr: map[string]string{"Origin": "https://public.example", "X-Forwarded-Host": "public.example"}, refusedHost: "public.example"},
		{name: "first of several forwarded hosts", opts: session.Options{TrustForwardedHost: true},
			hdr: map[string]string{"Origin": "https://public.example", "X-Forwarded-Host": "public.example, internal:8080", "X-Forwarded-Proto": "https, http"}},
		{name: "forwarded host replaces Host", opts: session.Options{TrustForwardedHost: true},
			hdr: map[string]string{"Origin": "http://{host}", "X-Forwarded-Host": "public.example"}, refusedHost: "public.example"},
		{name: "forwarded host absent", opts: session.Options{TrustForwardedHost: true},
			hdr: map[string]string{"Origin": "http://{host}"}},
		{name: "forwarded host absent, other origin", opts: session.Options{TrustForwardedHost: true},
			hdr: map[string]string{"Origin": "https://public.example"}, refusedHost: "{host}"},
		{name: "forwarded host untrusted",
			hdr: map[string]string{"Origin": "https://public.example", "X-Forwarded-Host": "public.example"}, refusedHost: "{host}"},

		// The test server's peer is 127.0.0.1.
		{name: "trusted proxy", opts: session.Options{TrustedProxies: loopback},
			hdr: map[string]string{"Origin": "https://public.example", "X-Forwarded-Host": "public.example", "X-Forwarded-Proto": "https"}},
		{name: "trusted proxy, Forwarded", opts: session.Options{TrustedProxies: loopback},
			hdr: map[string]string{"Origin": "https://public.example", "Forwarded": `for=192.0.2.1;proto=https;host="public.example"`}},
		{name: "trusted proxy, plain http", opts: session.Options{TrustedProxies: loopback},
			hdr:         map[string]string{"Origin": "https://public.example", "X-Forwarded-Host": "public.example", "X-Forwarded-Proto": "http"},
			refusedHost: "public.example"},
		{name: "untrusted proxy", opts: session.Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
			hdr:         map[string]string{"Origin": "https://public.example", "X-Forwarded-Host": "public.example", "X-Forwarded-Proto": "https"},
			refusedHost: "{host}"},

		{name: "http default port in Origin", hdr: map[string]string{"Host": "h.example", "Origin": "http://h.example:80"}},
		{name: "http default port in Host", hdr: map[string]string{"Host": "h.example:80", "Origin": "http://h.example"}},
		{name: "https default port in Host", opts: session.Options{TrustedProxies: loopback},
			hdr: map[string]string{"Host": "h.example:443", "Origin": "https://h.example", "X-Forwarded-Proto": "https"}},
		{name: "https port is not http's default", hdr: map[string]string{"Host": "h.example:443", "Origin": "http://h.example"},
			refusedHost: "h.example:443"},
		{name: "other port", hdr: map[string]string{"Host": "h.example", "Origin": "http://h.example:8080"},
			refusedHost: "h.example"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := startLive(t, &tc.opts)
			host := strings.TrimPrefix(l.srv.URL, "http://")
			hdr := http.Header{}
			for k, v := range tc.hdr {
				hdr.Set(k, strings.ReplaceAll(v, hostPlaceholder, host))
			}
			for _, req := range originRequests {
				t.Run(req.name, func(t *testing.T) {
					resp, body := req.send(t, l, hdr)
					if tc.refusedHost != "" {
						e := wantError(t, resp, body, http.StatusForbidden, transport.CodeOriginRefused)
						wantHost := strings.ReplaceAll(tc.refusedHost, hostPlaceholder, host)
						if e.Origin != hdr.Get("Origin") || e.Host != wantHost {
							t.Errorf("refusal names origin %q host %q, want %q and %q", e.Origin, e.Host, hdr.Get("Origin"), wantHost)
						}
						// The refused page may read the refusal, never with
						// credentials.
						if got := resp.Header.Get("Access-Control-Allow-Origin"); got != e.Origin {
							t.Errorf("refusal Access-Control-Allow-Origin = %q, want %q", got, e.Origin)
						}
						if resp.Header.Get("Access-Control-Allow-Credentials") != "" {
							t.Error("refusal allows credentials")
						}
						return
					}
					if resp.StatusCode != req.admitted {
						t.Fatalf("status = %s, want %d; body %s", resp.Status, req.admitted, body)
					}
					wantCORS(t, resp.Header, tc.cors, tc.creds)
				})
			}
		})
	}
}

// wantCORS checks the CORS headers of an admitted response: the exact
// origin (never *) with Vary: Origin for a cross-origin request, nothing
// for a same-origin one.
func wantCORS(t *testing.T, h http.Header, origin string, creds bool) {
	t.Helper()
	if got := h.Get("Access-Control-Allow-Origin"); got != origin {
		t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, origin)
	}
	vary := strings.Join(h.Values("Vary"), ",")
	if origin != "" && !slices.Contains(strings.Split(strings.ReplaceAll(vary, " ", ""), ","), "Origin") {
		t.Errorf("Vary = %q, want Origin", vary)
	}
	want := ""
	if creds {
		want = "true"
	}
	if got := h.Get("Access-Control-Allow-Credentials"); got != want {
		t.Errorf("Access-Control-Allow-Credentials = %q, want %q", got, want)
	}
}

func TestPreflight(t *testing.T) {
	t.Parallel()
	const app = "https://app.example"
	tests := []struct {
		name   string
		opts   session.Options
		origin string
		status int
		creds  bool
	}{
		{"allowed", session.Options{AllowedOrigins: []string{app}}, app, http.StatusNoContent, false},
		{"allowed with credentials", session.Options{AllowedOrigins: []string{app}, AllowCredentials: true}, app, http.StatusNoContent, true},
		{"refused", session.Options{AllowedOrigins: []string{app}}, "https://evil.example", http.StatusForbidden, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := startLive(t, &tc.opts)
			hdr := http.Header{
				"Origin":                         {tc.origin},
				"Access-Control-Request-Method":  {"POST"},
				"Access-Control-Request-Headers": {"authorization,content-type"},
			}
			resp, body := l.do(t, http.MethodOptions, prefix+"/negotiate?v=1", hdr, "")
			wantNoStore(t, resp.Header)
			if tc.status == http.StatusForbidden {
				e := wantError(t, resp, body, http.StatusForbidden, transport.CodeOriginRefused)
				if e.Origin != tc.origin {
					t.Errorf("refusal names origin %q, want %q", e.Origin, tc.origin)
				}
				return
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %s, want %d; body %s", resp.Status, tc.status, body)
			}
			wantCORS(t, resp.Header, tc.origin, tc.creds)
			if got := resp.Header.Get("Access-Control-Allow-Methods"); !strings.Contains(got, "POST") {
				t.Errorf("Access-Control-Allow-Methods = %q, want POST", got)
			}
			if got := resp.Header.Get("Access-Control-Allow-Headers"); got != "authorization,content-type" {
				t.Errorf("Access-Control-Allow-Headers = %q, want the requested ones", got)
			}
			if resp.Header.Get("Access-Control-Max-Age") == "" {
				t.Error("no Access-Control-Max-Age: every negotiate would pay a preflight")
			}
			if n := l.h.Sessions(); n != 0 {
				t.Errorf("a preflight made %d sessions", n)
			}
		})
	}
}

// TestOriginRefusalMessage: a refusal says what to do, and says the
// scheme differs only when it does. The page of a proxy that rewrote
// Host to its upstream's address has Comet's host name and scheme on
// another port: a newcomer's first refusal, which points to the recipes.
func TestOriginRefusalMessage(t *testing.T) {
	t.Parallel()
	l := startLive(t, nil)
	host := strings.TrimPrefix(l.srv.URL, "http://")
	name, _, _ := strings.Cut(host, ":")
	for _, tc := range []struct {
		name, origin string
		want, never  []string
	}{
		{"proxy's port, Host rewritten", "http://" + name + ":1", []string{"AllowedOrigins", "docs/proxies.md", "TrustedProxies"}, []string{"scheme"}},
		{"https page, http request", "https://" + host, []string{"scheme differs", "TLS-terminating proxy", "TrustedProxies", "docs/proxies.md"}, nil},
		{"another site", "https://evil.example", []string{"AllowedOrigins", "docs/proxies.md"}, []string{"scheme"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := l.do(t, http.MethodPost, prefix+"/negotiate?v=1", http.Header{"Origin": {tc.origin}}, "")
			e := wantError(t, resp, body, http.StatusForbidden, transport.CodeOriginRefused)
			for _, w := range tc.want {
				if !strings.Contains(e.Message, w) {
					t.Errorf("message %q does not say %q", e.Message, w)
				}
			}
			for _, n := range tc.never {
				if strings.Contains(e.Message, n) {
					t.Errorf("message %q says %q", e.Message, n)
				}
			}
		})
	}
}
