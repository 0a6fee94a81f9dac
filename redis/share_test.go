package redis

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/transport"
)

// TestShareThroughRoundRobin runs a carrier of shared attachments
// (PROTOCOL.md section 16) on real Redis brokers behind a round-robin
// front: the carrier lives on the node its opening reached, and its ops
// and polls, spread over every node, are forwarded to it; its
// sub-requests, a session's attach and POST, reach the session's node.
// The session's echo comes back through the carrier.
func TestShareThroughRoundRobin(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	// A Hold that a busy machine's echo cannot outlast: the poll carried
	// must answer with the echo, not a heartbeat.
	tc := newTestCluster(t, r, clusterOpts{Session: comet.Options{Hold: testutil.Wait}})
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: testutil.Wait}
	do := func(method, target, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, tc.front+target, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	status, hello := do(http.MethodGet, "/share?v=1", "")
	var o []any
	if status != http.StatusOK || json.Unmarshal([]byte(hello), &o) != nil || len(o) != 3 {
		t.Fatalf("open: %d %q", status, hello)
	}
	id := o[1].(string)
	n := negotiate(t, tc.front)
	prefix := tc.nodes[0].h.Options().Prefix
	q := url.Values{}
	transport.AttachParams{Session: n.SessionID, Ticket: n.Tickets[0], Attempt: 1, Deliver: true}.Encode(q)
	secret, _ := json.Marshal(n.Secret)
	up := `["k",` + string(secret) + `,0,0]` + "\n" + `["m",1,"hi"]` + "\n"
	ops, _ := json.Marshal([]any{
		[]any{1, "GET", prefix + "/longpoll?" + q.Encode()},
		[]any{2, "POST", prefix + "/send?v=1&s=" + url.QueryEscape(n.SessionID), up},
	})
	// Several ops POSTs, so that the round robin sends some to other
	// nodes: each starts nothing twice.
	for range len(tc.nodes) {
		if status, body := do(http.MethodPost, "/share?v=1&c="+url.QueryEscape(id), string(ops)); status != http.StatusOK {
			t.Fatalf("ops: %d %q", status, body)
		}
	}
	var ack uint64
	got := map[float64]string{}
	ends := map[float64]bool{}
	for i := 0; !ends[1] || !ends[2]; i++ {
		if i == 50 {
			t.Fatalf("the carrier did not deliver both answers: %v", got)
		}
		status, body := do(http.MethodGet, "/share?v=1&c="+url.QueryEscape(id)+"&n="+strconv.FormatUint(ack, 10), "")
		if status != http.StatusOK {
			t.Fatalf("poll: %d %q", status, body)
		}
		for line := range strings.Lines(body) {
			var f []any
			if err := json.Unmarshal([]byte(line), &f); err != nil {
				t.Fatalf("frame %q: %v", line, err)
			}
			ack = uint64(f[0].(float64))
			switch f[2] {
			case "d":
				got[f[1].(float64)] += f[3].(string)
			case "e":
				ends[f[1].(float64)] = true
			}
		}
	}
	if got[2] != `["a",1]`+"\n" || !strings.Contains(got[1], `["m",1,"hi"]`) {
		t.Errorf("answers through the carrier: POST %q, poll %q", got[2], got[1])
	}
}
