package conformance

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/seed-544bbf9f/comet/session"
)

// Brokers makes the brokers of one cluster: a Broker for each node, all
// joined, their cleanup registered with t.
type Brokers func(t *testing.T, nodes int) []session.Broker

// Cluster returns the Factory of a cluster of nodes handlers, each with
// its broker from brokers, behind a RoundRobin balancer: every request of
// a session may land on any node. Each node's logger names it.
func Cluster(nodes int, brokers Brokers) Factory {
	return func(t *testing.T, opts *session.Options, eo EnvOptions) *Server {
		t.Helper()
		bs := brokers(t, nodes)
		s := &Server{}
		var urls []string
		var servers []*httptest.Server
		for _, b := range bs {
			o := *opts
			o.Broker = b
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
