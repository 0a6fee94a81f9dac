package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/internal/leakcheck"
	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/transport"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// node is one node of the test's cluster, served by the program's own
// serve function.
type node struct {
	id   string
	addr string // 127.0.0.1:port
}

// startCluster starts n nodes on one fresh redis-server, each with
// -debug, and waits until each is healthy and sees every node alive.
// They are shut down, and their serve must return nil, when the test
// ends.
func startCluster(t *testing.T, n int) []node {
	t.Helper()
	r := testutil.StartRedis(t, "--maxmemory-policy", "noeviction")
	var nodes []node
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		ids := make(chan string, 1)
		done := make(chan error, 1)
		cfg := config{Redis: "redis://" + r.Addr + "/0", Debug: true, Logger: testutil.Logger(t)}
		go func() { done <- serve(ctx, ln, cfg, func(id string) { ids <- id }) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
		select {
		case id := <-ids:
			nodes = append(nodes, node{id: id, addr: ln.Addr().String()})
		case err := <-done:
			t.Fatalf("serve: %v", err)
		}
	}
	var names []string
	for _, nd := range nodes {
		names = append(names, "node="+nd.id)
	}
	deadline := time.After(testutil.Wait)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for _, nd := range nodes {
		for {
			var alive map[string]bool
			code := getJSON(t, "http://"+nd.addr+"/debug/alive?"+strings.Join(names, "&"), &alive)
			all := code == http.StatusOK && len(alive) == n
			for _, ok := range alive {
				all = all && ok
			}
			if all {
				break
			}
			select {
			case <-tick.C:
			case <-deadline:
				t.Fatalf("node %s does not see every node alive within %v: %v", nd.id, testutil.Wait, alive)
			}
		}
	}
	return nodes
}

// getJSON GETs url and decodes its JSON answer into v, returning the
// status.
func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %s %q: %v", url, resp.Status, body, err)
	}
	return resp.StatusCode
}

// roundRobin sends each request to the next node in turn, as a balancer
// without affinity does.
type roundRobin struct {
	nodes []node
	next  atomic.Uint64
	base  *http.Transport
}

func (rr *roundRobin) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.URL.Host = rr.nodes[rr.next.Add(1)%uint64(len(rr.nodes))].addr
	r.Host = ""
	return rr.base.RoundTrip(r)
}

// TestCluster runs three nodes on a real redis-server and checks what a
// balancer and a user see: each node's /whoami, /healthz and page, and a
// session on each transport whose requests go to every node in turn (a
// WebSocket, which is one request, is negotiated on one node and attached
// through another), echoing 200 messages each way in order.
func TestCluster(t *testing.T) {
	nodes := startCluster(t, 3)
	for _, nd := range nodes {
		if want := "n" + nd.addr[strings.LastIndexByte(nd.addr, ':')+1:]; nd.id != want {
			t.Errorf("node id %q, want %q (derived from the port)", nd.id, want)
		}
		var who, health map[string]string
		if code := getJSON(t, "http://"+nd.addr+"/whoami", &who); code != http.StatusOK || who["node"] != nd.id {
			t.Errorf("%s /whoami: %d %v", nd.addr, code, who)
		}
		if code := getJSON(t, "http://"+nd.addr+"/healthz", &health); code != http.StatusOK || health["node"] != nd.id {
			t.Errorf("%s /healthz: %d %v", nd.addr, code, health)
		}
		resp, err := http.Get("http://" + nd.addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get(comet.NodeHeader) != nd.id ||
			!strings.Contains(string(body), `<script src="/comet/comet.js">`) {
			t.Errorf("%s /: %s, %s %q, %d bytes", nd.addr, resp.Status, comet.NodeHeader, resp.Header.Get(comet.NodeHeader), len(body))
		}
	}

	for _, name := range []string{transport.WebSocket, transport.SSE, transport.Streaming, transport.LongPoll} {
		t.Run(name, func(t *testing.T) {
			rr := &roundRobin{nodes: nodes, base: &http.Transport{}}
			defer rr.base.CloseIdleConnections()
			opts := &client.Options{Transports: []string{name}, HTTPClient: &http.Client{Transport: rr}}
			if name == transport.WebSocket {
				// Negotiate (a POST) on one node, attach on the next.
				var d net.Dialer
				opts.SeparateNegotiate = true
				opts.HTTPClient = &http.Client{Transport: rr.base}
				opts.NetDialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
					return d.DialContext(ctx, network, nodes[1].addr)
				}
			}
			sid, counts := testEcho(t, nodes, "http://"+nodes[0].addr+"/comet", opts)
			t.Logf("session %s: requests per node %v", sid, counts)
			if name == transport.WebSocket {
				if owner, _, _ := strings.Cut(sid, "."); owner != nodes[0].id || len(counts) != 1 || counts[nodes[1].id] == 0 {
					t.Errorf("session %s, negotiated on %s: attach served by %v, want %s", sid, nodes[0].id, counts, nodes[1].id)
				}
			} else if len(counts) != len(nodes) {
				t.Errorf("session %s: requests served by %d node(s), want all %d: %v", sid, len(counts), len(nodes), counts)
			}
		})
	}
}

// testEcho dials url with opts, echoes n messages each way in order, and
// returns the session's id and how many of its requests each node served
// (as /debug/served counts them).
func testEcho(t *testing.T, nodes []node, url string, opts *client.Options) (string, map[string]int) {
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
	defer cancel()
	c, err := client.Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.CloseNow()
	const n = 200
	sent := make(chan error, 1)
	go func() {
		for i := range n {
			if err := c.Send(ctx, transport.Text, fmt.Appendf(nil, "m%d", i)); err != nil {
				sent <- fmt.Errorf("Send %d: %w", i, err)
				return
			}
		}
		sent <- nil
	}()
	for i := range n {
		typ, p, err := c.Recv(ctx)
		if err != nil {
			t.Fatalf("Recv %d: %v", i, err)
		}
		if want := fmt.Sprintf("m%d", i); typ != transport.Text || string(p) != want {
			t.Fatalf("message %d = %v %q, want %q", i, typ, p, want)
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if got, want := c.Transport(), opts.Transports[0]; got != want {
		t.Errorf("transport %q, want %q", got, want)
	}
	sid := c.SessionID()
	if err := c.Close(transport.CloseNormal, "done"); err != nil {
		t.Fatalf("Close: %v", err)
	}
	counts := map[string]int{}
	for _, nd := range nodes {
		var s served
		getJSON(t, "http://"+nd.addr+"/debug/served?s="+sid, &s)
		if s.Requests > 0 {
			counts[nd.id] = s.Requests
		}
	}
	return sid, counts
}
