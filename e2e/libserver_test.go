package e2e

import (
	"context"
	_ "embed"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

//go:embed testdata/libs.js
var libsScript []byte

// libsDir holds the pinned library packages: npm ci there installs them
// (scripts/test.sh does).
const libsDir = "browserlibs"

// libFiles are the browser builds the page loads, by the name it asks for,
// as each package publishes them (UMD or IIFE, a global each).
var libFiles = map[string]string{
	"reconnecting-websocket.js": "node_modules/reconnecting-websocket/dist/reconnecting-websocket-iife.js",
	"stomp.js":                  "node_modules/@stomp/stompjs/bundles/stomp.umd.js",
	"graphql-ws.js":             "node_modules/graphql-ws/umd/graphql-ws.js",
}

// libsPage loads the shim from the Comet handler, the libraries, then
// libs.js.
const libsPage = `<!doctype html>
<meta charset="utf-8">
<title>comet libraries e2e</title>
<script src="/comet/comet.js"></script>
<script src="/lib/reconnecting-websocket.js"></script>
<script src="/lib/stomp.js"></script>
<script src="/lib/graphql-ws.js"></script>
<script src="/libs.js"></script>
`

// readLibs reads the libraries' browser builds. Where they are not
// installed the test skips, or under CI=true, where that is a broken
// setup, fails.
func readLibs(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, name := range slices.Sorted(maps.Keys(libFiles)) {
		rel := libFiles[name]
		b, err := os.ReadFile(filepath.Join(libsDir, filepath.FromSlash(rel)))
		if errors.Is(err, os.ErrNotExist) {
			msg := "the pinned WebSocket libraries are not installed (" + filepath.Join("e2e", libsDir, rel) + " is missing): run npm ci in e2e/" + libsDir + " (scripts/test.sh does)"
			if os.Getenv("CI") == "true" {
				t.Fatal("CI=true, but " + msg)
			}
			t.Skip(msg)
		}
		if err != nil {
			t.Fatal(err)
		}
		out[name] = b
	}
	return out
}

// libServer is a Comet server on loopback whose sessions run the
// application under test (a STOMP broker, a GraphQL server, an echo), with
// the libraries' page. It records the transports the page attached with,
// and can cut every connection as a network failure would.
type libServer struct {
	t          *testing.T
	log        *slog.Logger // safe after the test, unlike t.Logf
	srv        *httptest.Server
	h          *session.Handler
	ln         *cuttingListener
	negotiates atomic.Int32

	mu       sync.Mutex
	attaches []string // the transport of every attach request, in order
}

// newLibServer starts a server whose sessions run opts.Serve. As in the
// shim's cases, the least attach timeout it gives clients is 2 s: forced
// onto one transport, a client on a loaded machine must not give up on a
// slow first attach.
func newLibServer(t *testing.T, opts session.Options) *libServer {
	t.Helper()
	libs := readLibs(t)
	s := &libServer{t: t, log: testutil.Logger(t)}
	opts.Prefix = "/comet"
	opts.Logger = s.log
	if opts.MinClientTimeout == 0 {
		opts.MinClientTimeout = 2 * time.Second
	}
	s.h = comet.NewHandler(&opts)
	mux := http.NewServeMux()
	mux.HandleFunc("/comet/", s.comet)
	mux.HandleFunc("GET /libs", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, libsPage)
	})
	mux.HandleFunc("GET /libs.js", func(w http.ResponseWriter, r *http.Request) {
		serveScript(w, libsScript)
	})
	mux.HandleFunc("GET /lib/{name}", func(w http.ResponseWriter, r *http.Request) {
		b, ok := libs[r.PathValue("name")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		serveScript(w, b)
	})
	s.srv = httptest.NewUnstartedServer(mux)
	s.ln = &cuttingListener{Listener: s.srv.Listener, conns: map[net.Conn]bool{}}
	s.srv.Listener = s.ln
	s.srv.Start()
	t.Cleanup(func() {
		// Not t.Context(): it is cancelled before cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.h.Shutdown(ctx)
		s.srv.Close()
	})
	return s
}

func serveScript(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

// comet records negotiates and attaches, and hands every request to the
// Comet handler.
func (s *libServer) comet(w http.ResponseWriter, r *http.Request) {
	name := path.Base(r.URL.Path)
	switch {
	case name == "negotiate" && r.Method == http.MethodPost:
		s.negotiates.Add(1)
	case slices.Contains(transport.Order(), name):
		s.mu.Lock()
		s.attaches = append(s.attaches, name)
		s.mu.Unlock()
	}
	s.h.ServeHTTP(w, r)
}

// cut closes every connection the server has open, once: the first call
// cuts, later calls do nothing.
func (s *libServer) cut(once *sync.Once) {
	once.Do(func() {
		n := s.ln.cutAll()
		s.log.Info("e2e: cut every connection", "connections", n)
	})
}

// open loads the libraries' page in a fresh tab of the shared browser.
func (s *libServer) open(t *testing.T) *tab {
	t.Helper()
	tb := newTab(t, needBrowser(t))
	tb.open(s.srv.URL + "/libs")
	return tb
}

// libParams are the parameters of every libs.js scenario.
type libParams struct {
	URL       string `json:"url"`       // the Comet mount URL
	Transport string `json:"transport"` // the one transport the Comet is forced onto
	N         int    `json:"n"`         // messages exchanged, half before the cut and half after
	Drop      bool   `json:"drop"`      // the page waits for a drop before the second half
	Protocols bool   `json:"protocols"` // the library passes its subprotocols to Comet
}

// params returns the parameters of a scenario forced onto name, with n
// messages.
func (s *libServer) params(name string, n int) libParams {
	return libParams{URL: s.srv.URL + "/comet", Transport: name, N: n, Drop: dropShows(name)}
}

// dropShows reports whether the page sees the cut on transport name. A
// long-poll is held by a GET on a reused keep-alive connection, and when
// that connection closes before any byte of the answer Chromium sends the
// GET again on a new one (as HTTP/1.1 allows for an idempotent request,
// RFC 9110 section 9.2.2): the shim never sees the drop, and the library
// even less. The other transports hold a response that has begun, which
// is not resent.
func dropShows(name string) bool { return name != transport.LongPoll }

// libWatch is what libs.js saw under the library: the Comets the library
// made through the WebSocket class it was given, and the drops of their
// transports, which the library does not see.
type libWatch struct {
	Made  int      `json:"made"`
	Drops []string `json:"drops"`
}

// wsClose is a close event as the library received it.
type wsClose struct {
	Code     int    `json:"code"`
	Reason   string `json:"reason"`
	WasClean bool   `json:"wasClean"`
}

// checkLibRun checks, from the server's view, a run of one library forced
// onto name: a drop happened under it (where the page can see one), every
// attach used name, and the
// library made sessions sessions (each one negotiate: a drop resumes the
// session, it does not make a new one).
func checkLibRun(t *testing.T, s *libServer, w libWatch, name string, sessions int) {
	t.Helper()
	if w.Made != sessions || int(s.negotiates.Load()) != sessions {
		t.Errorf("the library made %d Comets, the server saw %d negotiates; want %d each (a drop must not surface to the library)", w.Made, s.negotiates.Load(), sessions)
	}
	if len(w.Drops) == 0 && dropShows(name) {
		t.Error("page: no drop under the library: the cut did not reach it")
	}
	if s.ln.cuts.Load() == 0 {
		t.Error("server: no connection was cut")
	}
	s.mu.Lock()
	attaches := slices.Clone(s.attaches)
	s.mu.Unlock()
	for _, a := range attaches {
		if a != name {
			t.Errorf("server: an attach on %s, on a Comet forced onto %s", a, name)
		}
	}
	if len(attaches) < 2 {
		t.Errorf("server: attaches %q, want at least two (one after the cut)", attaches)
	}
	t.Logf("drops %q; attaches %d; connections cut %d", w.Drops, len(attaches), s.ln.cuts.Load())
}

// closeOf returns the close code and reason of the error that ended a
// session's Recv, and whether the client sent it.
func closeOf(err error) (transport.CloseCode, string, bool) {
	var ce *transport.CloseError
	if errors.As(err, &ce) {
		return ce.Code, ce.Reason, ce.Remote
	}
	return 0, "", false
}
