package conformance

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// burstAckDelay is the AckDelay of the tests whose client sends more at
// once than the server's inbound buffer holds (256 messages): after each
// partial accept the client pauses for AckDelay before it sends the rest
// (PROTOCOL.md section 6), and at the default 200 ms those pauses, not what
// the test checks, would make most of its time.
const burstAckDelay = 10 * time.Millisecond

// env is a Comet server under test, started by the suite's factory, plus a
// way to cut and hold back the connections of the clients it dials.
type env struct {
	t        *testing.T
	name     string
	srv      *Server
	url      string // srv.URL
	prefix   string // the path of url, where the handlers are mounted
	sessions chan *session.Session
	net      *netControl
}

// newEnv starts a server; opts may be nil, and a nil Serve echoes.
func (su suite) newEnv(t *testing.T, name string, opts *session.Options) *env {
	t.Helper()
	return su.newEnvWith(t, name, opts, EnvOptions{})
}

// newEnvWith starts a server as newEnv does, with the settings of eo.
func (su suite) newEnvWith(t *testing.T, name string, opts *session.Options, eo EnvOptions) *env {
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
	// Every node's Serve feeds the one channel: a session is made on
	// whichever node its negotiate reached.
	o.Serve = func(s *session.Session) {
		e.sessions <- s
		serve(s)
	}
	o.Logger = slog.New(slog.NewTextHandler(newTestWriter(t), &slog.HandlerOptions{Level: slog.LevelInfo}))
	o.NegotiateRate = -1
	// Registered before the factory's cleanups, so it runs after them, once
	// the servers are closed.
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	e.srv = su.factory(t, &o, eo)
	if e.srv == nil || len(e.srv.Handlers) == 0 {
		t.Fatal("the factory returned no server, or one without handlers")
	}
	e.url = e.srv.URL
	u, err := url.Parse(e.url)
	if err != nil {
		t.Fatalf("server URL %q: %v", e.url, err)
	}
	e.prefix = u.Path
	// Registered after the factory's cleanups, so it runs before them,
	// while the servers still serve.
	t.Cleanup(func() {
		e.net.release()
		// Clients close gracefully in their own cleanups, which run first.
		// A session whose client is gone (a raw client, a cut connection)
		// would wait for the ack of its close until the grace period or
		// Shutdown's ctx; end those at once, so that Shutdown waits only
		// for Serve.
		e.rangeSessions(func(s *session.Session) bool {
			s.CloseNow()
			return true
		})
		ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
		defer cancel()
		if err := e.shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return e
}

// sessionCount returns the number of sessions every node holds, together.
func (e *env) sessionCount() int {
	n := 0
	for _, h := range e.srv.Handlers {
		n += h.Sessions()
	}
	return n
}

// rangeSessions calls f for every session of every node until f returns
// false.
func (e *env) rangeSessions(f func(*session.Session) bool) {
	more := true
	for _, h := range e.srv.Handlers {
		h.Range(func(s *session.Session) bool {
			more = f(s)
			return more
		})
		if !more {
			return
		}
	}
}

// shutdown shuts every node down at once, as a whole cluster going away,
// and returns the first error.
func (e *env) shutdown(ctx context.Context) error {
	errs := make([]error, len(e.srv.Handlers))
	var wg sync.WaitGroup
	for i, h := range e.srv.Handlers {
		wg.Go(func() { errs[i] = h.Shutdown(ctx) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
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
	if e.srv.Client != nil {
		o.HTTPClient = e.srv.Client
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

// echo is the Serve of a server given none: it sends back what it
// receives.
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

// testWriter routes a server's log to its test until the test's cleanups
// have run: a node's goroutine that logs later would make t.Logf panic.
type testWriter struct {
	mu      sync.Mutex
	t       *testing.T
	stopped bool
}

// newTestWriter returns a writer to t; call it before anything whose
// cleanup may log, so that its own cleanup runs after theirs.
func newTestWriter(t *testing.T) *testWriter {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.stopped = true
		w.mu.Unlock()
	})
	return w
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Logf("server: %s", bytes.TrimSuffix(p, []byte("\n")))
	}
	return len(p), nil
}
