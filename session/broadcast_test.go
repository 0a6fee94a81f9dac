package session

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
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

// TestBroadcastInParts checks a broadcast to more sessions than one
// goroutine offers a message to: every open session takes each message,
// in the order of the broadcasts, and the count is theirs alone.
func TestBroadcastInParts(t *testing.T) {
	// Four CPUs' worth of parts, whatever the machine, the last shorter
	// than the others; and the sessions, which only queue, taken for
	// sessions that write.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	write := broadcastWrite
	broadcastWrite = 0
	defer func() { broadcastWrite = write }()
	h := newTestHandler(t, nil)
	all := make([]*Session, 3*broadcastPart+17)
	open := 0
	for i := range all {
		all[i] = newTestSession(t, h)
		if i%7 == 3 {
			all[i].Close(4000, "")
		} else {
			open++
		}
	}
	var sent []*PreparedMessage
	for i, bc := range []func(*PreparedMessage) int{
		func(m *PreparedMessage) int { return Broadcast(all, m) },
		h.Broadcast,
		func(m *PreparedMessage) int { return Broadcast(all, m) },
	} {
		m, err := h.NewPreparedMessage(transport.Text, fmt.Appendf(nil, "news %d", i))
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, m)
		if n := bc(m); n != open {
			t.Fatalf("broadcast %d reached %d sessions, want the %d open ones", i, n, open)
		}
	}
	for i, s := range all {
		s.mu.Lock()
		var got []*PreparedMessage
		for seq := s.out.Acked() + 1; seq <= s.out.Last(); seq++ {
			e := s.out.Entry(seq)
			for _, m := range sent {
				if e.Close == nil && &e.Payload[0] == &m.encoded.Payload[0] {
					got = append(got, m)
				}
			}
		}
		s.mu.Unlock()
		want := sent
		if i%7 == 3 {
			want = nil
		}
		if !slices.Equal(got, want) {
			t.Fatalf("session %d holds %d of the broadcasts, in an order of their own or none: %v, want %v", i, len(got), got, want)
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
