package session

import (
	"errors"
	"testing"

	"github.com/seed-544bbf9f/comet/transport"
)

// TestBroadcast checks that a broadcast reaches every session with room in
// its window, skips the full ones (or, with CloseSlowConsumers, closes
// them) and the closed ones, and that every session shares the one
// encoding of the message.
func TestBroadcast(t *testing.T) {
	t.Parallel()
	broadcasts := []struct {
		name string
		fn   func(*Handler, []*Session, *PreparedMessage) int
	}{
		{"Handler.Broadcast", func(h *Handler, _ []*Session, m *PreparedMessage) int { return h.Broadcast(m) }},
		{"Broadcast", func(_ *Handler, ss []*Session, m *PreparedMessage) int { return Broadcast(ss, m) }},
	}
	for _, bc := range broadcasts {
		for _, closeSlow := range []bool{false, true} {
			name := bc.name
			if closeSlow {
				name += "/CloseSlowConsumers"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				h := newTestHandler(t, &Options{WindowMessages: 2, CloseSlowConsumers: closeSlow})
				ready, full, closed := newTestSession(t, h), newTestSession(t, h), newTestSession(t, h)
				mustSend(t, full, "1", "2")
				closed.Close(4000, "")
				m, err := h.NewPreparedMessage(transport.Text, []byte("news"))
				if err != nil {
					t.Fatal(err)
				}

				if n := bc.fn(h, []*Session{ready, full, closed}, m); n != 1 {
					t.Fatalf("the broadcast reached %d sessions, want 1", n)
				}
				ready.mu.Lock()
				e := ready.out.Entry(ready.out.Last())
				ready.mu.Unlock()
				if &e.Payload[0] != &m.encoded.Payload[0] {
					t.Error("the session holds a copy of the broadcast's encoding")
				}
				a := attachStream(t, ready, deliver(1, 0))
				a.ds.expect(t, `["o",1,0,"T",25000]`, `["m",1,"news"]`)

				if closeSlow {
					_, _, err := full.Recv(t.Context())
					if transport.CloseStatus(err) != transport.CloseSlowConsumer {
						t.Errorf("the full session: Recv = %v, want close 3002", err)
					}
				} else if err := full.Context().Err(); err != nil {
					t.Errorf("the full session was closed: %v", err)
				}
				full.mu.Lock()
				defer full.mu.Unlock()
				for seq := full.out.Acked() + 1; seq <= full.out.Last(); seq++ {
					if e := full.out.Entry(seq); e.Close == nil && &e.Payload[0] == &m.encoded.Payload[0] {
						t.Error("the full session took the broadcast")
					}
				}
			})
		}
	}
}

func TestPreparedMessage(t *testing.T) {
	t.Parallel()
	h := newTestHandler(t, &Options{WindowMessages: 1})
	s := newTestSession(t, h)
	m, err := h.NewPreparedMessage(transport.Binary, []byte{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.TrySendPrepared(m); err != nil {
		t.Fatal(err)
	}
	if err := s.TrySendPrepared(m); !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("TrySendPrepared to a full window = %v, want ErrWouldBlock", err)
	}
	mustUpstream(t, s, `["a",1]`)
	if err := s.SendPrepared(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	a := attachStream(t, s, deliver(1, 1))
	a.ds.expect(t, `["o",1,0,"T",25000]`, `["b",2,"AAE="]`)
}
