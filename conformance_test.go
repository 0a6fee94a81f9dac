package comet_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/internal/leakcheck"
	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// transports is every transport the conformance suite runs on.
var transports = []string{transport.WebSocket, transport.SSE, transport.Streaming, transport.LongPoll}

// runTransports runs one conformance test on every transport.
func runTransports(t *testing.T, test func(t *testing.T, name string)) {
	t.Helper()
	for _, name := range transports {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, name)
		})
	}
}

// burstAckDelay is the AckDelay of the tests whose client sends more at
// once than the server's inbound buffer holds (256 messages): after each
// partial accept the client pauses for AckDelay before it sends the rest
// (PROTOCOL.md section 6), and at the default 200 ms those pauses, not what
// the test checks, would make most of its time.
const burstAckDelay = 10 * time.Millisecond

// env is a Comet server on loopback plus a way to cut and hold back the
// connections of the clients it dials.
type env struct {
	t        *testing.T
	name     string
	h        *session.Handler
	url      string
	client   *http.Client // for an HTTP/2 env, the server's client; nil otherwise
	sessions chan *session.Session
	net      *netControl
}

// envOptions are the settings few tests need.
type envOptions struct {
	// wrap, if set, wraps the handler: a recorder, a fault.
	wrap func(http.Handler) http.Handler
	// adapters, if set, are the transports served instead of
	// comet.NewHandler's.
	adapters []transport.Adapter
	// http2 serves HTTP/2 over TLS; clients use the server's HTTP client.
	http2 bool
	// listener, if set, wraps the server's listener (a wirecount.Listener).
	listener func(net.Listener) net.Listener
}

// newEnv starts a server; opts may be nil, and a nil Serve echoes.
func newEnv(t *testing.T, name string, opts *session.Options) *env {
	t.Helper()
	return newEnvWith(t, name, opts, envOptions{})
}

// newEnvWith starts a server as newEnv does, with the settings of eo.
func newEnvWith(t *testing.T, name string, opts *session.Options, eo envOptions) *env {
	t.Helper()
	var o session.Options
	if opts != nil {
		o = *opts
	}
	e := &env{t: t, name: name, sessions: make(chan *session.Session, 64), net: newNetControl()}
	serve := o.Serve
	if serve == nil {
		serve = echo
	}
	o.Serve = func(s *session.Session) {
		e.sessions <- s
		serve(s)
	}
	o.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	o.NegotiateRate = -1
	if eo.adapters != nil {
		e.h = session.NewHandler(&o, eo.adapters...)
	} else {
		e.h = comet.NewHandler(&o)
	}
	var handler http.Handler = e.h
	if eo.wrap != nil {
		handler = eo.wrap(handler)
	}
	srv := httptest.NewUnstartedServer(handler)
	if eo.listener != nil {
		srv.Listener = eo.listener(srv.Listener)
	}
	if eo.http2 {
		srv.EnableHTTP2 = true
		srv.StartTLS()
		e.client = srv.Client()
	} else {
		srv.Start()
	}
	e.url = srv.URL + "/comet"
	t.Cleanup(func() {
		e.net.release()
		// Clients close gracefully in their own cleanups, which run first.
		// A session whose client is gone (a raw client, a cut connection)
		// would wait for the ack of its close until the grace period or
		// Shutdown's ctx; end those at once, so that Shutdown waits only
		// for Serve.
		e.h.Range(func(s *session.Session) bool {
			s.CloseNow()
			return true
		})
		ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
		defer cancel()
		if err := e.h.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		srv.CloseClientConnections()
		srv.Close()
		http.DefaultClient.CloseIdleConnections()
	})
	return e
}

// dial connects a client forced onto the env's transport.
func (e *env) dial(ctx context.Context, opts *client.Options) *client.Conn {
	e.t.Helper()
	var o client.Options
	if opts != nil {
		o = *opts
	}
	o.Transports = []string{e.name}
	return e.dialWith(ctx, &o)
}

// dialWith connects a client with o as it is, over the env's network,
// and checks that it uses the env's transport unless the env has none.
func (e *env) dialWith(ctx context.Context, o *client.Options) *client.Conn {
	e.t.Helper()
	o.NetDialContext = e.net.dial
	if e.client != nil {
		o.HTTPClient = e.client
	}
	c, err := client.Dial(ctx, e.url, o)
	if err != nil {
		e.t.Fatalf("Dial: %v", err)
	}
	e.t.Cleanup(func() { c.Close(transport.CloseNormal, "test over") })
	if got := c.Transport(); e.name != "" && got != e.name {
		e.t.Fatalf("client transport %q, want %q", got, e.name)
	}
	return c
}

// session returns the server side of the next session.
func (e *env) session(ctx context.Context) *session.Session {
	e.t.Helper()
	select {
	case s := <-e.sessions:
		return s
	case <-ctx.Done():
		e.t.Fatal("no session opened")
		return nil
	}
}

func echo(s *session.Session) {
	ctx := s.Context()
	for {
		typ, p, err := s.Recv(ctx)
		if err != nil {
			return
		}
		if s.Send(ctx, typ, p) != nil {
			return
		}
	}
}

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("server: %s", p)
	return len(p), nil
}

// netControl dials loopback connections it can cut all at once, and can
// hold new dials back to keep a client detached.
type netControl struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	gate  chan struct{} // nil: dials go ahead
}

func newNetControl() *netControl { return &netControl{conns: make(map[net.Conn]struct{})} }

func (n *netControl) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	n.mu.Lock()
	gate := n.gate
	n.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	n.conns[c] = struct{}{}
	n.mu.Unlock()
	return &trackedConn{Conn: c, n: n}, nil
}

// cut closes every connection dialed so far and returns how many it
// closed.
func (n *netControl) cut() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	cut := len(n.conns)
	for c := range n.conns {
		c.Close()
		delete(n.conns, c)
	}
	return cut
}

// hold makes new dials wait until release.
func (n *netControl) hold() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.gate == nil {
		n.gate = make(chan struct{})
	}
}

func (n *netControl) release() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.gate != nil {
		close(n.gate)
		n.gate = nil
	}
}

type trackedConn struct {
	net.Conn
	n *netControl
}

func (c *trackedConn) Close() error {
	c.n.mu.Lock()
	delete(c.n.conns, c.Conn)
	c.n.mu.Unlock()
	return c.Conn.Close()
}

func TestEcho(t *testing.T) { runTransports(t, testEcho) }

func testEcho(t *testing.T, name string) {
	e := newEnv(t, name, nil)
	ctx := testContext(t, 20*time.Second)
	c := e.dial(ctx, nil)
	s := e.session(ctx)

	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	msgs := []struct {
		typ transport.MessageType
		p   []byte
	}{
		{transport.Text, []byte("hello")},
		{transport.Text, []byte("lines\r\n\r and \u2028 \u2029 NUL\x00 日本 😀")},
		{transport.Text, []byte{}},
		{transport.Binary, binary},
		{transport.Binary, []byte{}},
	}
	for _, m := range msgs {
		if err := c.Send(ctx, m.typ, m.p); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range msgs {
		typ, p, err := c.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if typ != m.typ || string(p) != string(m.p) {
			t.Fatalf("echo = %v %q, want %v %q", typ, p, m.typ, m.p)
		}
	}
	if got := s.Transport(); got != name {
		t.Fatalf("server transport %q, want %q", got, name)
	}
}

func TestOrdering(t *testing.T) { runTransports(t, testOrdering) }

func testOrdering(t *testing.T, name string) {
	e := newEnv(t, name, &session.Options{AckDelay: burstAckDelay})
	ctx := testContext(t, 30*time.Second)
	c := e.dial(ctx, nil)
	const n = 1000
	errc := make(chan error, 1)
	go func() {
		for i := range n {
			if err := c.Send(ctx, transport.Text, fmt.Appendf(nil, "%d", i)); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for i := range n {
		_, p, err := c.Recv(ctx)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if want := fmt.Sprint(i); string(p) != want {
			t.Fatalf("message %d is %q", i, p)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
