package comet_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// memCluster is three nodes of a memory cluster behind a round-robin
// proxy, with the requests each node served per session.
type memCluster struct {
	url      string   // the balancer's
	direct   []string // each node's, in node order
	handlers []*session.Handler
	nodes    []*session.MemoryNode
	cluster  *session.MemoryCluster
	servers  []*httptest.Server
	conns    []*testutil.Listener // each node's, which can cut every connection
	// out marks the nodes the balancer no longer sends requests to, as
	// a balancer does once a node fails its health check.
	out []atomic.Bool

	mu     sync.Mutex
	served map[string]map[string]int // session → node → requests
}

func newMemCluster(t *testing.T, n int, opts *session.Options) *memCluster {
	t.Helper()
	mc := &memCluster{served: make(map[string]map[string]int), out: make([]atomic.Bool, n)}
	cl := session.NewMemoryCluster()
	mc.cluster = cl
	var backends []*url.URL
	for i := range n {
		var o session.Options
		if opts != nil {
			o = *opts
		}
		if o.Serve == nil {
			o.Serve = echo
		}
		o.NegotiateRate = -1
		node := cl.Node(fmt.Sprintf("n%d", i+1))
		o.Broker = node
		h := comet.NewHandler(&o)
		id := node.Node()
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if s := r.URL.Query().Get("s"); s != "" {
				mc.mu.Lock()
				if mc.served[s] == nil {
					mc.served[s] = make(map[string]int)
				}
				mc.served[s][id]++
				mc.mu.Unlock()
			}
			h.ServeHTTP(w, r)
		}))
		conns := testutil.TrackConns(srv.Listener)
		srv.Listener = conns
		srv.Start()
		u, _ := url.Parse(srv.URL)
		backends = append(backends, u)
		mc.direct = append(mc.direct, srv.URL+"/comet")
		mc.handlers = append(mc.handlers, h)
		mc.nodes = append(mc.nodes, node)
		mc.servers = append(mc.servers, srv)
		mc.conns = append(mc.conns, conns)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
			defer cancel()
			h.Range(func(s *session.Session) bool { s.CloseNow(); return true })
			h.Shutdown(ctx)
			srv.CloseClientConnections()
			srv.Close()
			node.Close()
		})
	}
	var next atomic.Uint64
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			i := next.Add(1) % uint64(len(backends))
			for k := 0; k < len(backends) && mc.out[i].Load(); k++ {
				i = (i + 1) % uint64(len(backends))
			}
			pr.SetURL(backends[i])
		},
		FlushInterval: -1,
	}
	lb := httptest.NewServer(proxy)
	t.Cleanup(func() {
		lb.CloseClientConnections()
		lb.Close()
	})
	mc.url = lb.URL + "/comet"
	return mc
}

// TestClusterEcho runs sessions through three nodes behind a round-robin
// balancer: every request of a session may land on any node, and every
// message arrives once, in order, both ways. With SeparateNegotiate the
// session is made by a negotiate POST, so that even a WebSocket attaches
// through a node other than the session's (two times in three).
func TestClusterEcho(t *testing.T) {
	for _, separate := range []bool{false, true} {
		t.Run(map[bool]string{false: "first-attach", true: "separate-negotiate"}[separate], func(t *testing.T) {
			runTransports(t, func(t *testing.T, name string) { testClusterEcho(t, name, separate) })
		})
	}
}

func testClusterEcho(t *testing.T, name string, separate bool) {
	mc := newMemCluster(t, 3, nil)
	ctx := testContext(t, testutil.Wait)
	c, err := client.Dial(ctx, mc.url, &client.Options{Transports: []string{name}, SeparateNegotiate: separate})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close(transport.CloseNormal, "done")
	const n = 1000
	go func() {
		for i := range n {
			if err := c.Send(ctx, transport.Text, fmt.Appendf(nil, "m%d", i)); err != nil {
				t.Errorf("Send %d: %v", i, err)
				return
			}
		}
	}()
	for i := range n {
		_, p, err := c.Recv(ctx)
		if err != nil {
			t.Fatalf("Recv %d: %v", i, err)
		}
		if want := fmt.Sprintf("m%d", i); string(p) != want {
			t.Fatalf("message %d = %q, want %q", i, p, want)
		}
	}
	mc.mu.Lock()
	defer mc.mu.Unlock()
	for sid, nodes := range mc.served {
		t.Logf("session %s: requests per node %v", sid, nodes)
		if name != transport.WebSocket && len(nodes) < 2 {
			t.Errorf("session %s: every request went to one node: %v", sid, nodes)
		}
	}
}

// runTransports runs test on every transport, in parallel.
func runTransports(t *testing.T, test func(t *testing.T, name string)) {
	t.Helper()
	for _, name := range transport.Order() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, name)
		})
	}
}

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// echo is a Serve that sends back what it receives.
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

// TestClusterBroadcast broadcasts on one node of three: the sessions of
// every node get the message, in the order broadcast; the count is the
// broadcasting node's sessions.
func TestClusterBroadcast(t *testing.T) {
	ready := make(chan struct{}, 8)
	mc := newMemCluster(t, 3, &session.Options{Serve: func(s *session.Session) {
		ready <- struct{}{}
		<-s.Context().Done()
	}})
	ctx := testContext(t, testutil.Wait)
	var conns []*client.Conn
	for i := range 6 {
		c, err := client.Dial(ctx, mc.direct[i%3], &client.Options{Transports: []string{transport.Order()[i%4]}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(transport.CloseNormal, "")
		conns = append(conns, c)
		<-ready
	}
	for i := range 20 {
		m, err := mc.handlers[0].NewPreparedMessage(transport.Text, fmt.Appendf(nil, "b%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if n := mc.handlers[0].Broadcast(m); n != 2 {
			t.Fatalf("Broadcast counted %d sessions, want node 1's 2", n)
		}
	}
	for i, c := range conns {
		for j := range 20 {
			_, p, err := c.Recv(ctx)
			if err != nil || string(p) != fmt.Sprintf("b%d", j) {
				t.Fatalf("session %d (node %d), broadcast %d: %q, %v", i, i%3+1, j, p, err)
			}
		}
	}
}
