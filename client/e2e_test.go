package client_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// testTimeout bounds every end-to-end test; none should come close.
const testTimeout = 20 * time.Second

// runTransports runs f once per transport, each forced, in parallel.
func runTransports(t *testing.T, f func(t *testing.T, name string)) {
	for _, name := range transport.Order() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f(t, name)
		})
	}
}

// testServer is the real Comet handler on a loopback httptest server.
type testServer struct {
	url string
	h   *session.Handler
}

// newServer starts a server with opts (Prefix "/comet", logs to t) behind
// wrap, if not nil, and stops it when t ends.
func newServer(t *testing.T, opts session.Options, wrap func(http.Handler) http.Handler) *testServer {
	t.Helper()
	opts.Prefix = "/comet"
	logs := &testLog{t: t}
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := comet.NewHandler(&opts)
	var handler http.Handler = h
	if wrap != nil {
		handler = wrap(h)
	}
	ts := httptest.NewServer(handler)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// Sessions whose clients left abruptly keep Shutdown waiting for
		// their grace period; that is the server's business, not ours.
		if err := h.Shutdown(ctx); err != nil {
			t.Logf("server shutdown: %v", err)
		}
		ts.Close()
		logs.stop()
	})
	return &testServer{url: ts.URL + "/comet", h: h}
}

// testLog routes logs to t until the test's cleanup stops it: the
// testing package panics on a Logf after the test.
type testLog struct {
	mu      sync.Mutex
	t       *testing.T
	stopped bool
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.t.Logf("%s", p)
	}
	return len(p), nil
}

func (l *testLog) stop() {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
}

// echo is a server application that sends every message back.
func echo(s *session.Session) {
	for {
		typ, p, err := s.Recv(s.Context())
		if err != nil {
			return
		}
		if err := s.Send(s.Context(), typ, p); err != nil {
			return
		}
	}
}

// cutter dials connections for the client and can cut all of them at
// once, or refuse new ones: a network failing under the session.
type cutter struct {
	mu      sync.Mutex
	conns   []net.Conn
	dials   int
	cuts    int // how many times cut has run, to spot a dial it overtook
	refused bool
}

func (c *cutter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c.mu.Lock()
	refused, cuts := c.refused, c.cuts
	c.dials++
	c.mu.Unlock()
	if refused {
		return nil, errors.New("test: network down")
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cuts != cuts {
		// The cut ran while this dial was in flight: the connection must
		// not survive it. net/http dials in the background and pools a
		// connection its request no longer needs, so one that escaped the
		// cut would carry the next long-poll, parked for its whole hold,
		// and keep a "down" session attached.
		conn.Close()
		return nil, errors.New("test: network cut while dialing")
	}
	c.conns = append(c.conns, conn)
	return conn, nil
}

// cut closes every connection dialled so far, and refuses new ones if
// down is set.
func (c *cutter) cut(down bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		conn.Close()
	}
	c.conns = nil
	c.cuts++
	c.refused = down
}

func (c *cutter) dialCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dials
}

// dial opens a client forced to one transport, closed abruptly when t
// ends if the test has not closed it.
func dial(t *testing.T, ctx context.Context, url, name string, opts *client.Options) *client.Conn {
	t.Helper()
	if opts == nil {
		opts = &client.Options{}
	}
	opts.Transports = []string{name}
	c, err := client.Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close(transport.CloseNormal, "") })
	if got := c.Transport(); got != name {
		t.Fatalf("Transport() = %q, want %q", got, name)
	}
	return c
}

// exchange sends msgs[from:to] and checks that their echoes come back in
// order, exactly once.
func exchange(t *testing.T, ctx context.Context, c *client.Conn, msgs []string, from, to int) {
	t.Helper()
	for _, m := range msgs[from:to] {
		if err := c.Send(ctx, transport.Text, []byte(m)); err != nil {
			t.Fatalf("Send(%q): %v", m, err)
		}
	}
	expectEchoes(t, ctx, c, msgs[from:to])
}

func expectEchoes(t *testing.T, ctx context.Context, c *client.Conn, want []string) {
	t.Helper()
	for _, w := range want {
		typ, p, err := c.Recv(ctx)
		if err != nil {
			t.Fatalf("Recv, want %q: %v", w, err)
		}
		if typ != transport.Text || string(p) != w {
			t.Fatalf("Recv = %v %q, want text %q", typ, p, w)
		}
	}
}

func numbered(n int) []string {
	msgs := make([]string, n)
	for i := range msgs {
		msgs[i] = fmt.Sprintf("message %d", i)
	}
	return msgs
}

func TestEcho(t *testing.T) { runTransports(t, testEcho) }

func testEcho(t *testing.T, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	srv := newServer(t, session.Options{Serve: echo}, nil)
	c := dial(t, ctx, srv.url, name, nil)

	cases := []struct {
		typ transport.MessageType
		p   string
	}{
		{transport.Text, "hello"},
		{transport.Text, ""},
		{transport.Text, "line\nbreak \"quoted\" \u2028 ünïcödé 😀"},
		{transport.Binary, "\x00\xff\xfe binary"},
		{transport.Binary, ""},
	}
	for _, tc := range cases {
		if err := c.Send(ctx, tc.typ, []byte(tc.p)); err != nil {
			t.Fatalf("Send(%v %q): %v", tc.typ, tc.p, err)
		}
	}
	for _, tc := range cases {
		typ, p, err := c.Recv(ctx)
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		if typ != tc.typ || string(p) != tc.p {
			t.Fatalf("Recv = %v %q, want %v %q", typ, p, tc.typ, tc.p)
		}
	}
	if err := c.Close(transport.CloseNormal, "done"); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_, _, err := c.Recv(ctx)
	var ce *transport.CloseError
	if !errors.As(err, &ce) || ce.Code != transport.CloseNormal || ce.Remote {
		t.Fatalf("Recv after Close = %v, want a local CloseError 1000", err)
	}
	if err := c.Send(ctx, transport.Text, []byte("late")); transport.CloseStatus(err) != transport.CloseNormal {
		t.Fatalf("Send after Close = %v, want the CloseError", err)
	}
}

func TestResume(t *testing.T) { runTransports(t, testResume) }

// testResume cuts every connection in the middle of an exchange, with
// messages in flight both ways, and checks that nothing is lost or
// repeated.
func testResume(t *testing.T, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	srv := newServer(t, session.Options{Serve: echo}, nil)
	net := &cutter{}
	c := dial(t, ctx, srv.url, name, &client.Options{NetDialContext: net.dial})

	msgs := numbered(60)
	exchange(t, ctx, c, msgs, 0, 10)
	for _, m := range msgs[10:30] {
		if err := c.Send(ctx, transport.Text, []byte(m)); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	before := net.dialCount()
	net.cut(false)
	for _, m := range msgs[30:] {
		if err := c.Send(ctx, transport.Text, []byte(m)); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	expectEchoes(t, ctx, c, msgs[10:])
	if net.dialCount() == before {
		t.Fatalf("no new connection after the cut")
	}
	if c.Transport() != name {
		t.Fatalf("Transport() = %q after resume, want %q", c.Transport(), name)
	}
}

// TestResumeOrder checks the order of echoes that straddle a cut.
func TestResumeOrder(t *testing.T) {
	runTransports(t, func(t *testing.T, name string) {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		srv := newServer(t, session.Options{Serve: echo}, nil)
		net := &cutter{}
		c := dial(t, ctx, srv.url, name, &client.Options{NetDialContext: net.dial})
		msgs := numbered(40)
		for _, m := range msgs[:20] {
			if err := c.Send(ctx, transport.Text, []byte(m)); err != nil {
				t.Fatalf("Send: %v", err)
			}
		}
		expectEchoes(t, ctx, c, msgs[:5])
		net.cut(false)
		for _, m := range msgs[20:] {
			if err := c.Send(ctx, transport.Text, []byte(m)); err != nil {
				t.Fatalf("Send: %v", err)
			}
		}
		expectEchoes(t, ctx, c, msgs[5:])
	})
}

func TestResumeUnderLoad(t *testing.T) { runTransports(t, testResumeUnderLoad) }

// testResumeUnderLoad cuts the network again and again while a sender
// streams messages: each echo arrives once, in order.
func testResumeUnderLoad(t *testing.T, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	srv := newServer(t, session.Options{Serve: echo}, nil)
	net := &cutter{}
	c := dial(t, ctx, srv.url, name, &client.Options{NetDialContext: net.dial, WindowMessages: 64})
	msgs := numbered(300)
	sent := make(chan error, 1)
	go func() {
		for _, m := range msgs {
			if err := c.Send(ctx, transport.Text, []byte(m)); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	for i := 0; i < len(msgs); i += 50 {
		expectEchoes(t, ctx, c, msgs[i:i+50])
		net.cut(false)
	}
	if err := <-sent; err != nil {
		t.Fatalf("Send: %v", err)
	}
}

func TestServerClose(t *testing.T) { runTransports(t, testServerClose) }

// testServerClose has the server close after one echo: the client gets the
// echo, then the server's close, and answers it.
func testServerClose(t *testing.T, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	srv := newServer(t, session.Options{Serve: func(s *session.Session) {
		typ, p, err := s.Recv(s.Context())
		if err != nil {
			return
		}
		s.Send(s.Context(), typ, p)
		s.Close(4001, "bye")
	}}, nil)
	c := dial(t, ctx, srv.url, name, nil)
	exchange(t, ctx, c, []string{"only"}, 0, 1)
	_, _, err := c.Recv(ctx)
	var ce *transport.CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 || ce.Reason != "bye" || !ce.Remote {
		t.Fatalf("Recv = %v, want the server's CloseError 4001 bye", err)
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("Done not closed after the server's close")
	}
}

func TestClientClose(t *testing.T) { runTransports(t, testClientClose) }

// testClientClose closes from the client and checks that the server's
// application sees the code and reason after the messages before it.
func testClientClose(t *testing.T, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	got := make(chan error, 1)
	var received []string
	srv := newServer(t, session.Options{Serve: func(s *session.Session) {
		for {
			_, p, err := s.Recv(s.Context())
			if err != nil {
				got <- err
				return
			}
			received = append(received, string(p))
		}
	}}, nil)
	c := dial(t, ctx, srv.url, name, nil)
	for _, m := range []string{"a", "b"} {
		if err := c.Send(ctx, transport.Text, []byte(m)); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	if err := c.Close(4002, "client done"); err != nil {
		t.Fatalf("Close: %v", err)
	}
	var err error
	select {
	case err = <-got:
	case <-ctx.Done():
		t.Fatal("the server's Recv did not end")
	}
	var ce *transport.CloseError
	if !errors.As(err, &ce) || ce.Code != 4002 || ce.Reason != "client done" || !ce.Remote {
		t.Fatalf("server Recv = %v, want the client's CloseError 4002", err)
	}
	if fmt.Sprint(received) != "[a b]" {
		t.Fatalf("server received %q, want [a b]", received)
	}
	if err := c.Close(transport.CloseNormal, ""); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
}

func TestSlowReader(t *testing.T) { runTransports(t, testSlowReader) }

// testSlowReader has the server send far more than the client's receive
// buffer before the client reads anything: the client stops reading, the
// server's window pushes back, and every message still arrives in order.
func testSlowReader(t *testing.T, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	msgs := numbered(200)
	srv := newServer(t, session.Options{WindowMessages: 16, Serve: func(s *session.Session) {
		for _, m := range msgs {
			if err := s.Send(s.Context(), transport.Text, []byte(m)); err != nil {
				return
			}
		}
		s.Recv(s.Context())
	}}, nil)
	c := dial(t, ctx, srv.url, name, &client.Options{ReceiveBuffer: 4})
	expectEchoes(t, ctx, c, msgs)
}

func TestSlowServer(t *testing.T) { runTransports(t, testSlowServer) }

// testSlowServer fills the server's inbound buffer: over long-polling the
// POSTs are accepted in part and the rest resent; over WebSocket the server
// stops reading. Every message arrives once, in order.
func testSlowServer(t *testing.T, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	msgs := numbered(100)
	start := make(chan struct{})
	done := make(chan []string, 1)
	srv := newServer(t, session.Options{InboundMessages: 16, Serve: func(s *session.Session) {
		select {
		case <-start:
		case <-s.Context().Done():
			return
		}
		var got []string
		for range msgs {
			_, p, err := s.Recv(s.Context())
			if err != nil {
				break
			}
			got = append(got, string(p))
		}
		done <- got
		s.Recv(s.Context())
	}}, nil)
	c := dial(t, ctx, srv.url, name, nil)
	for _, m := range msgs {
		if err := c.Send(ctx, transport.Text, []byte(m)); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	close(start)
	select {
	case got := <-done:
		if fmt.Sprint(got) != fmt.Sprint(msgs) {
			t.Fatalf("server received %q, want %q", got, msgs)
		}
	case <-ctx.Done():
		t.Fatal("the server did not receive every message")
	}
}

func TestRequests(t *testing.T) { runTransports(t, testRequests) }

// testRequests records the client's requests: every transport request
// carries a fresh z, POSTs are CORS-simple text/plain, and the
// application's headers go on negotiate and the WebSocket handshake only.
func testRequests(t *testing.T, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var mu sync.Mutex
	var reqs []*http.Request
	srv := newServer(t, session.Options{Serve: echo}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			reqs = append(reqs, r.Clone(context.Background()))
			mu.Unlock()
			h.ServeHTTP(w, r)
		})
	})
	c := dial(t, ctx, srv.url, name, &client.Options{Header: http.Header{"X-Token": {"t0k"}}})
	exchange(t, ctx, c, numbered(5), 0, 5)
	if err := c.Close(transport.CloseNormal, ""); err != nil {
		t.Fatalf("Close: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	seen := map[string]bool{}
	paths := map[string]int{}
	for _, r := range reqs {
		path := strings.TrimPrefix(r.URL.Path, "/comet/")
		paths[r.Method+" "+path]++
		z := r.URL.Query().Get("z")
		if z == "" || seen[z] {
			t.Errorf("%s %s: z=%q is missing or repeated", r.Method, r.URL, z)
		}
		seen[z] = true
		if r.URL.Query().Get("v") != "1" {
			t.Errorf("%s %s: no v=1", r.Method, r.URL)
		}
		// The first attach negotiates when it is the only transport's.
		custom := path == "negotiate" || path == "websocket" || r.URL.Query().Has("n")
		if got := r.Header.Get("X-Token") != ""; got != custom {
			t.Errorf("%s %s: X-Token present = %v, want %v", r.Method, path, got, custom)
		}
		if r.Method == http.MethodPost && path == "send" {
			if ct := r.Header.Get("Content-Type"); ct != "text/plain;charset=UTF-8" {
				t.Errorf("POST send: Content-Type %q", ct)
			}
		}
	}
	// A client with one transport negotiates in its first attach.
	if paths["POST negotiate"] != 0 || paths["GET "+name] == 0 {
		t.Errorf("requests = %v, want no negotiate POST (the first attach negotiates)", paths)
	}
	if name == transport.LongPoll && (paths["GET longpoll"] < 2 || paths["POST send"] < 1) {
		t.Errorf("requests = %v, want polls and POSTs", paths)
	}
}
