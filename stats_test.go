package comet_test

import (
	"context"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/internal/conformance"
	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// TestStats is not part of the conformance suite: the counters it reads
// are one handler's, and a cluster has no sum of them to compare.
func TestStats(t *testing.T) {
	for _, name := range transport.Order() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testStats(t, name)
		})
	}
}

// testStats checks the counters of one session's life on each transport:
// open on its transport, every message counted each way, one attach
// observed, closed by the client's code.
func testStats(t *testing.T, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h, c, sessions := statsServer(ctx, t, name)
	s := testutil.Receive(t, sessions, "session")
	const n = 3
	for range n {
		if err := c.Send(ctx, transport.Text, []byte("ping")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Recv(ctx); err != nil {
			t.Fatal(err)
		}
	}

	var st comet.Stats = h.Stats()
	if st.SessionsOpened != 1 || st.SessionsOpen[name] != 1 || st.SessionsOpen[""] != 0 {
		t.Errorf("opened %d, open %v; want 1 on %s", st.SessionsOpened, st.SessionsOpen, name)
	}
	if st.AttachLatency.Count != 1 || len(st.TransportChanges) != 0 {
		t.Errorf("attach latency %+v, changes %v; want one first attach and no change", st.AttachLatency, st.TransportChanges)
	}

	if err := c.Close(comet.CloseNormal, "done"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-ctx.Done():
		t.Fatal("the session did not finish after the client's close")
	}
	st = h.Stats()
	if st.SessionsOpen[name] != 0 || st.SessionsClosed[comet.CloseNormal] != 1 {
		t.Errorf("after the close: open %v, closed %v; want none open, one 1000", st.SessionsOpen, st.SessionsClosed)
	}
	// A write is counted once it returns, which may be after the client
	// has read it; the close frame, written after every echo, orders the
	// counts before the session's end.
	// A POST sent before the first attach delivered is counted under "".
	if in := st.MessagesIn[name] + st.MessagesIn[""]; in != n || st.MessagesOut[name] < n {
		t.Errorf("messages in %v, out %v; want %d each on %s (out may count resends)", st.MessagesIn, st.MessagesOut, n, name)
	}
	if st.BytesIn[name] == 0 || st.BytesOut[name] == 0 {
		t.Errorf("bytes in %v, out %v; want some on %s", st.BytesIn, st.BytesOut, name)
	}
}

// statsServer starts one echoing handler, shut down when the test ends,
// and dials it with a client forced onto the transport name; the server
// side of each session arrives on the channel returned.
func statsServer(ctx context.Context, t *testing.T, name string) (*session.Handler, *client.Conn, <-chan *session.Session) {
	t.Helper()
	sessions := make(chan *session.Session, 1)
	srv := conformance.SingleNode(t, &session.Options{
		Logger:        testutil.Logger(t),
		NegotiateRate: -1,
		Serve: func(s *session.Session) {
			sessions <- s
			ctx := s.Context()
			for {
				typ, p, err := s.Recv(ctx)
				if err != nil || s.Send(ctx, typ, p) != nil {
					return
				}
			}
		},
	}, conformance.EnvOptions{})
	h := srv.Handlers[0]
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	c, err := client.Dial(ctx, srv.URL, &client.Options{Transports: []string{name}})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close(transport.CloseNormal, "test over") })
	return h, c, sessions
}
