package session

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

func TestStatsWindow(t *testing.T) {
	for _, tc := range []struct {
		name                      string
		slow                      bool
		send                      func(s *Session) error
		waits, skipped, slowClose uint64
	}{
		{"TrySend", false, func(s *Session) error { return s.TrySend(transport.Text, []byte("b")) }, 0, 1, 0},
		{"Send", false, func(s *Session) error {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return s.Send(ctx, transport.Text, []byte("b"))
		}, 1, 0, 0},
		{"CloseSlowConsumers", true, func(s *Session) error { return s.TrySend(transport.Text, []byte("b")) }, 0, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newTestHandler(t, &Options{WindowMessages: 1, CloseSlowConsumers: tc.slow})
			s := newTestSession(t, h)
			mustSend(t, s, "a")
			if err := tc.send(s); err == nil {
				t.Fatal("a send to a full window succeeded")
			}
			st := h.Stats()
			if st.SendWaits != tc.waits || st.SendsSkipped != tc.skipped || st.SlowConsumerCloses != tc.slowClose {
				t.Fatalf("waits, skipped, slow closes = %d, %d, %d; want %d, %d, %d",
					st.SendWaits, st.SendsSkipped, st.SlowConsumerCloses, tc.waits, tc.skipped, tc.slowClose)
			}
		})
	}
}

func TestStatsSessionLife(t *testing.T) {
	t.Parallel()
	h := newTestHandler(t, nil)
	s := newTestSession(t, h)
	if st := h.Stats(); st.SessionsOpened != 1 || st.SessionsOpen[""] != 1 {
		t.Fatalf("before attach: opened %d, open %v; want 1 unattached", st.SessionsOpened, st.SessionsOpen)
	}
	a := attachStream(t, s, deliver(1, 0))
	a.ds.expect(t, `["o",1,0,"T",25000]`)
	mustUpstream(t, s, `["m",1,"hi"]`, `["m",2,"there"]`)
	mustSend(t, s, "back")
	a.ds.expect(t, `["m",1,"back"]`)

	p := deliver(2, 1)
	p.Reason = "ws_silent"
	b := serve(t, s, transport.SSE, newFake(t), transport.Stream, p)
	b.ds.expect(t, `["o",2,2,"T",25000]`)
	// The first attachment counts what it wrote after each write returns:
	// once superseded and ended, it has counted everything.
	waitFor(t, a.exited, "the superseded attachment to end")

	st := h.Stats()
	if st.SessionsOpen[transport.SSE] != 1 || st.SessionsOpen[""] != 0 || st.SessionsOpen[transport.WebSocket] != 0 {
		t.Errorf("SessionsOpen = %v, want 1 on sse", st.SessionsOpen)
	}
	if st.TransportChanges["ws_silent"] != 1 || len(st.TransportChanges) != 1 {
		t.Errorf("TransportChanges = %v, want ws_silent: 1", st.TransportChanges)
	}
	if st.AttachLatency.Count != 1 || st.AttachLatency.Sum <= 0 {
		t.Errorf("AttachLatency = %+v, want one observation", st.AttachLatency)
	}
	if st.MessagesIn[transport.WebSocket] != 2 {
		t.Errorf("MessagesIn = %v, want 2 on websocket", st.MessagesIn)
	}
	if st.MessagesOut[transport.WebSocket] != 1 || st.BytesOut[transport.WebSocket] == 0 {
		t.Errorf("out on websocket: %d messages, %d bytes; want 1 and some", st.MessagesOut[transport.WebSocket], st.BytesOut[transport.WebSocket])
	}

	s.CloseNow()
	waitFor(t, s.Done(), "the session to finish")
	st = h.Stats()
	if st.SessionsOpen[transport.SSE] != 0 || st.SessionsClosed[transport.CloseNormal] != 1 {
		t.Errorf("after CloseNow: open %v, closed %v; want none open, one 1000", st.SessionsOpen, st.SessionsClosed)
	}
}

func TestStatsRefusals(t *testing.T) {
	t.Parallel()
	h := NewHandler(&Options{Logger: newTestHandler(t, nil).logger, NegotiateRate: 0.001, NegotiateBurst: 2,
		Serve: func(s *Session) { <-s.Context().Done() }}, offerOnly(transport.WebSocket))
	t.Cleanup(func() { h.Shutdown(context.Background()) })
	negotiate := func(v, body string) int {
		r := httptest.NewRequest(http.MethodPost, "/comet/negotiate?v="+v, strings.NewReader(body))
		r.RemoteAddr = "192.0.2.1:1234"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	for _, c := range []struct {
		v, body string
		want    int
	}{
		{"2", `{}`, http.StatusBadRequest},
		{"1", `{`, http.StatusBadRequest},
		{"1", `{}`, http.StatusOK},
		{"1", `{}`, http.StatusTooManyRequests},
	} {
		if got := negotiate(c.v, c.body); got != c.want {
			t.Fatalf("negotiate v=%s %s: %d, want %d", c.v, c.body, got, c.want)
		}
	}
	st := h.Stats()
	want := map[string]uint64{transport.CodeUnsupportedVersion: 1, transport.CodeBadRequest: 1, transport.CodeRateLimited: 1}
	if len(st.NegotiateRefusals) != len(want) {
		t.Errorf("NegotiateRefusals = %v, want %v", st.NegotiateRefusals, want)
	}
	for code, n := range want {
		if st.NegotiateRefusals[code] != n {
			t.Errorf("NegotiateRefusals = %v, want %v", st.NegotiateRefusals, want)
		}
	}
	if st.RateLimited != 1 || st.SessionsOpened != 1 {
		t.Errorf("RateLimited %d, SessionsOpened %d; want 1 and 1", st.RateLimited, st.SessionsOpened)
	}

	w := httptest.NewRecorder()
	h.ServeStats(w, httptest.NewRequest(http.MethodGet, "/stats", nil))
	var got map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("ServeStats: %v in %s", err, w.Body)
	}
	if got["rate_limited"] != 1.0 || got["sessions_opened"] != 1.0 {
		t.Errorf("ServeStats = %s", w.Body)
	}
}

// TestCountingAllocates checks that what the per-message paths count
// allocates nothing; BenchmarkSendDeliver measures the whole path.
func TestCountingAllocates(t *testing.T) {
	h := newTestHandler(t, nil)
	s := newTestSession(t, h)
	a := s.newAttachment(transport.WebSocket, deliver(1, 0))
	var b transport.Batch
	b.AppendMessage(transport.TypeText, 1, []byte(`"tick"`))
	for name, f := range map[string]func(){
		"countOut":  func() { a.countOut(&b) },
		"closed":    func() { h.counters.closed.add(4321) },
		"refused":   func() { h.counters.refused(transport.CodeOverloaded) },
		"histogram": func() { h.counters.attach.observe(30 * time.Millisecond) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocations, want 0", name, n)
		}
	}
}
