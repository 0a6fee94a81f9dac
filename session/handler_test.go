package session_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/js"
	"github.com/seed-544bbf9f/comet/longpoll"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
	"github.com/seed-544bbf9f/comet/websocket"
)

// These tests drive a Handler over real HTTP on loopback, with raw requests
// and a raw WebSocket client, so that they check the wire of PROTOCOL.md
// rather than what our own client happens to send.

const prefix = "/comet"

// unknownSID is well formed and names no session.
const unknownSID = "6f1c0a7e-8a0b-4a51-9c1b-3c6f1f1c2b7d"

// wait bounds every step that waits for the server: generous, because a
// step that passes takes milliseconds and one that hangs fails the test.
const wait = 10 * time.Second

// live is a Handler served on loopback for one test. Its cleanup ends the
// sessions the test left open, shuts the handler down and closes the
// server, so that nothing outlives the test.
type live struct {
	h   *session.Handler
	srv *httptest.Server
}

// startLive serves a Handler with opts (nil for defaults) and the
// WebSocket and long-polling adapters. Unless opts says otherwise, the
// negotiate rate limit is off and the grace period is 1s. opts.Serve, if
// set, runs the application; otherwise each session idles until closed.
func startLive(t *testing.T, opts *session.Options) *live {
	t.Helper()
	var o session.Options
	if opts != nil {
		o = *opts
	}
	o.Logger = testutil.Logger(t)
	if o.NegotiateRate == 0 {
		o.NegotiateRate = -1
	}
	if o.Grace == 0 {
		o.Grace = time.Second
	}
	if o.Serve == nil {
		o.Serve = func(s *session.Session) { <-s.Context().Done() }
	}
	return serveLive(t, session.NewHandler(&o, websocket.New(nil), longpoll.New()))
}

// serveLive serves h on loopback until the test ends.
func serveLive(t *testing.T, h *session.Handler) *live {
	l := &live{h: h, srv: httptest.NewServer(h)}
	t.Cleanup(func() {
		// Sessions whose clients are gone would wait out the grace
		// period; end them first so that Shutdown has nothing to wait for
		// but the Serve goroutines.
		l.h.Range(func(s *session.Session) bool {
			s.CloseNow()
			return true
		})
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := l.h.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		l.srv.Close()
	})
	return l
}

// do sends a request to the server and returns the response and its body.
// A Host entry in hdr sets the request's Host.
func (l *live) do(t *testing.T, method, target string, hdr http.Header, body string) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, l.srv.URL+target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if host := hdr.Get("Host"); host != "" {
		req.Host = host
	}
	resp, err := l.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, target, err)
	}
	return resp, b
}

// negotiate makes a session and returns the negotiate response.
func (l *live) negotiate(t *testing.T) *transport.NegotiateResponse {
	t.Helper()
	resp, body := l.do(t, http.MethodPost, prefix+"/negotiate?v=1", nil, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("negotiate: %s %s", resp.Status, body)
	}
	n, err := transport.ParseNegotiateResponse(body)
	if err != nil {
		t.Fatalf("negotiate: %v", err)
	}
	return n
}

// session returns the Session of a negotiate response.
func (l *live) session(t *testing.T, n *transport.NegotiateResponse) *session.Session {
	t.Helper()
	s := l.h.Session(n.SessionID)
	if s == nil {
		t.Fatalf("the handler holds no session %s", n.SessionID)
	}
	return s
}

var cacheBuster atomic.Uint64

// attachTarget is the path and query of an attach GET.
func attachTarget(name string, p transport.AttachParams) string {
	q := url.Values{}
	p.Encode(q)
	q.Set("z", strconv.FormatUint(cacheBuster.Add(1), 36))
	return prefix + "/" + name + "?" + q.Encode()
}

// sendTarget is the path and query of an upstream POST.
func sendTarget(sid string) string {
	return prefix + "/send?v=1&s=" + url.QueryEscape(sid) + "&z=" + strconv.FormatUint(cacheBuster.Add(1), 36)
}

var textPlain = http.Header{"Content-Type": {"text/plain;charset=UTF-8"}}

// post sends an upstream batch for the session.
func (l *live) post(t *testing.T, sid, body string) (*http.Response, []byte) {
	t.Helper()
	return l.do(t, http.MethodPost, sendTarget(sid), textPlain, body)
}

// dial attaches by WebSocket. On a refused handshake the response is
// returned with the error, its body readable.
func (l *live) dial(t *testing.T, p transport.AttachParams, hdr http.Header) (*gorilla.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	u := "ws" + strings.TrimPrefix(l.srv.URL, "http") + attachTarget(transport.WebSocket, p)
	conn, resp, err := (&gorilla.Dialer{}).DialContext(ctx, u, hdr)
	if conn != nil {
		t.Cleanup(func() { conn.Close() })
	}
	return conn, resp, err
}

// batch encodes frames as a batch.
func batch(frames ...transport.Frame) string {
	var b transport.Batch
	for i := range frames {
		b.Append(&frames[i])
	}
	return string(b.Bytes)
}

func key(secret string, ack uint64, wantTicket bool) transport.Frame {
	return transport.Frame{Type: transport.TypeKey, Token: secret, Ack: ack, WantTicket: wantTicket}
}

func text(seq uint64, s string) transport.Frame {
	return transport.Frame{Type: transport.TypeText, Seq: seq, Payload: []byte(s)}
}

// decode decodes a response body that must be a batch.
func decode(t *testing.T, body []byte) []transport.Frame {
	t.Helper()
	frames, err := transport.DecodeBatch(body)
	if err != nil {
		t.Fatalf("response %q is not a batch: %v", body, err)
	}
	return frames
}

// wantNoStore checks the header that keeps every response out of caches.
func wantNoStore(t *testing.T, h http.Header) {
	t.Helper()
	if got := h.Get("Cache-Control"); got != "no-store, no-transform" {
		t.Errorf("Cache-Control = %q, want %q", got, "no-store, no-transform")
	}
}

// wantError checks that a response is the refusal of PROTOCOL.md section 2
// with the status and code, and returns its body.
func wantError(t *testing.T, resp *http.Response, body []byte, status int, code string) transport.ErrorBody {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status = %s, want %d; body %s", resp.Status, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	wantNoStore(t, resp.Header)
	var e transport.ErrorBody
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	if code != "" && e.Code != code {
		t.Errorf("code = %q, want %q (message %q)", e.Code, code, e.Message)
	}
	if e.Message == "" {
		t.Errorf("error %q has no message", e.Code)
	}
	return e
}

// wantRetryAfter checks that Retry-After holds whole seconds in [lo, hi].
func wantRetryAfter(t *testing.T, h http.Header, lo, hi int) {
	t.Helper()
	n, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || n < lo || n > hi {
		t.Errorf("Retry-After = %q, want seconds in [%d, %d]", h.Get("Retry-After"), lo, hi)
	}
}

func TestNegotiateResponse(t *testing.T) {
	t.Parallel()
	l := startLive(t, &session.Options{
		Heartbeat: 2 * time.Second, MinHeartbeat: 500 * time.Millisecond, Hold: 3 * time.Second,
		Grace: 4 * time.Second, AckDelay: 150 * time.Millisecond,
		MinClientTimeout: 250 * time.Millisecond, MaxClientTimeout: 7 * time.Second,
		// MaxBatch is raised to 6*MaxMessage+64 so that any message fits.
		MaxMessage: 1000, MaxBatch: 100, WindowMessages: 50, WindowBytes: 5000,
	})
	resp, body := l.do(t, http.MethodPost, prefix+"/negotiate?v=1", nil, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %s; body %s", resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("Cache-Control = %q, want no-store: a cached negotiate hands two clients one session", cc)
	}

	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"v", "sid", "secret", "tickets", "transports", "heartbeat", "minHeartbeat",
		"hold", "grace", "ackDelay", "minTimeout", "maxTimeout", "maxMessage", "maxBatch",
		"windowMessages", "windowBytes"} {
		if _, ok := fields[name]; !ok {
			t.Errorf("negotiate response lacks %q: %s", name, body)
		}
	}

	got, err := transport.ParseNegotiateResponse(body)
	if err != nil {
		t.Fatal(err)
	}
	want := transport.NegotiateResponse{
		Version: 1, SessionID: got.SessionID, Secret: got.Secret, Tickets: got.Tickets,
		Transports: []string{transport.WebSocket, transport.LongPoll},
		Heartbeat:  2000, MinHeartbeat: 500, Hold: 3000, Grace: 4000, AckDelay: 150,
		MinTimeout: 250, MaxTimeout: 7000, MaxMessage: 1000, MaxBatch: 6*1000 + 64,
		WindowMessages: 50, WindowBytes: 5000,
	}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("negotiate response\n got %+v\nwant %+v", *got, want)
	}
	if len(got.Tickets) != 2 || got.Tickets[0] == got.Tickets[1] || got.Tickets[0] == "" {
		t.Errorf("tickets = %q, want two distinct tickets", got.Tickets)
	}
	if got.Secret == got.SessionID || len(got.Secret) < 16 {
		t.Errorf("secret %q is not a credential apart from sid %q", got.Secret, got.SessionID)
	}
}

func TestNegotiateTransports(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want []string // nil: 400 bad_request
	}{
		{"no body", "", []string{"websocket", "longpoll"}},
		{"empty list", `{"transports":[]}`, []string{"websocket", "longpoll"}},
		{"one in common", `{"transports":["longpoll"]}`, []string{"longpoll"}},
		{"server's order wins", `{"transports":["longpoll","sse","websocket"]}`, []string{"websocket", "longpoll"}},
		{"none in common", `{"transports":["sse","streaming"]}`, nil},
		{"unknown only", `{"transports":["carrier-pigeon"]}`, nil},
	}
	l := startLive(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := l.do(t, http.MethodPost, prefix+"/negotiate?v=1", nil, tc.body)
			if tc.want == nil {
				wantError(t, resp, body, http.StatusBadRequest, transport.CodeBadRequest)
				return
			}
			n, err := transport.ParseNegotiateResponse(body)
			if resp.StatusCode != http.StatusOK || err != nil {
				t.Fatalf("status %s, %v; body %s", resp.Status, err, body)
			}
			if !slices.Equal(n.Transports, tc.want) {
				t.Errorf("transports = %q, want %q", n.Transports, tc.want)
			}
		})
	}
}

func TestNegotiateVersion(t *testing.T) {
	t.Parallel()
	l := startLive(t, nil)
	for _, query := range []string{"", "?v=2", "?v=0", "?v=01", "?v=1.0"} {
		t.Run("query "+query, func(t *testing.T) {
			resp, body := l.do(t, http.MethodPost, prefix+"/negotiate"+query, nil, "")
			e := wantError(t, resp, body, http.StatusBadRequest, transport.CodeUnsupportedVersion)
			if !slices.Equal(e.Supported, []int{1}) {
				t.Errorf("supported = %v, want [1]", e.Supported)
			}
		})
	}
	if n := l.h.Sessions(); n != 0 {
		t.Errorf("refused negotiates made %d sessions", n)
	}
}

func TestNegotiateAuthorize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		err    error
		status int
		code   string
		msg    string
	}{
		{"admitted", nil, http.StatusOK, "", ""},
		{"AuthError 401", &session.AuthError{Status: 401, Message: "log in first"}, 401, transport.CodeUnauthorized, "log in first"},
		{"AuthError 403", &session.AuthError{Status: 403, Message: "not yours"}, 403, transport.CodeForbidden, "not yours"},
		{"AuthError other status", &session.AuthError{Status: 500, Message: "nope"}, 403, transport.CodeForbidden, "nope"},
		{"wrapped AuthError", fmt.Errorf("checking token: %w", &session.AuthError{Status: 401, Message: "expired"}),
			401, transport.CodeUnauthorized, "expired"},
		// A plain error may hold internals: the client learns only "forbidden".
		{"plain error", errors.New("db password rejected"), 403, transport.CodeForbidden, "forbidden"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := startLive(t, &session.Options{Authorize: func(r *http.Request) (any, error) {
				if tc.err != nil {
					return nil, tc.err
				}
				return "user:" + strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), nil
			}})
			hdr := http.Header{"Authorization": {"Bearer 42"}, "Cookie": {"pref=dark"}}
			resp, body := l.do(t, http.MethodPost, prefix+"/negotiate?v=1", hdr, "")
			if tc.status != http.StatusOK {
				e := wantError(t, resp, body, tc.status, tc.code)
				if e.Message != tc.msg {
					t.Errorf("message = %q, want %q", e.Message, tc.msg)
				}
				if n := l.h.Sessions(); n != 0 {
					t.Errorf("a refused negotiate made %d sessions", n)
				}
				return
			}
			n, err := transport.ParseNegotiateResponse(body)
			if resp.StatusCode != http.StatusOK || err != nil {
				t.Fatalf("status %s, %v; body %s", resp.Status, err, body)
			}
			info := l.session(t, n).Request()
			if info.Auth != "user:42" {
				t.Errorf("Request().Auth = %v, want user:42", info.Auth)
			}
			// Credentials stay out of RequestInfo unless asked for:
			// Authorize saw them, and kept what Serve needs in its value.
			if got := info.Header.Get("Authorization"); got != "" {
				t.Errorf("Request().Header Authorization = %q, want it left out by default", got)
			}
			if len(info.Cookies) != 1 || info.Cookies[0].Name != "pref" || info.Cookies[0].Value != "dark" {
				t.Errorf("Request().Cookies = %v, want pref=dark", info.Cookies)
			}
		})
	}
}

func TestNegotiateRedirect(t *testing.T) {
	t.Parallel()
	l := startLive(t, &session.Options{Redirect: func(r *http.Request) (string, string) {
		if r.Header.Get("X-Region") == "eu" {
			return "https://eu.example/comet", "tok-eu"
		}
		return "", ""
	}})

	resp, body := l.do(t, http.MethodPost, prefix+"/negotiate?v=1", http.Header{"X-Region": {"eu"}}, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %s; body %s", resp.Status, body)
	}
	var fields map[string]any
	if err := json.Unmarshal(body, &fields); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"v": 1.0, "url": "https://eu.example/comet", "token": "tok-eu"}
	if !reflect.DeepEqual(fields, want) {
		t.Errorf("redirect = %s, want only v, url and token", body)
	}
	if n, err := transport.ParseNegotiateResponse(body); err != nil || n.URL != "https://eu.example/comet" {
		t.Errorf("ParseNegotiateResponse = %+v, %v", n, err)
	}
	if n := l.h.Sessions(); n != 0 {
		t.Errorf("a redirect made %d sessions", n)
	}

	// Requests the hook does not redirect negotiate as usual.
	if n := l.negotiate(t); n.URL != "" {
		t.Errorf("undirected negotiate redirected to %q", n.URL)
	}
}

func TestNegotiateRefusedUnderLoad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    session.Options
		prepare func(t *testing.T, l *live) // brings the server to the refusing state
		status  int
		code    string
		retryLo int
		retryHi int
	}{
		{
			// A token every 100s, so no refill can happen within the test.
			name: "rate limited", opts: session.Options{NegotiateRate: 0.01, NegotiateBurst: 2},
			prepare: func(t *testing.T, l *live) { l.negotiate(t); l.negotiate(t) },
			status:  http.StatusTooManyRequests, code: transport.CodeRateLimited, retryLo: 1, retryHi: 100,
		},
		{
			name: "session cap", opts: session.Options{MaxSessions: 1},
			prepare: func(t *testing.T, l *live) { l.negotiate(t) },
			status:  http.StatusServiceUnavailable, code: transport.CodeOverloaded, retryLo: 1, retryHi: 60,
		},
		{
			name: "shutting down", opts: session.Options{ShutdownRetry: 3 * time.Second},
			prepare: func(t *testing.T, l *live) {
				ctx, cancel := context.WithTimeout(t.Context(), wait)
				defer cancel()
				if err := l.h.Shutdown(ctx); err != nil {
					t.Fatalf("Shutdown: %v", err)
				}
			},
			status: http.StatusServiceUnavailable, code: transport.CodeShuttingDown, retryLo: 1, retryHi: 3,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := startLive(t, &tc.opts)
			tc.prepare(t, l)
			resp, body := l.do(t, http.MethodPost, prefix+"/negotiate?v=1", nil, "")
			wantError(t, resp, body, tc.status, tc.code)
			wantRetryAfter(t, resp.Header, tc.retryLo, tc.retryHi)
		})
	}
}

func TestNegotiateBadBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
	}{
		{"not JSON", `{"transports":`},
		{"wrong type", `{"transports":"websocket"}`},
		{"above 4 KiB", `{"transports":["websocket"]}` + strings.Repeat(" ", 5<<10)},
	}
	l := startLive(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := l.do(t, http.MethodPost, prefix+"/negotiate?v=1", nil, tc.body)
			wantError(t, resp, body, http.StatusBadRequest, transport.CodeBadRequest)
		})
	}
	if n := l.h.Sessions(); n != 0 {
		t.Errorf("refused negotiates made %d sessions", n)
	}
}

func TestUnknownPathAndMethod(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method, path string
		status       int
		code         string
	}{
		{http.MethodGet, "/elsewhere", http.StatusNotFound, transport.CodeNotFound},
		{http.MethodGet, prefix, http.StatusNotFound, transport.CodeNotFound},
		{http.MethodGet, prefix + "/longpoll/extra?v=1", http.StatusNotFound, transport.CodeNotFound},
		{http.MethodGet, prefix + "/sse?v=1", http.StatusNotFound, transport.CodeTransportDisabled},
		{http.MethodGet, prefix + "/carrier-pigeon?v=1", http.StatusNotFound, transport.CodeTransportDisabled},
		{http.MethodDelete, prefix + "/negotiate?v=1", http.StatusMethodNotAllowed, transport.CodeMethodNotAllowed},
		{http.MethodGet, prefix + "/negotiate?v=1", http.StatusMethodNotAllowed, transport.CodeMethodNotAllowed},
		{http.MethodGet, prefix + "/send?v=1", http.StatusMethodNotAllowed, transport.CodeMethodNotAllowed},
		{http.MethodPut, prefix + "/send?v=1", http.StatusMethodNotAllowed, transport.CodeMethodNotAllowed},
		{http.MethodPost, prefix + "/longpoll?v=1", http.StatusMethodNotAllowed, transport.CodeMethodNotAllowed},
	}
	l := startLive(t, nil)
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			resp, body := l.do(t, tc.method, tc.path, nil, "")
			wantError(t, resp, body, tc.status, tc.code)
		})
	}
}

// TestShimRoutes: the handler serves the browser shim, the TCP relay's
// helper and their TypeScript declarations under its prefix, as js.Handler
// does, ETag validation
// included, before any transport can take their names; other methods are
// the handler's own 405.
func TestShimRoutes(t *testing.T) {
	t.Parallel()
	l := startLive(t, nil)
	for _, tc := range []struct{ name, ctype string }{
		{"comet.js", "application/javascript; charset=utf-8"},
		{"comet.min.js", "application/javascript; charset=utf-8"},
		{"comet.d.ts", "text/plain; charset=utf-8"},
		{"comet-tcp.js", "application/javascript; charset=utf-8"},
		{"comet-tcp.min.js", "application/javascript; charset=utf-8"},
		{"comet-tcp.d.ts", "text/plain; charset=utf-8"},
		{"comet-dom.js", "application/javascript; charset=utf-8"},
		{"comet-dom.min.js", "application/javascript; charset=utf-8"},
		{"comet-topics.js", "application/javascript; charset=utf-8"},
		{"comet-topics.min.js", "application/javascript; charset=utf-8"},
		{"comet-share.js", "application/javascript; charset=utf-8"},
		{"comet-share.min.js", "application/javascript; charset=utf-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, etag, ok := js.File(tc.name)
			if !ok {
				t.Fatalf("js.File(%q): not embedded", tc.name)
			}
			target := prefix + "/" + tc.name
			resp, body := l.do(t, http.MethodGet, target, nil, "")
			if resp.StatusCode != http.StatusOK || string(body) != string(data) {
				t.Fatalf("GET %s: %s, %d bytes; want 200 and the %d bytes of js.File", target, resp.Status, len(body), len(data))
			}
			if got := resp.Header.Get("Content-Type"); got != tc.ctype {
				t.Errorf("Content-Type = %q, want %q", got, tc.ctype)
			}
			if got := resp.Header.Get("ETag"); got != etag {
				t.Errorf("ETag = %q, want %q", got, etag)
			}
			resp, body = l.do(t, http.MethodGet, target, http.Header{"If-None-Match": {etag}}, "")
			if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
				t.Errorf("If-None-Match %s: %s with %d bytes, want 304 and none", etag, resp.Status, len(body))
			}
			resp, body = l.do(t, http.MethodHead, target, nil, "")
			if resp.StatusCode != http.StatusOK || len(body) != 0 || resp.Header.Get("ETag") != etag {
				t.Errorf("HEAD: %s, %d bytes, ETag %q", resp.Status, len(body), resp.Header.Get("ETag"))
			}
			resp, body = l.do(t, http.MethodPost, target, nil, "")
			wantError(t, resp, body, http.StatusMethodNotAllowed, transport.CodeMethodNotAllowed)
		})
	}
}

// queryEdit breaks a valid attach query; own is the session it attaches
// to, other another session of the same server.
type queryEdit func(q url.Values, own, other *transport.NegotiateResponse)

func set(key, value string) queryEdit {
	return func(q url.Values, _, _ *transport.NegotiateResponse) { q.Set(key, value) }
}

func del(key string) queryEdit {
	return func(q url.Values, _, _ *transport.NegotiateResponse) { q.Del(key) }
}

func TestAttachRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		edit   queryEdit
		status int
		code   string
	}{
		{"missing v", del("v"), http.StatusBadRequest, transport.CodeUnsupportedVersion},
		{"v=2", set("v", "2"), http.StatusBadRequest, transport.CodeUnsupportedVersion},
		{"missing s", del("s"), http.StatusBadRequest, transport.CodeBadRequest},
		{"missing t", del("t"), http.StatusBadRequest, transport.CodeBadRequest},
		{"missing a", del("a"), http.StatusBadRequest, transport.CodeBadRequest},
		{"garbled a", set("a", "one"), http.StatusBadRequest, transport.CodeBadRequest},
		{"a above 2^53-1", set("a", "9007199254740992"), http.StatusBadRequest, transport.CodeBadRequest},
		{"negative ack", set("ack", "-1"), http.StatusBadRequest, transport.CodeBadRequest},
		{"d neither 0 nor 1", set("d", "yes"), http.StatusBadRequest, transport.CodeBadRequest},
		{"why above 64 bytes", set("why", strings.Repeat("w", 65)), http.StatusBadRequest, transport.CodeBadRequest},
		{"unknown session", set("s", unknownSID), http.StatusNotFound, transport.CodeSessionNotFound},
		{"unknown ticket", set("t", "q3VfE8m0Qx2wJb1kR9sT4A"), http.StatusForbidden, transport.CodeBadTicket},
		{"ticket of another session", func(q url.Values, _, other *transport.NegotiateResponse) {
			q.Set("t", other.Tickets[0])
		}, http.StatusForbidden, transport.CodeBadTicket},
		{"secret as ticket", func(q url.Values, own, _ *transport.NegotiateResponse) {
			q.Set("t", own.Secret)
		}, http.StatusForbidden, transport.CodeBadTicket},
	}
	for _, name := range []string{transport.WebSocket, transport.LongPoll} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			l := startLive(t, nil)
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					n, other := l.negotiate(t), l.negotiate(t)
					q := url.Values{}
					transport.AttachParams{Session: n.SessionID, Ticket: n.Tickets[0], Attempt: 1, Deliver: true}.Encode(q)
					tc.edit(q, n, other)
					q.Set("z", "1")
					resp, body := l.do(t, http.MethodGet, prefix+"/"+name+"?"+q.Encode(), nil, "")
					wantError(t, resp, body, tc.status, tc.code)
				})
			}
		})
	}
}

func TestAttachTicketSingleUse(t *testing.T) {
	t.Parallel()
	l := startLive(t, nil)
	n := l.negotiate(t)
	p := transport.AttachParams{Session: n.SessionID, Ticket: n.Tickets[0], Attempt: 1}

	// A probe poll (d=0) is answered with its open frame at once.
	target := attachTarget(transport.LongPoll, p)
	resp, body := l.do(t, http.MethodGet, target, nil, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("first poll: %s %s", resp.Status, body)
	}
	wantNoStore(t, resp.Header)
	open := decode(t, body)[0]
	if open.Type != transport.TypeOpen || open.Token == "" {
		t.Fatalf("first poll began with %+v, want an open frame with a ticket", open)
	}

	// A proxy's retried GET, or a URL replayed from a log, is refused.
	resp, body = l.do(t, http.MethodGet, target, nil, "")
	wantError(t, resp, body, http.StatusForbidden, transport.CodeBadTicket)

	// The open frame's ticket is good for one WebSocket, and only one.
	p.Ticket, p.Attempt, p.Deliver = open.Token, 2, true
	_, resp, err := l.dial(t, p, nil)
	if err != nil {
		t.Fatalf("dial with the open frame's ticket: %v", err)
	}
	wantNoStore(t, resp.Header)
	p.Attempt = 3
	if _, resp, err = l.dial(t, p, nil); err == nil {
		t.Fatal("a second WebSocket with the same ticket was upgraded")
	}
	body, _ = io.ReadAll(resp.Body)
	wantError(t, resp, body, http.StatusForbidden, transport.CodeBadTicket)

	// The negotiate's second ticket is still good: refusals consumed nothing.
	p = transport.AttachParams{Session: n.SessionID, Ticket: n.Tickets[1], Attempt: 4}
	resp, body = l.do(t, http.MethodGet, attachTarget(transport.LongPoll, p), nil, "")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("poll with the second ticket: %s %s", resp.Status, body)
	}
}

func TestAttachTransportDisabled(t *testing.T) {
	t.Parallel()
	l := startLive(t, &session.Options{Transports: []string{transport.LongPoll}})
	n := l.negotiate(t)
	if !slices.Equal(n.Transports, []string{transport.LongPoll}) {
		t.Errorf("transports = %q, want only longpoll", n.Transports)
	}
	for _, name := range []string{transport.WebSocket, transport.SSE, transport.Streaming} {
		t.Run(name, func(t *testing.T) {
			p := transport.AttachParams{Session: n.SessionID, Ticket: n.Tickets[0], Attempt: 1, Deliver: true}
			resp, body := l.do(t, http.MethodGet, attachTarget(name, p), nil, "")
			wantError(t, resp, body, http.StatusNotFound, transport.CodeTransportDisabled)
		})
	}
}

func TestUpstreamPOSTAck(t *testing.T) {
	t.Parallel()
	l := startLive(t, nil)
	n := l.negotiate(t)
	s := l.session(t, n)

	resp, body := l.post(t, n.SessionID, batch(key(n.Secret, 0, false), text(1, "one"), text(2, "two")))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %s; body %s", resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	wantNoStore(t, resp.Header)
	if got := decode(t, body); len(got) != 1 || got[0].Type != transport.TypeAck || got[0].Ack != 2 {
		t.Errorf("response = %q, want [\"a\",2]", body)
	}

	// A key frame alone is an ack; wantTicket adds a ticket.
	resp, body = l.post(t, n.SessionID, batch(key(n.Secret, 0, true)))
	got := decode(t, body)
	if resp.StatusCode != http.StatusOK || len(got) != 2 || got[0].Ack != 2 || got[1].Type != transport.TypeTicket {
		t.Fatalf("key-only POST: %s %q, want [\"a\",2] and a ticket", resp.Status, body)
	}
	resp, body = l.do(t, http.MethodGet, attachTarget(transport.LongPoll, transport.AttachParams{
		Session: n.SessionID, Ticket: got[1].Token, Attempt: 1}), nil, "")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("poll with the POST's ticket: %s %s", resp.Status, body)
	}

	wantRecv(t, s, "one", "two")
}

// wantRecv checks the next messages Recv returns.
func wantRecv(t *testing.T, s *session.Session, want ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	for _, w := range want {
		typ, p, err := s.Recv(ctx)
		if err != nil || typ != transport.Text || string(p) != w {
			t.Fatalf("Recv = %v %q %v, want text %q", typ, p, err, w)
		}
	}
}

func TestUpstreamPOSTBadSecret(t *testing.T) {
	t.Parallel()
	l := startLive(t, nil)
	n := l.negotiate(t)
	s := l.session(t, n)
	tests := []struct {
		name string
		body string
	}{
		{"wrong secret", batch(key("not-the-secret", 0, true), text(1, "forged"))},
		{"secret of a prefix", batch(key(n.Secret[:len(n.Secret)-1], 0, true), text(1, "forged"))},
		{"no key frame", batch(text(1, "forged"))},
		{"key frame second", batch(transport.Frame{Type: transport.TypeHeartbeat}, key(n.Secret, 0, true), text(1, "forged"))},
		{"garbled key frame", `["k","` + n.Secret + `",0` + "\n" + batch(text(1, "forged"))},
		{"empty body", ""},
		// Without proof of possession even a malformed rest is nobody's
		// business: it must not close the session.
		{"wrong secret, malformed rest", batch(key("not-the-secret", 0, false)) + `["m",1,` + "\n"},
		{"wrong secret, gap", batch(key("not-the-secret", 0, false), text(5, "forged"))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := l.post(t, n.SessionID, tc.body)
			wantError(t, resp, body, http.StatusForbidden, transport.CodeBadSecret)
		})
	}

	// The session is untouched: message 1 is still to come, and it is open.
	resp, body := l.post(t, n.SessionID, batch(key(n.Secret, 0, false), text(1, "real")))
	if got := decode(t, body); resp.StatusCode != http.StatusOK || len(got) != 1 || got[0].Ack != 1 {
		t.Fatalf("good POST after refusals: %s %q, want [\"a\",1]", resp.Status, body)
	}
	wantRecv(t, s, "real")
}

func TestUpstreamPOSTTooLarge(t *testing.T) {
	t.Parallel()
	l := startLive(t, &session.Options{MaxMessage: 100, MaxBatch: 1000})
	n := l.negotiate(t)
	s := l.session(t, n)

	big := batch(key(n.Secret, 0, false), text(1, strings.Repeat("x", 99)))
	big += strings.Repeat(" \n", (1001-len(big))/2+1) // padding lines, valid but too many
	resp, body := l.post(t, n.SessionID, big)
	wantError(t, resp, body, http.StatusRequestEntityTooLarge, transport.CodeTooLarge)

	resp, body = l.post(t, n.SessionID, batch(key(n.Secret, 0, false), text(1, "fits")))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST within maxBatch: %s %s", resp.Status, body)
	}
	wantRecv(t, s, "fits")
}

// pollClose polls the session as a delivering long-poll and returns the
// close frame it must hold.
func (l *live) pollClose(t *testing.T, n *transport.NegotiateResponse) transport.Frame {
	t.Helper()
	resp, body := l.do(t, http.MethodGet, attachTarget(transport.LongPoll, transport.AttachParams{
		Session: n.SessionID, Ticket: n.Tickets[0], Attempt: 1, Deliver: true}), nil, "")
	frames := decode(t, body)
	if resp.StatusCode != http.StatusOK || len(frames) != 2 || frames[0].Type != transport.TypeOpen ||
		frames[1].Type != transport.TypeClose {
		t.Fatalf("poll: %s %q, want an open and a close frame", resp.Status, body)
	}
	return frames[1]
}

func TestUpstreamPOSTViolation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		ack   uint64 // the key frame's
		rest  string
		code  string // "" when the protocol names none
		close transport.CloseCode
	}{
		{"malformed frame", 0, batch(text(1, "ok")) + `["m",2,"unterminated` + "\n", transport.CodeMalformed, transport.CloseProtocolError},
		{"unknown frame type", 0, `["z",1]`, transport.CodeMalformed, transport.CloseProtocolError},
		{"open frame upstream", 0, `["o",1,0,"t",1000]`, transport.CodeMalformed, transport.CloseProtocolError},
		{"sequence gap", 0, batch(text(1, "ok"), text(3, "skipped 2")), transport.CodeMalformed, transport.CloseProtocolError},
		{"ack of a message never sent", 5, "", transport.CodeMalformed, transport.CloseProtocolError},
		{"invalid UTF-8", 0, "[\"m\",1,\"caf\xe9\"]\n", transport.CodeInvalidPayload, transport.CloseInvalidPayload},
		{"unpaired surrogate", 0, `["m",1,"\ud800"]`, transport.CodeInvalidPayload, transport.CloseInvalidPayload},
		{"message above maxMessage", 0, batch(text(1, strings.Repeat("x", 101))), "", transport.CloseMessageTooBig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := startLive(t, &session.Options{MaxMessage: 100})
			n := l.negotiate(t)
			resp, body := l.post(t, n.SessionID, batch(key(n.Secret, tc.ack, false))+tc.rest)
			wantError(t, resp, body, http.StatusBadRequest, tc.code)
			if c := l.pollClose(t, n); transport.CloseCode(c.Code) != tc.close || c.Seq != 1 {
				t.Errorf("close frame %+v, want seq 1 code %d", c, tc.close)
			}
		})
	}
}

func TestUpstreamPOSTDuplicate(t *testing.T) {
	t.Parallel()
	l := startLive(t, nil)
	n := l.negotiate(t)
	s := l.session(t, n)
	for i, post := range []struct {
		body string
		ack  uint64
	}{
		{batch(key(n.Secret, 0, false), text(1, "a"), text(2, "b")), 2},
		{batch(key(n.Secret, 0, false), text(1, "a"), text(2, "b")), 2}, // a retried POST
		{batch(key(n.Secret, 0, false), text(2, "b"), text(3, "c")), 3}, // an overlapping resend
	} {
		resp, got := l.post(t, n.SessionID, post.body)
		if f := decode(t, got); resp.StatusCode != http.StatusOK || len(f) != 1 || f[0].Ack != post.ack {
			t.Fatalf("POST %d: %s %q, want [\"a\",%d]", i+1, resp.Status, got, post.ack)
		}
	}
	wantRecv(t, s, "a", "b", "c")
}

func TestUpstreamPOSTInboundFull(t *testing.T) {
	t.Parallel()
	l := startLive(t, &session.Options{InboundMessages: 2})
	n := l.negotiate(t)
	s := l.session(t, n)
	all := batch(key(n.Secret, 0, false), text(1, "m1"), text(2, "m2"), text(3, "m3"), text(4, "m4"))
	postAck := func(want uint64) {
		t.Helper()
		resp, body := l.post(t, n.SessionID, all)
		if f := decode(t, body); resp.StatusCode != http.StatusOK || len(f) != 1 || f[0].Ack != want {
			t.Fatalf("POST: %s %q, want [\"a\",%d]", resp.Status, body, want)
		}
	}

	// The POST is answered at once with what fit; nothing waits for Recv.
	postAck(2)
	postAck(2)
	wantRecv(t, s, "m1", "m2")
	postAck(4)
	wantRecv(t, s, "m3", "m4")
}

func TestUpstreamPOSTRefused(t *testing.T) {
	t.Parallel()
	l := startLive(t, nil)
	n := l.negotiate(t)
	body := batch(key(n.Secret, 0, false))

	resp, got := l.post(t, unknownSID, body)
	wantError(t, resp, got, http.StatusNotFound, transport.CodeSessionNotFound)

	resp, got = l.do(t, http.MethodPost, prefix+"/send?v=2&s="+n.SessionID, textPlain, body)
	wantError(t, resp, got, http.StatusBadRequest, transport.CodeUnsupportedVersion)
}
