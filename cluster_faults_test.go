package comet_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// negotiateAt negotiates a session on one node directly.
func negotiateAt(t *testing.T, base, body string) *transport.NegotiateResponse {
	t.Helper()
	resp, err := http.Post(base+"/negotiate?v=1", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	n, err := transport.ParseNegotiateResponse(answer)
	if err != nil {
		t.Fatalf("negotiate: %d %s: %v", resp.StatusCode, answer, err)
	}
	return n
}

// pollAt makes one long-poll attach on a node and returns its status,
// error code (if any) and body.
func pollAt(t *testing.T, base string, n *transport.NegotiateResponse, ticket string, attempt uint64) (int, string, string) {
	t.Helper()
	p := transport.AttachParams{Session: n.SessionID, Ticket: ticket, Attempt: attempt, Deliver: true}
	q := url.Values{}
	p.Encode(q)
	resp, err := http.Get(base + "/longpoll?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var eb transport.ErrorBody
	if resp.StatusCode != http.StatusOK {
		json.Unmarshal(body, &eb)
	}
	return resp.StatusCode, eb.Code, string(body)
}

// TestClusterNodeHeader checks that every answer names its node and that
// a session's id names the node that made it.
func TestClusterNodeHeader(t *testing.T) {
	mc := newMemCluster(t, 2, nil)
	for i, base := range mc.direct {
		resp, err := http.Post(base+"/negotiate?v=1", "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		n, err := transport.ParseNegotiateResponse(body)
		if err != nil {
			t.Fatal(err)
		}
		node := mc.nodes[i].Node()
		if got := resp.Header.Get(session.NodeHeader); got != node {
			t.Errorf("node %d answered %s: %q, want %q", i, session.NodeHeader, got, node)
		}
		if !strings.HasPrefix(n.SessionID, node+".") {
			t.Errorf("session id %q made on %s does not name it", n.SessionID, node)
		}
	}
}

// TestClusterTicketOnce spends one ticket of a session made on one node
// on each of the others: the first attach is taken, the second refused,
// cluster-wide.
func TestClusterTicketOnce(t *testing.T) {
	mc := newMemCluster(t, 3, nil)
	n := negotiateAt(t, mc.direct[0], "")
	// A probe (no delivery) answers at once with its open frame.
	probe := func(base string, attempt uint64) (int, string) {
		p := transport.AttachParams{Session: n.SessionID, Ticket: n.Tickets[0], Attempt: attempt}
		q := url.Values{}
		p.Encode(q)
		resp, err := http.Get(base + "/longpoll?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var eb transport.ErrorBody
		json.Unmarshal(body, &eb)
		return resp.StatusCode, eb.Code
	}
	if status, code := probe(mc.direct[1], 1); status != http.StatusOK {
		t.Fatalf("first use of the ticket on node 2: %d %s", status, code)
	}
	if status, code := probe(mc.direct[2], 2); status != http.StatusForbidden || code != transport.CodeBadTicket {
		t.Fatalf("second use of the ticket on node 3: %d %q, want 403 %s", status, code, transport.CodeBadTicket)
	}
}

// TestClusterNodeGone closes a session's node: the others answer for its
// sessions 404 session_not_found at once, and its client's forwarded
// attachment ends.
func TestClusterNodeGone(t *testing.T) {
	mc := newMemCluster(t, 3, nil)
	n := negotiateAt(t, mc.direct[0], "")
	mc.nodes[0].Close()
	status, code, _ := pollAt(t, mc.direct[1], n, n.Tickets[0], 1)
	if status != http.StatusNotFound || code != transport.CodeSessionNotFound {
		t.Fatalf("attach on node 2 for a session of a gone node: %d %q, want 404 %s", status, code, transport.CodeSessionNotFound)
	}
	key := transport.AppendFrame(nil, &transport.Frame{Type: transport.TypeKey, Token: n.Secret})
	resp, err := http.Post(mc.direct[2]+"/send?v=1&s="+url.QueryEscape(n.SessionID), "text/plain", bytes.NewReader(key))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("POST on node 3 for a session of a gone node: %d, want 404", resp.StatusCode)
	}
}

// TestClusterBrokerDown cuts a node off its broker: its negotiates are
// refused with 503 and Retry-After, requests it would forward get 503,
// and after BrokerTimeout its own sessions close with 3008 for a client
// that understands it.
func TestClusterBrokerDown(t *testing.T) {
	mc := newMemCluster(t, 2, &session.Options{BrokerTimeout: 500 * time.Millisecond})
	ctx := testContext(t, testutil.Wait)
	c, err := client.Dial(ctx, mc.direct[1], &client.Options{Transports: []string{transport.WebSocket}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(transport.CloseNormal, "")
	other := negotiateAt(t, mc.direct[0], "")
	mc.nodes[1].SetDown(true)

	resp, err := http.Post(mc.direct[1]+"/negotiate?v=1", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var eb transport.ErrorBody
	json.Unmarshal(body, &eb)
	if resp.StatusCode != http.StatusServiceUnavailable || eb.Code != transport.CodeBrokerUnavailable || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("negotiate on a node without its broker: %d %s Retry-After %q", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	if status, code, _ := pollAt(t, mc.direct[1], other, other.Tickets[0], 1); status != http.StatusServiceUnavailable || code != transport.CodeBrokerUnavailable {
		t.Fatalf("forwarding without a broker: %d %q, want 503 %s", status, code, transport.CodeBrokerUnavailable)
	}
	_, _, err = c.Recv(ctx)
	var ce *transport.CloseError
	if !errors.As(err, &ce) || ce.Code != transport.CloseBrokerUnavailable {
		t.Fatalf("the session of a node without its broker ended with %v, want close 3008", err)
	}
}
