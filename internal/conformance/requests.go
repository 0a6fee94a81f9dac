package conformance

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/transport"
)

// requestLog records every request a server sees and the Cache-Control
// its response carried.
type requestLog struct {
	mu   sync.Mutex
	reqs []loggedRequest
}

type loggedRequest struct {
	method, path string
	query        url.Values
	proto        int  // the HTTP major version
	answered     bool // a response header went out (not a hijacked WebSocket)
	status       int
	cacheControl string
}

// wrap returns h recording into l.
func (l *requestLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.reqs = append(l.reqs, loggedRequest{method: r.Method, path: r.URL.Path, query: r.URL.Query(), proto: r.ProtoMajor})
		i := len(l.reqs) - 1
		l.mu.Unlock()
		h.ServeHTTP(&loggingWriter{ResponseWriter: w, l: l, i: i}, r)
	})
}

func (l *requestLog) all() []loggedRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]loggedRequest(nil), l.reqs...)
}

// loggingWriter notes the response headers when they go out. It keeps
// every ability of the writer it wraps: Unwrap for ResponseController
// (write deadlines), FlushError for streams, Hijack for WebSocket.
type loggingWriter struct {
	http.ResponseWriter
	l *requestLog
	i int
}

func (w *loggingWriter) note(status int) {
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	if r := &w.l.reqs[w.i]; !r.answered {
		r.answered, r.status = true, status
		r.cacheControl = w.Header().Get("Cache-Control")
	}
}

func (w *loggingWriter) WriteHeader(status int) {
	w.note(status)
	w.ResponseWriter.WriteHeader(status)
}

func (w *loggingWriter) Write(p []byte) (int, error) {
	w.note(http.StatusOK)
	return w.ResponseWriter.Write(p)
}

func (w *loggingWriter) FlushError() error {
	w.note(http.StatusOK)
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *loggingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

func (w *loggingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// testNoReuse checks that no request of a session can be answered from a
// cache or replayed (PROTOCOL.md sections 2 and 5): every response says
// no-store, every request the client makes has its own z, and every
// attach its own ticket. Drops make the client attach again and again.
//
// One repeat is the network's, not the client's: net/http's Transport
// sends a GET again, URL and all, when the connection it was sent on dies
// before the response (a poll parked at the server when the connection
// is cut). The ticket is single-use, so the server serves one of the
// copies, whichever reaches it first, and refuses the others with 403
// bad_ticket.
func (su suite) testNoReuse(t *testing.T, name string) {
	var log requestLog
	e := su.newEnvWith(t, name, nil, EnvOptions{Wrap: log.wrap})
	ctx := testContext(t, 20*time.Second)
	// Without replies in POST answers every round's echoes, and the
	// close's, need the downstream, so that each drop is followed by an
	// attach before the test ends.
	c := e.dial(ctx, &client.Options{NoPostReplies: true})
	for round := range 4 {
		for i := range 5 {
			m := fmt.Sprintf("round %d message %d", round, i)
			if err := c.Send(ctx, transport.Text, []byte(m)); err != nil {
				t.Fatal(err)
			}
			if _, p, err := c.Recv(ctx); err != nil || string(p) != m {
				t.Fatalf("Recv = %q, %v; want %q", p, err, m)
			}
		}
		e.net.cut()
	}
	if err := c.Close(transport.CloseNormal, ""); err != nil {
		t.Fatal(err)
	}

	// Group the requests by z. The log is in arrival order at the wrapper,
	// not in the order the handler spent tickets: a resent GET may reach
	// the ticket check before the original it repeats.
	byZ := map[string][]loggedRequest{}
	var order []string
	reqs := log.all()
	for _, r := range reqs {
		if r.answered && !strings.Contains(r.cacheControl, "no-store") {
			t.Errorf("%s %s: %d with Cache-Control %q, want no-store", r.method, r.path, r.status, r.cacheControl)
		}
		z := r.query.Get("z")
		if z == "" {
			t.Errorf("%s %s: no z", r.method, r.path)
			continue
		}
		if byZ[z] == nil {
			order = append(order, z)
		}
		byZ[z] = append(byZ[z], r)
	}
	tickets := map[string]string{}
	attaches, repeats := 0, 0
	for _, z := range order {
		group := byZ[z]
		r := group[0]
		// Only a resent GET may repeat a z, with every other parameter, and
		// the server answers at most one of the copies with anything but
		// 403. A copy left without an answer is not counted: its client
		// was gone, and the log cannot tell whether its ticket was
		// checked. In a cluster, a copy cut while a node forwarded it to
		// the session's owner never reached the check, and its resend is
		// rightly served.
		served := 0
		var statuses []int
		for i, d := range group {
			same := i == 0 || d.method == http.MethodGet && d.method == r.method && d.path == r.path &&
				d.query.Encode() == r.query.Encode()
			if !same {
				t.Errorf("%s %s?%s: z repeated by %s %s", r.method, r.path, r.query.Encode(), d.method, d.path)
			}
			statuses = append(statuses, d.status)
			if d.answered && d.status != http.StatusForbidden {
				served++
			}
		}
		if served > 1 {
			t.Errorf("%s %s?%s: sent %d times, served %d times (statuses %v; 0 unanswered), want at most once",
				r.method, r.path, r.query.Encode(), len(group), served, statuses)
		}
		repeats += len(group) - 1
		if r.method == http.MethodGet && r.path == e.prefix+"/"+name {
			attaches++
			if r.query.Has("n") {
				continue // the upgrade that negotiated: the session it made needs no ticket
			}
			tk := r.query.Get("t")
			if tk == "" || tickets[tk] != "" {
				t.Errorf("GET %s: ticket %q missing, or used before by z=%s", r.path, tk, tickets[tk])
			}
			tickets[tk] = z
		}
	}
	if attaches < 5 {
		t.Errorf("%d %s attaches after 4 drops, want at least 5", attaches, name)
	}
	t.Logf("%d requests, %d of them %s attaches with fresh z and ticket; %d resent by net/http and refused",
		len(reqs), attaches, name, repeats)
}
