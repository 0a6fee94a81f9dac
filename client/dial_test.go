package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet/transport"
)

// negotiateStub answers negotiates with f, on loopback.
func negotiateStub(t *testing.T, f http.HandlerFunc) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(f)
	t.Cleanup(ts.Close)
	return ts
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func TestNegotiateRedirects(t *testing.T) {
	var final *httptest.Server
	final = negotiateStub(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/b/negotiate" || r.Header.Get(redirectTokenHeader) != "tok" {
			writeJSON(w, http.StatusBadRequest, transport.ErrorBody{Code: "bad_request", Message: r.URL.Path})
			return
		}
		writeJSON(w, http.StatusOK, testNegotiate())
	})
	first := negotiateStub(t, func(w http.ResponseWriter, r *http.Request) {
		var req transport.NegotiateRequest
		json.NewDecoder(r.Body).Decode(&req)
		if r.URL.Query().Get("v") != "1" || r.Header.Get("X-Token") != "secret" || len(req.Transports) != 1 {
			writeJSON(w, http.StatusBadRequest, transport.ErrorBody{Code: "bad_request"})
			return
		}
		writeJSON(w, http.StatusOK, transport.NegotiateResponse{Version: 1, URL: final.URL + "/b", Token: "tok"})
	})
	base, _ := parseMountURL(first.URL + "/a/")
	neg, got, _, err := negotiate(context.Background(), http.DefaultClient, base, http.Header{"X-Token": {"secret"}},
		transport.NegotiateRequest{Transports: []string{transport.LongPoll}})
	if err != nil {
		t.Fatalf("negotiate: %v", err)
	}
	if got.String() != final.URL+"/b" || neg.SessionID == "" {
		t.Fatalf("negotiate ended at %v with %+v, want %s/b", got, neg, final.URL)
	}
}

// TestNegotiateRedirectDowngrade: a redirect from https to http is
// refused before anything is sent to it.
func TestNegotiateRedirectDowngrade(t *testing.T) {
	rt := &scripted{script: []scriptedResponse{{status: http.StatusOK,
		body: []byte(`{"v":1,"url":"http://plain.example/comet","token":"t"}`)}}}
	base, _ := parseMountURL("https://secure.example/comet")
	_, _, _, err := negotiate(context.Background(), &http.Client{Transport: rt}, base,
		http.Header{"Authorization": {"Bearer secret"}}, transport.NegotiateRequest{})
	if err == nil || !strings.Contains(err.Error(), "from https") {
		t.Fatalf("negotiate = %v, want the downgrade refused", err)
	}
	if len(rt.requests) != 1 {
		t.Fatalf("%d requests, want the first only", len(rt.requests))
	}
}

func TestParseMountURL(t *testing.T) {
	for _, bad := range []string{"http://:/comet", "http:///comet", "ftp://h/comet", "/comet"} {
		if u, err := parseMountURL(bad); err == nil {
			t.Errorf("parseMountURL(%q) = %v, want an error", bad, u)
		}
	}
	if u, err := parseMountURL("https://h.example:8443/comet/?x#y"); err != nil || u.String() != "https://h.example:8443/comet" {
		t.Errorf("parseMountURL = %v, %v", u, err)
	}
}

func TestNegotiateRedirectLimit(t *testing.T) {
	var hops atomic.Int32
	var ts *httptest.Server
	ts = negotiateStub(t, func(w http.ResponseWriter, r *http.Request) {
		hops.Add(1)
		writeJSON(w, http.StatusOK, transport.NegotiateResponse{Version: 1, URL: ts.URL + "/again"})
	})
	base, _ := parseMountURL(ts.URL)
	_, _, _, err := negotiate(context.Background(), http.DefaultClient, base, nil, transport.NegotiateRequest{})
	if err == nil || hops.Load() != maxRedirects+1 {
		t.Fatalf("negotiate = %v after %d requests, want an error after %d", err, hops.Load(), maxRedirects+1)
	}
}

func TestNegotiateRefused(t *testing.T) {
	for _, tc := range []struct {
		status     int
		code       string
		retryAfter string
		wantRetry  int
	}{
		{http.StatusUnauthorized, transport.CodeUnauthorized, "", 0},
		{http.StatusForbidden, transport.CodeOriginRefused, "", 0},
		{http.StatusTooManyRequests, transport.CodeRateLimited, "3", 3},
		{http.StatusServiceUnavailable, transport.CodeOverloaded, "7", 7},
	} {
		t.Run(tc.code, func(t *testing.T) {
			ts := negotiateStub(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				writeJSON(w, tc.status, transport.ErrorBody{Code: tc.code, Message: "no"})
			})
			_, err := Dial(context.Background(), ts.URL+"/comet", nil)
			var he *transport.HTTPError
			if !errors.As(err, &he) || he.Status != tc.status || he.Body.Code != tc.code || he.RetryAfter != tc.wantRetry {
				t.Fatalf("Dial = %v (%+v), want HTTPError %d %s retry %d", err, he, tc.status, tc.code, tc.wantRetry)
			}
		})
	}
}

func TestDialArguments(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		url  string
		opts *Options
	}{
		{"websocket URL", "ws://127.0.0.1:1/comet", nil},
		{"relative URL", "/comet", nil},
		{"transport this client lacks", "http://127.0.0.1:1/comet", &Options{Transports: []string{transport.SSE}}},
		{"no transports", "http://127.0.0.1:1/comet", &Options{Transports: []string{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Dial(ctx, tc.url, tc.opts); err == nil {
				t.Fatal("Dial succeeded")
			}
		})
	}
}

func TestOptionsCopied(t *testing.T) {
	o := &Options{Transports: []string{transport.LongPoll}, Header: http.Header{"A": {"1"}}}
	c, err := o.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	o.Transports[0], o.Header["A"][0] = "changed", "changed"
	if c.Transports[0] != transport.LongPoll || c.Header.Get("A") != "1" {
		t.Fatal("Options are not copied before use")
	}
	if c.WindowMessages != defaultWindowMessages || c.WindowBytes != defaultWindowBytes ||
		c.ReceiveBuffer != defaultReceiveBuffer || c.Logger == nil || c.Proxy == nil || c.NetDialContext == nil {
		t.Fatalf("defaults not applied: %+v", c)
	}
}

// attachWS attaches a test Conn by WebSocket to base with a short attach
// timeout and returns the attach error.
func attachWS(t *testing.T, base string) *attachError {
	t.Helper()
	c := newTestConn(t, base, nil)
	c.lim.attachTimeout = 200 * time.Millisecond
	a, err := c.attachWebSocket("", c.lim.attachTimeout)
	if err == nil {
		a.(*wsAttachment).ws.Close()
		t.Fatal("attach succeeded")
	}
	var ae *attachError
	if !errors.As(err, &ae) {
		t.Fatalf("attach error %v is no attachError", err)
	}
	return ae
}

func TestWebSocketRefused(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusServiceUnavailable, transport.ErrorBody{Code: transport.CodeOverloaded})
	}))
	defer ts.Close()
	ae := attachWS(t, ts.URL+"/comet")
	if ae.why != "ws_refused" || refusal(ae, transport.CodeOverloaded) == nil {
		t.Fatalf("attach = %v, want ws_refused with the HTTPError", ae)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	if ae := attachWS(t, "http://"+addr+"/comet"); ae.why != "ws_refused" {
		t.Fatalf("attach to a closed port = %v, want ws_refused", ae)
	}
}

func TestWebSocketHung(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		// Accept and never answer, like a proxy that swallows upgrades.
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		buf := make([]byte, 1024)
		for {
			if _, err := conn.Read(buf); err != nil {
				return
			}
		}
	})
	defer wg.Wait()
	defer l.Close()
	if ae := attachWS(t, "http://"+l.Addr().String()+"/comet"); ae.why != "ws_hung" {
		t.Fatalf("attach = %v, want ws_hung", ae)
	}
}

func TestWebSocketSilent(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first string // the first message, none if empty
		want  error
	}{
		{"no open frame", "", nil},
		{"not an open frame", `["h"]`, errNoOpen},
		{"an abandoned attempt", `["o",0,0,"t",25000]`, errStale},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := websocket.Upgrader{}
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ws, err := up.Upgrade(w, r, nil)
				if err != nil {
					return
				}
				defer ws.Close()
				if tc.first != "" {
					ws.WriteMessage(websocket.TextMessage, []byte(tc.first))
				}
				for {
					if _, _, err := ws.ReadMessage(); err != nil {
						return
					}
				}
			}))
			defer ts.Close()
			ae := attachWS(t, ts.URL+"/comet")
			if ae.why != "ws_silent" || (tc.want != nil && !errors.Is(ae, tc.want)) {
				t.Fatalf("attach = %v, want ws_silent (%v)", ae, tc.want)
			}
		})
	}
}

func TestWebSocketURL(t *testing.T) {
	for base, scheme := range map[string]string{"http://h/comet": "ws", "https://h:8443/x/comet": "wss"} {
		c := newTestConn(t, base, nil)
		u, err := url.Parse(c.wsURL(transport.AttachParams{Session: "s", Ticket: "t", Attempt: 3, Ack: 2, Deliver: true}))
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		if u.Scheme != scheme || !strings.HasSuffix(u.Path, "/comet/websocket") || q.Get("z") == "" ||
			q.Get("a") != "3" || q.Get("ack") != "2" || q.Get("d") != "1" || q.Get("v") != "1" {
			t.Errorf("wsURL for %s = %s", base, u)
		}
	}
}

// TestNegotiateBody: Options.Target and Options.Protocols travel in the
// negotiate body, each only when set, beside binary (unless
// NoBinaryFrames), replies in POST answers (unless NoPostReplies) and
// noStatus, which this client always asks for; the
// body is the same in a negotiate POST and in the n of a first attach that
// negotiates.
func TestNegotiateBody(t *testing.T) {
	t.Run("post", func(t *testing.T) { testNegotiateBody(t, true) })
	t.Run("attach", func(t *testing.T) { testNegotiateBody(t, false) })
}

func testNegotiateBody(t *testing.T, separate bool) {
	bodies := make(chan string, 4)
	ts := negotiateStub(t, func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		_, err := io.Copy(&b, r.Body)
		if n, ok := r.URL.Query()["n"]; ok {
			if separate || b.Len() > 0 {
				t.Errorf("%s %s negotiates in the attach with a body %q", r.Method, r.URL.Path, b.String())
			}
			b.WriteString(n[0])
		}
		bodies <- b.String()
		if err != nil {
			t.Error(err)
		}
		writeJSON(w, http.StatusForbidden, transport.ErrorBody{Code: transport.CodeForbidden, Message: "stub"})
	})
	for _, tc := range []struct {
		target    string
		protocols []string
		noBinary  bool
		noReplies bool
		noLazy    bool
		want      string
	}{
		{"", nil, true, false, false, `{"transports":["longpoll"],"noStatus":true,"codes":[3008,3009],"positions":true,"replies":true,"lazyAcks":true}`},
		{"", nil, true, true, false, `{"transports":["longpoll"],"noStatus":true,"codes":[3008,3009],"positions":true,"lazyAcks":true}`},
		{"", nil, true, true, true, `{"transports":["longpoll"],"noStatus":true,"codes":[3008,3009],"positions":true}`},
		{"redis.internal:6379", nil, true, false, false,
			`{"transports":["longpoll"],"target":"redis.internal:6379","noStatus":true,"codes":[3008,3009],"positions":true,"replies":true,"lazyAcks":true}`},
		{"redis.internal:6379", nil, false, false, false,
			`{"transports":["longpoll"],"binary":true,"target":"redis.internal:6379","noStatus":true,"codes":[3008,3009],"positions":true,"replies":true,"lazyAcks":true}`},
		{"", []string{"v12.stomp", "v11.stomp"}, true, false, false,
			`{"transports":["longpoll"],"protocols":["v12.stomp","v11.stomp"],"noStatus":true,"codes":[3008,3009],"positions":true,"replies":true,"lazyAcks":true}`},
	} {
		_, err := Dial(t.Context(), ts.URL+"/comet", &Options{Transports: []string{transport.LongPoll}, Target: tc.target,
			Protocols: tc.protocols, NoBinaryFrames: tc.noBinary, NoPostReplies: tc.noReplies, NoLazyAcks: tc.noLazy,
			SeparateNegotiate: separate})
		if err == nil {
			t.Fatal("Dial succeeded against a refusing stub")
		}
		if got := strings.TrimSpace(<-bodies); got != tc.want {
			t.Errorf("target %q, protocols %q: body %s, want %s", tc.target, tc.protocols, got, tc.want)
		}
	}
}
