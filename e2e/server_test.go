package e2e

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/internal/wirecount"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

//go:embed testdata/page.js
var pageScript []byte

// previousShim is comet.min.js as first released, for protocol version 1:
// a page that still loads it (a cached copy, a vendored file) must keep
// working with this server (../shared/design/protocol-plan.md's rule that
// additions are asked for by the client). Replace it only when a release
// is made, never to make a failing case pass.
//
//go:embed testdata/previous-comet.min.js
var previousShim []byte

// pageHTML loads the shim from the Comet handler, after deleting the
// browser globals the case removes (so the shim's capability checks see a
// browser without them), then page.js.
var pageHTML = template.Must(template.New("page").Parse(`<!doctype html>
<meta charset="utf-8">
<title>comet e2e</title>
<script>
{{range .Remove}}delete window[{{.}}]; if ({{.}} in window) window[{{.}}] = undefined;
{{end}}</script>
<script src="{{.Shim}}"></script>
<script src="/page.js"></script>
`))

// removable are the globals a page may be asked to delete.
var removable = []string{"WebSocket", "EventSource", "fetch", "ReadableStream"}

// config shapes a test server.
type config struct {
	opts      session.Options // Serve and Logger are set by newServer
	refuseWS  bool            // answer 403 to every WebSocket attach
	tls       bool            // HTTPS with HTTP/2
	cutAfter  int             // cut every connection once this many messages were echoed
	allowSelf bool            // AllowedOrigins holds the server's own origin, and nothing else
	// wsGate, when not nil, holds every WebSocket attach until it is
	// closed (or the request ends): a WebSocket that proves itself late.
	wsGate <-chan struct{}
	// onChange, when not nil, hears every transport change the server
	// reports, as it happens. It must not block.
	onChange func(change)
	// routes are more handlers of the server's mux, by pattern.
	routes map[string]http.Handler
}

// server is an in-process Comet server on loopback with an echo
// application, the page and page.js, and what the tests check: every
// request, the sessions' transports and how each session ended.
type server struct {
	t   *testing.T
	log *slog.Logger // safe after the test, unlike t.Logf
	cfg config
	srv *httptest.Server
	h   *session.Handler
	ln  *cuttingListener
	// wire counts the bytes and WebSocket messages of every connection.
	wire *wirecount.Listener

	negotiates atomic.Int32
	mu         sync.Mutex
	requests   []request
	changes    []change
	ended      chan ended
}

type request struct {
	method, name, proto, why, session, attempt, ticket string
	ifNoneMatch                                        string
	hb                                                 string // the heartbeat the attach asks for, ms
}

type change struct{ from, to, reason string }

// ended is how one session's application ended: the messages it
// received, in order, and Recv's error.
type ended struct {
	got []string
	err error
}

func newServer(t *testing.T, cfg config) *server {
	t.Helper()
	s := &server{t: t, cfg: cfg, ended: make(chan ended, 64)}
	opts := cfg.opts
	opts.Prefix = "/comet"
	opts.Serve = s.echo
	s.log = testutil.Logger(t)
	opts.Logger = s.log
	opts.Observer = &session.Observer{
		TransportChanged: func(_ *session.Session, from, to, reason string) {
			s.mu.Lock()
			s.changes = append(s.changes, change{from, to, reason})
			s.mu.Unlock()
			if cfg.onChange != nil {
				cfg.onChange(change{from, to, reason})
			}
		},
	}
	mux := http.NewServeMux()
	// The listener exists from here on, so the server knows its origin.
	s.srv = httptest.NewUnstartedServer(mux)
	if cfg.allowSelf {
		scheme := "http://"
		if cfg.tls {
			scheme = "https://"
		}
		opts.AllowedOrigins = []string{scheme + s.srv.Listener.Addr().String()}
	}
	s.h = comet.NewHandler(&opts)

	mux.Handle("/comet/", http.HandlerFunc(s.comet))
	mux.HandleFunc("GET /page", s.page)
	mux.HandleFunc("GET /previous/comet.min.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/javascript; charset=utf-8")
		w.Write(previousShim)
	})
	mux.HandleFunc("GET /page.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(pageScript)
	})
	for pattern, h := range cfg.routes {
		mux.Handle(pattern, h)
	}
	s.wire = wirecount.Wrap(s.srv.Listener)
	s.ln = &cuttingListener{Listener: s.wire, conns: map[net.Conn]bool{}}
	s.srv.Listener = s.ln
	if cfg.tls {
		s.srv.EnableHTTP2 = true
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	t.Cleanup(func() {
		// Not t.Context(): it is cancelled before cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.h.Shutdown(ctx)
		s.srv.Close()
		if t.Failed() {
			var b strings.Builder
			for _, r := range s.allRequests() {
				fmt.Fprintf(&b, "\n\t%v", r)
			}
			t.Logf("server: requests, in order of arrival:%s", b.String())
		}
	})
	return s
}

// URL is the server's base URL, http://127.0.0.1:port (or https).
func (s *server) URL() string { return s.srv.URL }

// pageURL is the URL of the page at base (the server's URL, or another
// name for it), removing the given globals before the shim loads from
// shimBase.
func (s *server) pageURL(base, shimBase string, remove ...string) string {
	u := base + "/page?shim=" + shimBase + "/comet/comet.js"
	if len(remove) > 0 {
		u += "&remove=" + strings.Join(remove, ",")
	}
	return u
}

func (s *server) page(w http.ResponseWriter, r *http.Request) {
	var remove []string
	if v := r.URL.Query().Get("remove"); v != "" {
		for _, name := range strings.Split(v, ",") {
			if !slices.Contains(removable, name) {
				http.Error(w, "cannot remove "+name, http.StatusBadRequest)
				return
			}
			remove = append(remove, name)
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	pageHTML.Execute(w, struct {
		Remove []string
		Shim   string
	}{remove, r.URL.Query().Get("shim")})
}

// comet records each request, refuses WebSocket if asked, and hands the
// request to the Comet handler.
func (s *server) comet(w http.ResponseWriter, r *http.Request) {
	name := path.Base(r.URL.Path)
	q := r.URL.Query()
	s.mu.Lock()
	s.requests = append(s.requests, request{method: r.Method, name: name, proto: r.Proto, why: q.Get("why"), session: q.Get("s"), attempt: q.Get("a"), ticket: q.Get("t"), ifNoneMatch: r.Header.Get("If-None-Match"), hb: q.Get("hb")})
	s.mu.Unlock()
	if name == "negotiate" && r.Method == http.MethodPost {
		s.negotiates.Add(1)
	}
	if name == transport.WebSocket && s.cfg.refuseWS {
		http.Error(w, "websocket refused by the test", http.StatusForbidden)
		return
	}
	if name == transport.WebSocket && s.cfg.wsGate != nil {
		select {
		case <-s.cfg.wsGate:
		case <-r.Context().Done():
			return
		}
	}
	s.h.ServeHTTP(w, r)
}

// echo is the application: it sends every message back, and answers
// "close-me" by closing with 4002. It cuts every connection after
// cfg.cutAfter echoes, once.
func (s *server) echo(sess *session.Session) {
	ctx := sess.Context()
	var got []string
	for {
		typ, p, err := sess.Recv(ctx)
		if err != nil {
			s.ended <- ended{got, err}
			return
		}
		got = append(got, string(p))
		if typ == transport.Text && string(p) == "close-me" {
			sess.Close(4002, "server says bye")
			continue
		}
		if err := sess.Send(ctx, typ, p); err != nil {
			s.log.Error("e2e: Send", "err", err)
		}
		if len(got) == s.cfg.cutAfter {
			n := s.ln.cutAll()
			s.log.Info("e2e: cut every connection", "connections", n, "echoes", len(got))
		}
	}
}

// sessionEnd waits for the next session's application to end.
func (s *server) sessionEnd() ended {
	s.t.Helper()
	return testutil.Receive(s.t, s.ended, "end of a session")
}

// attaches returns the transport requests the server saw (negotiate,
// send and the shim's files excluded).
func (s *server) attaches() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []request
	for _, r := range s.requests {
		switch r.name {
		case "negotiate", "send", "comet.js", "comet.min.js":
		default:
			out = append(out, r)
		}
	}
	return out
}

func (s *server) allRequests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

func (s *server) transportChanges() []change {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.changes)
}

// cuttingListener remembers every connection it accepted, hijacked
// WebSockets included (httptest.Server.CloseClientConnections forgets
// those), so that a test can cut them all as a network failure would.
type cuttingListener struct {
	net.Listener
	mu    sync.Mutex
	conns map[net.Conn]bool
	cuts  atomic.Int32 // connections cut by cutAll
}

func (l *cuttingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.conns[c] = true
	l.mu.Unlock()
	return &trackedConn{Conn: c, l: l}, nil
}

// cutAll closes every open connection and returns how many there were.
func (l *cuttingListener) cutAll() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.conns)
	l.cuts.Add(int32(n))
	for c := range l.conns {
		c.Close()
		delete(l.conns, c)
	}
	return n
}

type trackedConn struct {
	net.Conn
	l    *cuttingListener
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c.Conn)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// closeCode returns the close code of err and whether the peer closed.
func closeCode(err error) (transport.CloseCode, bool) {
	var ce *transport.CloseError
	if errors.As(err, &ce) {
		return ce.Code, ce.Remote
	}
	return 0, false
}

func (r request) String() string {
	return fmt.Sprintf("%s %s %s s=%.8s a=%s t=%.6s why=%q hb=%s", r.method, r.name, r.proto, r.session, r.attempt, r.ticket, r.why, r.hb)
}
