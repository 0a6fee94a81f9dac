package conformance

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/session"
)

// Brokers makes the brokers of one cluster: a Broker for each node, all
// joined, their cleanup registered with t.
type Brokers func(t *testing.T, nodes int) []session.Broker

// Cluster returns the Factory of a cluster of nodes handlers, each with
// its broker from brokers, behind a RoundRobin balancer: every request of
// a session may land on any node. Each node's logger names it.
func Cluster(nodes int, brokers Brokers) Factory { return cluster(nodes, brokers, false) }

// FailoverCluster is Cluster with Options.Failover: every session keeps
// its log in its broker's store, which must be a session.SessionStore.
// Everything the suite checks holds with failover as without.
func FailoverCluster(nodes int, brokers Brokers) Factory { return cluster(nodes, brokers, true) }

func cluster(nodes int, brokers Brokers, failover bool) Factory {
	return func(t *testing.T, opts *session.Options, eo EnvOptions) *Server {
		t.Helper()
		bs := brokers(t, nodes)
		s := &Server{}
		var urls []string
		var servers []*httptest.Server
		for _, b := range bs {
			o := *opts
			o.Broker = b
			o.Failover = failover
			o.Logger = opts.Logger.With("node", b.Node())
			h := NewHandler(&o, eo)
			var handler http.Handler = h
			if eo.Wrap != nil {
				handler = eo.Wrap(handler)
			}
			node := httptest.NewUnstartedServer(handler)
			if eo.HTTP2 {
				node.EnableHTTP2 = true
				node.StartTLS()
			} else {
				node.Start()
			}
			servers = append(servers, node)
			urls = append(urls, node.URL)
			s.Handlers = append(s.Handlers, h)
		}
		awaitJoined(t, bs)
		front := httptest.NewUnstartedServer(nil)
		if eo.Listener != nil {
			front.Listener = eo.Listener(front.Listener)
		}
		rr := RoundRobin(urls)
		if eo.HTTP2 {
			// httptest gives every server the same test certificate, so
			// the first node's client trusts them all.
			rr.Transport = servers[0].Client().Transport
			front.Config.Handler = rr
			front.EnableHTTP2 = true
			front.StartTLS()
			s.Client = front.Client()
		} else {
			front.Config.Handler = rr
			front.Start()
		}
		s.URL = front.URL + s.Handlers[0].Options().Prefix
		t.Cleanup(func() {
			front.CloseClientConnections()
			front.Close()
			for _, node := range servers {
				node.CloseClientConnections()
				node.Close()
			}
		})
		return s
	}
}

// awaitJoined waits until every broker reaches its store and sees every
// node alive: a node answers 503 until its broker has announced it. It
// looks every few milliseconds, for a bounded time, since the brokers'
// state is another process's.
func awaitJoined(t *testing.T, bs []session.Broker) {
	t.Helper()
	joined := func() bool {
		for _, b := range bs {
			if b.Err() != nil {
				return false
			}
			for _, o := range bs {
				if !b.Alive(o.Node()) {
					return false
				}
			}
		}
		return true
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(testutil.Wait)
	for !joined() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("the cluster's %d nodes did not join within %v", len(bs), testutil.Wait)
		}
	}
}

// MemoryBrokers is the Brokers of a session.MemoryCluster.
func MemoryBrokers(t *testing.T, nodes int) []session.Broker {
	c := session.NewMemoryCluster()
	bs := make([]session.Broker, nodes)
	for i := range nodes {
		n := c.Node(nodeName(i))
		t.Cleanup(func() { n.Close() })
		bs[i] = n
	}
	return bs
}

func nodeName(i int) string { return "n" + string(rune('1'+i)) }
