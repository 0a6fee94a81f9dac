package session_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/longpoll"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// clusterLives serves n handlers joined by a MemoryCluster, each on its
// own loopback server: what a balancer with no affinity spreads requests
// over.
func clusterLives(t *testing.T, n int) []*live {
	t.Helper()
	cl := session.NewMemoryCluster()
	var nodes []*live
	for i := range n {
		node := cl.Node(string(rune('a' + i)))
		o := session.Options{
			Logger:        testutil.Logger(t),
			NegotiateRate: -1,
			Grace:         time.Second,
			Broker:        node,
			Serve:         func(s *session.Session) { <-s.Context().Done() },
		}
		// Cleanups run last first: the node leaves after its handler.
		t.Cleanup(func() { node.Close() })
		l := serveLive(t, session.NewHandler(&o, longpoll.New()))
		nodes = append(nodes, l)
	}
	return nodes
}

// TestShareCluster opens a carrier on one node and sends its ops and
// polls to the others: they forward them to the carrier's node, whose
// sub-requests reach a session of a third node, and back.
func TestShareCluster(t *testing.T) {
	t.Parallel()
	nodes := clusterLives(t, 3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	id := a.openPolls(t)
	if !strings.HasPrefix(id, "a.") {
		t.Fatalf("carrier id %q does not name its node", id)
	}
	n := c.negotiate(t)
	s := c.session(t, n)
	b.opsOK(t, id,
		[]any{1, "GET", attachTarget(transport.LongPoll, transport.AttachParams{Session: n.SessionID, Ticket: n.Tickets[0], Attempt: 1, Deliver: true})},
		[]any{2, "POST", sendTarget(n.SessionID), batch(key(n.Secret, 0, false), text(1, "up"))},
	)
	var cr carrierReader
	b.pollUntil(t, id, &cr, ended(&cr, 2))
	if r := cr.subs[2]; r.status != http.StatusOK || r.body != `["a",1]`+"\n" {
		t.Errorf("POST through b, a and c: %d %q", r.status, r.body)
	}
	wantRecv(t, s, "up")
	if err := s.Send(t.Context(), transport.Text, []byte("down")); err != nil {
		t.Fatal(err)
	}
	c.pollUntil(t, id, &cr, ended(&cr, 1))
	if !strings.Contains(cr.subs[1].body, `"down"`) {
		t.Errorf("poll through c, a and c: %q", cr.subs[1].body)
	}
	// A carrier of a node that is not there, and a stream's id polled.
	resp, body := b.do(t, http.MethodGet, prefix+"/share?v=1&c=z.nope&n=0", nil, "")
	wantError(t, resp, body, http.StatusNotFound, transport.CodeShareNotFound)
	resp, body = b.do(t, http.MethodPost, prefix+"/share?v=1&c=a.nope", textPlain, "[]")
	wantError(t, resp, body, http.StatusNotFound, transport.CodeShareNotFound)
	resp, body = c.do(t, http.MethodPost, prefix+"/share?v=1&c="+id, textPlain, "[[1,")
	wantError(t, resp, body, http.StatusBadRequest, transport.CodeMalformed)
}
