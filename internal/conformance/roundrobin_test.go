package conformance_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet/internal/conformance"
	"github.com/seed-544bbf9f/comet/internal/leakcheck"
	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/session"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// backends starts n servers that each answer with their index: a GET of
// /name with "name <index>", a WebSocket upgrade at /ws with one message
// saying the same, and /stream with a line it flushes before it waits for
// the request to end, its declared length unreached.
func backends(t *testing.T, n int) []string {
	t.Helper()
	var urls []string
	for i := range n {
		mux := http.NewServeMux()
		mux.HandleFunc("/name", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "name %d", i)
		})
		mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
			ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer ws.Close()
			ws.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, "ws %d", i))
			ws.ReadMessage() // until the client goes
		})
		mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
			// A length, which ReverseProxy takes for a response it may
			// buffer: only FlushInterval -1 passes the flush on.
			w.Header().Set("Content-Length", "1000")
			fmt.Fprintf(w, "stream %d\n", i)
			http.NewResponseController(w).Flush()
			<-r.Context().Done()
		})
		srv := httptest.NewServer(mux)
		t.Cleanup(func() {
			srv.CloseClientConnections()
			srv.Close()
		})
		urls = append(urls, srv.URL)
	}
	return urls
}

func TestRoundRobin(t *testing.T) {
	front := httptest.NewServer(conformance.RoundRobin(backends(t, 3)))
	t.Cleanup(front.Close)
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
	defer cancel()

	t.Run("in turn", func(t *testing.T) {
		var got []string
		for range 7 {
			got = append(got, get(ctx, t, front.URL+"/name"))
		}
		// Whichever node comes first, each next request goes to the next:
		// no stickiness, though every request comes from one client on
		// one connection.
		var first int
		fmt.Sscanf(got[0], "name %d", &first)
		for k, g := range got {
			if want := fmt.Sprintf("name %d", (first+k)%3); g != want {
				t.Fatalf("requests went to %q, not to each node in turn", got)
			}
		}
	})

	t.Run("websocket", func(t *testing.T) {
		seen := map[string]bool{}
		for range 3 {
			ws, _, err := websocket.DefaultDialer.DialContext(ctx, "ws"+strings.TrimPrefix(front.URL, "http")+"/ws", nil)
			if err != nil {
				t.Fatalf("upgrade through the proxy: %v", err)
			}
			_, p, err := ws.ReadMessage()
			ws.Close()
			if err != nil {
				t.Fatalf("read through the proxy: %v", err)
			}
			seen[string(p)] = true
		}
		if len(seen) != 3 {
			t.Fatalf("three upgrades reached %v, want every node once", seen)
		}
	})

	t.Run("stream flushed", func(t *testing.T) {
		// The backend holds its response open after the first line, so the
		// line arrives only if the proxy passes each flush on at once.
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, front.URL+"/stream", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "stream ") {
			t.Fatalf("first line %q, %v; want it before the response ends", line, err)
		}
	})
}

// get returns the body of a GET of u.
func get(ctx context.Context, t *testing.T, u string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %q, %v", u, resp.StatusCode, b, err)
	}
	return string(b)
}

// behindRoundRobin is the Factory of one node behind RoundRobin: a cluster
// of one, which holds every promise a single handler does, so the suite
// run on it checks that the load balancer and the suite's view of a
// server (every request through a proxy, Handlers read as a set) change
// nothing by themselves.
func behindRoundRobin(t *testing.T, opts *session.Options, eo conformance.EnvOptions) *conformance.Server {
	t.Helper()
	o := *opts
	o.Logger = opts.Logger.With("node", 0)
	h := conformance.NewHandler(&o, eo)
	var handler http.Handler = h
	if eo.Wrap != nil {
		handler = eo.Wrap(handler)
	}
	node := httptest.NewUnstartedServer(handler)
	front := httptest.NewUnstartedServer(nil)
	if eo.Listener != nil {
		front.Listener = eo.Listener(front.Listener)
	}
	s := &conformance.Server{Handlers: []*session.Handler{h}}
	if eo.HTTP2 {
		node.EnableHTTP2, front.EnableHTTP2 = true, true
		node.StartTLS()
		rr := conformance.RoundRobin([]string{node.URL})
		rr.Transport = node.Client().Transport
		front.Config.Handler = rr
		front.StartTLS()
		s.Client = front.Client()
	} else {
		node.Start()
		front.Config.Handler = conformance.RoundRobin([]string{node.URL})
		front.Start()
	}
	s.URL = front.URL + h.Options().Prefix
	t.Cleanup(func() {
		front.CloseClientConnections()
		front.Close()
		node.CloseClientConnections()
		node.Close() // and its client's idle connections, the proxy's on HTTP/2
	})
	return s
}

func TestConformanceBehindRoundRobin(t *testing.T) { conformance.Run(t, behindRoundRobin) }
