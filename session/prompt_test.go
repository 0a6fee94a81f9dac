package session

import (
	"slices"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// promptFake is a fake downstream whose writes never wait
// (transport.PromptDownstream), as a WebSocket on a plain TCP socket.
type promptFake struct{ *fakeDownstream }

func (promptFake) WritesPromptly() bool { return true }

// startPrompt starts an attachment of s on a prompt fake, as the WebSocket
// adapter does: with Start, no goroutine of the attachment's.
func startPrompt(t *testing.T, s *Session, p transport.AttachParams) *fakeDownstream {
	t.Helper()
	ds := newFake(t)
	a := s.newAttachment(transport.WebSocket, p)
	if err := a.Start(promptFake{ds}, transport.Stream); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.End(nil) })
	return ds
}

// quiet makes s's delivering attachment's last write long past, as if
// promptGap had gone by since (a write closer to the last goes to a
// goroutine, to batch).
func quiet(s *Session) {
	s.mu.Lock()
	s.deliverer.lastWrite = time.Time{}
	s.mu.Unlock()
}

// TestPromptWritesFromSender: on a downstream that never waits, the open
// frame is written before Start returns, a message before Send returns
// and a broadcast before Broadcast returns, each from the calling
// goroutine: nothing is handed to a writer goroutine.
func TestPromptWritesFromSender(t *testing.T) {
	t.Parallel()
	h := newTestHandler(t, nil)
	s := newTestSession(t, h)
	ds := startPrompt(t, s, deliver(1, 0))
	written := func(want ...string) {
		t.Helper()
		select {
		case frames := <-ds.batches:
			if got := wire(frames); !slices.Equal(got, want) {
				t.Fatalf("written %q, want %q", got, want)
			}
		default:
			t.Fatalf("nothing written by the time the call returned; want %q", want)
		}
	}
	written(`["o",1,0,"T",25000]`)
	quiet(s)
	mustSend(t, s, "hello")
	written(`["m",1,"hello"]`)
	others := []*Session{s, newTestSession(t, h), newTestSession(t, h)}
	fakes := []*fakeDownstream{ds, startPrompt(t, others[1], deliver(1, 0)), startPrompt(t, others[2], deliver(1, 0))}
	for _, f := range fakes[1:] {
		f.next(t) // the open frame
	}
	for _, o := range others {
		quiet(o)
	}
	m, err := h.NewPreparedMessage(transport.Text, []byte("all"))
	if err != nil {
		t.Fatal(err)
	}
	if n := Broadcast(others, m); n != 3 {
		t.Fatalf("Broadcast reached %d sessions, want 3", n)
	}
	written(`["m",2,"all"]`)
	for _, f := range fakes[1:] {
		select {
		case frames := <-f.batches:
			if got := wire(frames); !slices.Equal(got, []string{`["m",1,"all"]`}) {
				t.Fatalf("broadcast wrote %q", got)
			}
		default:
			t.Fatal("a broadcast was not written by the time Broadcast returned")
		}
	}
}
