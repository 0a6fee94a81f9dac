package client_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// requestLog records the requests a server sees, as "METHOD path" with
// "+n" for an upgrade that negotiates.
type requestLog struct {
	mu   sync.Mutex
	seen []string
}

func (l *requestLog) wrap(next func(w http.ResponseWriter, r *http.Request)) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			line := r.Method + " " + strings.TrimPrefix(r.URL.Path, "/comet/")
			if r.URL.Query().Has("n") {
				line += "+n"
			}
			l.mu.Lock()
			l.seen = append(l.seen, line)
			l.mu.Unlock()
			if next != nil && r.URL.Query().Has("n") {
				next(w, r)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
}

func (l *requestLog) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.seen...)
}

// runDirect runs f for each transport, the client's only one, so that its
// first attach negotiates.
func runDirect(t *testing.T, f func(t *testing.T, name string)) {
	for _, name := range transport.Order() {
		t.Run(name, func(t *testing.T) { f(t, name) })
	}
}

// TestDialDirect dials with one transport, each in turn:
// one request, the first attach, makes the session (no negotiate POST),
// and the session carries messages both ways, closes cleanly, and
// Options.Header reaches the server's negotiate hook.
func TestDialDirect(t *testing.T) { runDirect(t, testDialDirect) }

func testDialDirect(t *testing.T, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var log requestLog
	tokens := make(chan string, 1)
	srv := newServer(t, session.Options{Serve: echo, Negotiate: func(n *session.Negotiation) (session.Decision, error) {
		tokens <- n.Request.Header.Get("X-Token")
		return session.Decision{}, nil
	}}, log.wrap(nil))
	c := dial(t, ctx, srv.url, name, &client.Options{Header: http.Header{"X-Token": {"t0k"}}})
	if got := <-tokens; got != "t0k" {
		t.Errorf("the negotiate hook saw X-Token %q, want t0k", got)
	}
	exchange(t, ctx, c, numbered(5), 0, 5)
	if err := c.Close(transport.CloseNormal, ""); err != nil {
		t.Fatalf("Close: %v", err)
	}
	got := log.lines()
	if len(got) == 0 || got[0] != "GET "+name+"+n" || slices.Contains(got, "POST negotiate") {
		t.Fatalf("requests %q, want the first attach negotiating, and no negotiate POST", got)
	}
}

// TestDialDirectOldServer: a server that predates negotiating in the
// first attach answers it as an attach without s and t, 400; Dial
// negotiates with a POST, then attaches, and the session works.
func TestDialDirectOldServer(t *testing.T) { runDirect(t, testDialDirectOldServer) }

func testDialDirectOldServer(t *testing.T, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var log requestLog
	srv := newServer(t, session.Options{Serve: echo}, log.wrap(func(w http.ResponseWriter, r *http.Request) {
		transport.WriteError(w, http.StatusBadRequest, transport.ErrorBody{Code: transport.CodeBadRequest,
			Message: "comet: bad attach parameters: s and t are required"}, 0)
	}))
	c := dial(t, ctx, srv.url, name, nil)
	exchange(t, ctx, c, numbered(3), 0, 3)
	wantFallback(t, log.lines(), name)
}

// wantFallback checks that requests began with a first attach that
// negotiated, then a negotiate POST and an attach.
func wantFallback(t *testing.T, got []string, name string) {
	t.Helper()
	want := []string{"GET " + name + "+n", "POST negotiate", "GET " + name}
	if len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
		t.Fatalf("requests %q, want them to begin with %q", got, want)
	}
}

// headerless drops every header the handler sets on a 101, as a proxy
// that passes the upgrade but not unknown headers would.
type headerless struct{ http.ResponseWriter }

func (h headerless) Header() http.Header { return http.Header{} }

func (h headerless) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(h.ResponseWriter).Hijack()
}

// TestDialDirectHeaderDropped: the first attach succeeds but its
// negotiate response does not arrive; Dial negotiates with a POST
// instead, and the session it gets works.
func TestDialDirectHeaderDropped(t *testing.T) { runDirect(t, testDialDirectHeaderDropped) }

func testDialDirectHeaderDropped(t *testing.T, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var log requestLog
	var h http.Handler
	srv := newServer(t, session.Options{Serve: echo, Grace: 200 * time.Millisecond}, func(next http.Handler) http.Handler {
		h = next
		return log.wrap(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(headerless{w}, r) })(next)
	})
	c := dial(t, ctx, srv.url, name, nil)
	exchange(t, ctx, c, numbered(3), 0, 3)
	wantFallback(t, log.lines(), name)
}

// TestDialDirectRefused: the server's refusal of a first attach that
// negotiates is Dial's error, as a refused negotiate's, with no second try.
func TestDialDirectRefused(t *testing.T) { runDirect(t, testDialDirectRefused) }

func testDialDirectRefused(t *testing.T, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var log requestLog
	srv := newServer(t, session.Options{Serve: echo, Authorize: func(*http.Request) (any, error) {
		return nil, &session.AuthError{Status: http.StatusUnauthorized, Message: "no token"}
	}}, log.wrap(nil))
	_, err := client.Dial(ctx, srv.url, &client.Options{Transports: []string{name}})
	var he *client.HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusUnauthorized || he.Body.Code != transport.CodeUnauthorized {
		t.Fatalf("Dial = %v, want the server's 401", err)
	}
	if got := log.lines(); len(got) != 1 {
		t.Fatalf("requests %q, want the one attach", got)
	}
}

// TestDialDirectSeparate: Options.SeparateNegotiate negotiates with a POST
// first, as a client with a choice of transports does.
func TestDialDirectSeparate(t *testing.T) { runDirect(t, testDialDirectSeparate) }

func testDialDirectSeparate(t *testing.T, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var log requestLog
	srv := newServer(t, session.Options{Serve: echo}, log.wrap(nil))
	c := dial(t, ctx, srv.url, name, &client.Options{SeparateNegotiate: true})
	exchange(t, ctx, c, numbered(2), 0, 2)
	if got := log.lines(); len(got) < 2 || got[0] != "POST negotiate" || got[1] != "GET "+name {
		t.Fatalf("requests %q, want a negotiate POST, then an attach", got)
	}
}
