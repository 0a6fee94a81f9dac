package websocket_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// The session reads a WebSocket from the application's goroutine while
// it waits in Recv (transport.Reader). These tests pin what must not
// change for it: what arrives while the application is elsewhere is
// still read, and Recv still answers to the close and to its ctx.

// withinWait fails the test unless ch yields within testutil.Wait.
func withinWait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testutil.Wait):
		t.Fatalf("%s: nothing within %v", what, testutil.Wait)
		panic("unreachable")
	}
}

// waitReading waits until a goroutine waits on a connection in Recv.
func waitReading(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(testutil.Wait)
	for !testutil.StacksMention("session.(*Session).Recv", "readwait.(*Waiter).Wait") {
		if time.Now().After(deadline) {
			t.Fatalf("no Recv waits on its connection within %v", testutil.Wait)
		}
		runtime.Gosched()
	}
}

// TestClientCloseSeenAwayFromRecv: an application that took a message
// and then waits for its session's end, away from Recv, still learns of
// the client's close: once it is away, the session reads for it.
func TestClientCloseSeenAwayFromRecv(t *testing.T) {
	took := make(chan string, 1)
	s := start(t, &session.Options{Serve: func(ss *session.Session) {
		_, p, err := ss.Recv(ss.Context())
		if err != nil {
			took <- err.Error()
			return
		}
		took <- string(p)
		<-ss.Done()
	}})
	n := s.negotiate(t)
	p, _ := s.mustDial(t, deliver(n, n.Tickets[0], 1))
	ss := s.session(t, n)
	p.send(transport.Frame{Type: transport.TypeText, Seq: 1, Payload: []byte("one")})
	if got := withinWait(t, took, "the application's Recv"); got != "one" {
		t.Fatalf("Recv = %q, want one", got)
	}
	p.send(transport.Frame{Type: transport.TypeClose, Seq: 2, Code: 1000, Reason: "bye"})
	withinWait(t, ss.Done(), "the session's end after the client's close")
}

// TestLocalCloseEndsInlineRecv: a Recv waiting on the connection itself
// returns the close at once when another goroutine closes the session,
// before the client has answered it, and the session then reads the
// client's answer.
func TestLocalCloseEndsInlineRecv(t *testing.T) {
	recvd := make(chan error, 1)
	waiting := make(chan *session.Session, 1)
	s := start(t, &session.Options{Serve: func(ss *session.Session) {
		waiting <- ss
		_, _, err := ss.Recv(ss.Context())
		recvd <- err
		<-ss.Done()
	}})
	n := s.negotiate(t)
	p, _ := s.mustDial(t, deliver(n, n.Tickets[0], 1))
	ss := withinWait(t, waiting, "the application")
	waitReading(t)
	ss.Close(4001, "enough")
	err := withinWait(t, recvd, "Recv after Close")
	var ce *transport.CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 {
		t.Fatalf("Recv = %v, want the close 4001", err)
	}
	select {
	case <-ss.Done():
		t.Fatal("Recv returned only once the session had ended")
	default:
	}
	f := p.nextOf(transport.TypeClose)
	if f.Code != 4001 {
		t.Fatalf("close frame %+v, want 4001", f)
	}
	p.send(transport.Frame{Type: transport.TypeAck, Ack: f.Seq}, transport.Frame{Type: transport.TypeClose, Seq: 1, Code: 4001})
	withinWait(t, ss.Done(), "the session's end after the client's answer")
}

// TestRecvContextWhileReading: a Recv with a ctx of its own ends with
// it, and the messages that come later reach the next Recv, in order.
func TestRecvContextWhileReading(t *testing.T) {
	results := make(chan string, 4)
	s := start(t, &session.Options{Serve: func(ss *session.Session) {
		ctx, cancel := context.WithTimeout(ss.Context(), 10*time.Millisecond)
		_, _, err := ss.Recv(ctx)
		cancel()
		results <- fmt.Sprint(err)
		for range 2 {
			_, p, err := ss.Recv(ss.Context())
			if err != nil {
				results <- err.Error()
				return
			}
			results <- string(p)
		}
	}})
	n := s.negotiate(t)
	p, _ := s.mustDial(t, deliver(n, n.Tickets[0], 1))
	if got := withinWait(t, results, "the first Recv"); got != context.DeadlineExceeded.Error() {
		t.Fatalf("Recv with an expiring ctx = %s, want %v", got, context.DeadlineExceeded)
	}
	p.send(transport.Frame{Type: transport.TypeText, Seq: 1, Payload: []byte("a")},
		transport.Frame{Type: transport.TypeText, Seq: 2, Payload: []byte("b")})
	for _, want := range []string{"a", "b"} {
		if got := withinWait(t, results, "Recv"); got != want {
			t.Fatalf("Recv = %q, want %q", got, want)
		}
	}
}

// TestInlineReadOverflow: a batch holding more messages than the inbound
// buffer, read by Recv's own goroutine, reaches the application whole
// and in order: the rest waits for room in a goroutine, as it would in a
// reader's.
func TestInlineReadOverflow(t *testing.T) {
	const count = 9
	got := make(chan string, count)
	s := start(t, &session.Options{InboundMessages: 2, Serve: func(ss *session.Session) {
		for {
			_, p, err := ss.Recv(ss.Context())
			if err != nil {
				return
			}
			got <- string(p)
		}
	}})
	n := s.negotiate(t)
	p, _ := s.mustDial(t, deliver(n, n.Tickets[0], 1))
	frames := make([]transport.Frame, count)
	for i := range frames {
		frames[i] = transport.Frame{Type: transport.TypeText, Seq: uint64(i + 1), Payload: fmt.Appendf(nil, "m%d", i+1)}
	}
	p.send(frames...)
	for i := range count {
		if m := withinWait(t, got, "Recv"); m != fmt.Sprintf("m%d", i+1) {
			t.Fatalf("message %d = %q, want m%d", i+1, m, i+1)
		}
	}
	// And every message is acknowledged.
	for p.acked < count {
		p.next()
	}
}

// TestSendWaitsReadsAcks: an application that only sends, after a Recv,
// fills its window and goes on as the client acknowledges: the acks are
// read though nobody waits in Recv.
func TestSendWaitsReadsAcks(t *testing.T) {
	const window, count = 4, 20
	sent := make(chan error, 1)
	s := start(t, &session.Options{WindowMessages: window, Serve: func(ss *session.Session) {
		if _, _, err := ss.Recv(ss.Context()); err != nil {
			sent <- err
			return
		}
		for i := range count {
			if err := ss.Send(ss.Context(), transport.Text, fmt.Appendf(nil, "%d", i)); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
		<-ss.Done()
	}})
	n := s.negotiate(t)
	p, _ := s.mustDial(t, deliver(n, n.Tickets[0], 1))
	p.send(transport.Frame{Type: transport.TypeText, Seq: 1, Payload: []byte("go")})
	for i := range count {
		f := p.nextOf(transport.TypeText)
		if string(f.Payload) != fmt.Sprint(i) {
			t.Fatalf("message %d = %q", i, f.Payload)
		}
		p.send(transport.Frame{Type: transport.TypeAck, Ack: f.Seq})
	}
	if err := withinWait(t, sent, "the sends"); err != nil {
		t.Fatalf("Send: %v", err)
	}
}
