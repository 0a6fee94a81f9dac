package conformance

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// holdBytes is what the buffering proxy collects before it passes a
// response on, as proxies that buffer do (nginx's proxy_buffering, some
// antivirus boxes): far more than any stream's first frames, and more
// than the whole of a long-poll response in these tests.
const holdBytes = 64 << 10

// bufferingProxy is a reverse proxy on loopback in front of a Comet
// server, misbehaving as proxies do: it refuses WebSocket upgrades (400,
// like a proxy that drops the Upgrade header), and while its switch is on
// it holds every response, headers and body, until it has holdBytes or
// the response ends. Long-polls and POSTs end, and pass; streams do not.
type bufferingProxy struct {
	url       string
	buffering atomic.Bool

	mu       sync.Mutex
	requests []proxied
}

// proxied is one request the proxy passed on, with its response's
// Cache-Control.
type proxied struct {
	method, uri, cacheControl string
}

func newBufferingProxy(t *testing.T, e *env, buffering bool) *bufferingProxy {
	t.Helper()
	target, err := url.Parse(e.url)
	if err != nil {
		t.Fatal(err)
	}
	target.Path = ""
	p := &bufferingProxy{}
	p.buffering.Store(buffering)
	upstream := &http.Transport{}
	rp := &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport: upstream,
		// Pass every write on to the holding writer at once: it decides.
		FlushInterval: -1,
		ModifyResponse: func(resp *http.Response) error {
			p.mu.Lock()
			p.requests = append(p.requests, proxied{resp.Request.Method, resp.Request.URL.RequestURI(),
				resp.Header.Get("Cache-Control")})
			p.mu.Unlock()
			return nil
		},
		// Clients abandon requests on purpose (a stream that timed out).
		ErrorLog: log.New(io.Discard, "", 0),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			http.Error(w, "this proxy does not pass upgrades", http.StatusBadRequest)
			return
		}
		hw := &holdingWriter{w: w, p: p}
		defer hw.release()
		rp.ServeHTTP(hw, r)
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		upstream.CloseIdleConnections()
	})
	p.url = srv.URL + e.prefix
	return p
}

// seen returns the requests proxied so far.
func (p *bufferingProxy) seen() []proxied {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]proxied(nil), p.requests...)
}

// holdingWriter holds a response back while the proxy buffers. It has no
// Unwrap on purpose: nobody behind it can flush past it.
type holdingWriter struct {
	w      http.ResponseWriter
	p      *bufferingProxy
	status int
	sent   bool // the status line went out
	buf    []byte
}

func (h *holdingWriter) Header() http.Header { return h.w.Header() }

func (h *holdingWriter) WriteHeader(status int) {
	if h.status == 0 {
		h.status = status
	}
}

func (h *holdingWriter) Write(p []byte) (int, error) {
	h.WriteHeader(http.StatusOK)
	h.buf = append(h.buf, p...)
	if h.p.buffering.Load() && len(h.buf) < holdBytes {
		return len(p), nil
	}
	return len(p), h.release()
}

// Flush passes what is held on, unless the proxy buffers.
func (h *holdingWriter) Flush() {
	if !h.p.buffering.Load() {
		h.release()
	}
}

// release passes on everything held, and flushes it.
func (h *holdingWriter) release() error {
	if h.status == 0 {
		return nil
	}
	if !h.sent {
		h.sent = true
		h.w.WriteHeader(h.status)
	}
	if len(h.buf) > 0 {
		if _, err := h.w.Write(h.buf); err != nil {
			return err
		}
		h.buf = h.buf[:0]
	}
	return http.NewResponseController(h.w).Flush()
}

// transportChange is one call of Options.OnTransport.
type transportChange struct{ from, to, reason string }

// testBufferingProxyAtConnect puts the client behind a proxy that refuses
// WebSocket and buffers every response: SSE never shows its open frame,
// and the client falls back to long-polling, past XHR streaming, which the
// same proxy would hold back (PROTOCOL.md section 8), saying why at every
// step; then 1,000 messages go each way, exact and in order.
func (su suite) testBufferingProxyAtConnect(t *testing.T) {
	const n = 1000
	serverGot := make(chan error, 1)
	e := su.newEnv(t, "", &session.Options{AckDelay: burstAckDelay, Serve: exchangeSequences(n, serverGot)})
	proxy := newBufferingProxy(t, e, true)
	ctx := testContext(t, 60*time.Second)

	changes := make(chan transportChange, 8)
	start := time.Now()
	c, err := client.Dial(ctx, proxy.url, &client.Options{
		NetDialContext: e.net.dial,
		OnTransport:    func(from, to, reason string) { changes <- transportChange{from, to, reason} },
	})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close(transport.CloseNormal, "test over") })
	t.Logf("fell back to %s in %v", c.Transport(), time.Since(start))
	if got, want := <-changes, (transportChange{transport.SSE, transport.LongPoll, "stream_buffered"}); got != want {
		t.Fatalf("OnTransport%+v, want %+v", got, want)
	}
	if c.Transport() != transport.LongPoll {
		t.Fatalf("transport %q, want longpoll", c.Transport())
	}
	// The reasons the server was told, attach by attach.
	var whys []string
	for _, r := range proxy.seen() {
		if u, _ := url.Parse(r.uri); r.method == http.MethodGet && u.Path != e.prefix+"/longpoll" || u.Query().Get("why") != "" {
			whys = append(whys, strings.TrimPrefix(u.Path, e.prefix+"/")+":"+u.Query().Get("why"))
		}
	}
	if got, want := strings.Join(whys, " "), "sse:ws_refused longpoll:stream_buffered"; got != want {
		t.Fatalf("attaches with their why: %s, want %s", got, want)
	}

	sendErr := make(chan error, 1)
	go func() {
		for i := range n {
			if err := c.Send(ctx, transport.Text, fmt.Appendf(nil, "up %d", i)); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- nil
	}()
	if err := expectSequence(ctx, n, "down", func(ctx context.Context) ([]byte, error) {
		_, p, err := c.Recv(ctx)
		return p, err
	}); err != nil {
		t.Fatalf("client: %v", err)
	}
	if err := <-sendErr; err != nil {
		t.Fatalf("client Send: %v", err)
	}
	select {
	case err := <-serverGot:
		if err != nil {
			t.Fatalf("server: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the server did not get every message")
	}
	select {
	case ch := <-changes:
		t.Fatalf("a later transport change: %+v", ch)
	default:
	}
	t.Logf("%d messages each way over long-polling, %d requests through the proxy", n, len(proxy.seen()))
}

// testBufferingProxyMidSession starts with a proxy that passes streams,
// so the client settles on SSE, then flips it to buffering: the client's
// probes find out, it moves to long-polling and stays there, and every
// message sent before, during and after the change arrives once and in
// order, both ways.
func (su suite) testBufferingProxyMidSession(t *testing.T) {
	var mu sync.Mutex
	var serverGot []string
	e := su.newEnv(t, "", &session.Options{
		// Probes follow the heartbeat interval: a short one keeps the test
		// short. A roomy attach timeout keeps a loaded machine from failing
		// a probe before the switch.
		Heartbeat:        time.Second,
		MinClientTimeout: time.Second,
		Serve: func(s *session.Session) {
			ctx := s.Context()
			for {
				typ, p, err := s.Recv(ctx)
				if err != nil {
					return
				}
				mu.Lock()
				serverGot = append(serverGot, string(p))
				mu.Unlock()
				if s.Send(ctx, typ, p) != nil {
					return
				}
			}
		},
	})
	proxy := newBufferingProxy(t, e, false)
	ctx := testContext(t, 60*time.Second)
	changes := make(chan transportChange, 8)
	c, err := client.Dial(ctx, proxy.url, &client.Options{
		NetDialContext: e.net.dial,
		OnTransport:    func(from, to, reason string) { changes <- transportChange{from, to, reason} },
	})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close(transport.CloseNormal, "test over") })
	if got, want := <-changes, (transportChange{transport.WebSocket, transport.SSE, "ws_refused"}); got != want {
		t.Fatalf("OnTransport%+v, want %+v", got, want)
	}

	msgs := make([]string, 300)
	for i := range msgs {
		msgs[i] = fmt.Sprintf("message %d", i)
	}
	send := func(from, to int) {
		t.Helper()
		for _, m := range msgs[from:to] {
			if err := c.Send(ctx, transport.Text, []byte(m)); err != nil {
				t.Fatalf("Send(%q): %v", m, err)
			}
		}
	}
	recv := func(from, to int) {
		t.Helper()
		for _, want := range msgs[from:to] {
			_, p, err := c.Recv(ctx)
			if err != nil || string(p) != want {
				t.Fatalf("Recv = %q, %v; want %q: lost, duplicated or reordered", p, err, want)
			}
		}
	}

	// Before: over SSE, echoes flow at once.
	send(0, 100)
	recv(0, 100)

	// During: the proxy holds the stream back; messages and echoes are
	// sent into it until the client notices.
	proxy.buffering.Store(true)
	flipped := time.Now()
	send(100, 200)
	var demoted transportChange
	select {
	case demoted = <-changes:
	case <-ctx.Done():
		t.Fatal("the client never left the buffered stream")
	}
	if want := (transportChange{transport.SSE, transport.LongPoll, "stream_buffered"}); demoted != want {
		t.Fatalf("OnTransport%+v, want %+v", demoted, want)
	}
	t.Logf("left the buffered stream %v after the proxy began to buffer", time.Since(flipped))

	// After: over long-polling, which the buffering proxy passes.
	send(200, 250)
	recv(100, 250)

	// Remembered: the proxy behaves again and the connections drop, yet
	// the client resumes on long-polling, not on a stream.
	proxy.buffering.Store(false)
	e.net.cut()
	send(250, 300)
	recv(250, 300)
	if c.Transport() != transport.LongPoll {
		t.Fatalf("transport %q after a drop, want long-polling still", c.Transport())
	}
	select {
	case ch := <-changes:
		t.Fatalf("a later transport change: %+v", ch)
	default:
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(serverGot) != fmt.Sprint(msgs) {
		t.Fatalf("the server received %d messages, not each of %d once and in order", len(serverGot), len(msgs))
	}
}
