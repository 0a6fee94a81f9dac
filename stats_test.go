package comet_test

import (
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/transport"
)

func TestStats(t *testing.T) { runTransports(t, testStats) }

// testStats checks the counters of one session's life on each transport:
// open on its transport, every message counted each way, one attach
// observed, closed by the client's code.
func testStats(t *testing.T, name string) {
	e := newEnv(t, name, nil)
	ctx := testContext(t, 20*time.Second)
	c := e.dial(ctx, nil)
	s := e.session(ctx)
	const n = 3
	for range n {
		if err := c.Send(ctx, transport.Text, []byte("ping")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Recv(ctx); err != nil {
			t.Fatal(err)
		}
	}

	var st comet.Stats = e.h.Stats()
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
	st = e.h.Stats()
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
