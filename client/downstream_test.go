package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

func TestAckDue(t *testing.T) {
	p := newAckPolicy(8, 1000, 200*time.Millisecond) // at once from 4 messages or 500 bytes
	t0 := time.Unix(1000, 0)
	ms := time.Millisecond
	for _, tc := range []struct {
		name     string
		in       inbound
		now      time.Time
		wantDue  bool
		wantWait time.Duration
	}{
		{"nothing owed", inbound{n: 5, acked: 5}, t0, false, 0},
		{"one message, just arrived", inbound{n: 1, count: 1, bytes: 10, since: t0}, t0, false, 200 * ms},
		{"one message, partway", inbound{n: 1, count: 1, bytes: 10, since: t0}, t0.Add(150 * ms), false, 50 * ms},
		{"one message, ackDelay passed", inbound{n: 1, count: 1, bytes: 10, since: t0}, t0.Add(200 * ms), true, 0},
		{"half the window in messages", inbound{n: 4, count: 4, bytes: 40, since: t0}, t0, true, 0},
		{"half the window in bytes", inbound{n: 1, count: 1, bytes: 500, since: t0}, t0, true, 0},
		{"just under half", inbound{n: 3, count: 3, bytes: 499, since: t0}, t0, false, 200 * ms},
		{"heartbeat with nothing owed", inbound{n: 5, acked: 5, ackNow: true}, t0, true, 0},
		{"heartbeat with a message owed", inbound{n: 1, count: 1, since: t0, ackNow: true}, t0, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			due, wait := tc.in.ackDue(tc.now, p)
			if due != tc.wantDue || wait != tc.wantWait {
				t.Errorf("ackDue = %v, %v; want %v, %v", due, wait, tc.wantDue, tc.wantWait)
			}
		})
	}
}

// TestAckRides: an eager client's ack rides on every batch of messages; a
// lazy one's from half of a threshold, or of its delay.
func TestAckRides(t *testing.T) {
	eager := newAckPolicy(128, 1<<20, 200*time.Millisecond)
	lazy := ackPolicy{messages: 8, bytes: 1000, delay: time.Second, lazy: true}
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		name string
		p    ackPolicy
		in   inbound
		now  time.Time
		want bool
	}{
		{"eager, one message", eager, inbound{n: 1, count: 1, bytes: 10, since: t0}, t0, true},
		{"lazy, one message", lazy, inbound{n: 1, count: 1, bytes: 10, since: t0}, t0, false},
		{"lazy, just under half the messages", lazy, inbound{n: 3, count: 3, bytes: 30, since: t0}, t0, false},
		{"lazy, half the messages", lazy, inbound{n: 4, count: 4, bytes: 40, since: t0}, t0, true},
		{"lazy, half the bytes", lazy, inbound{n: 1, count: 1, bytes: 500, since: t0}, t0, true},
		{"lazy, half the delay", lazy, inbound{n: 1, count: 1, bytes: 10, since: t0}, t0.Add(500 * time.Millisecond), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.in.rides(tc.now, tc.p); got != tc.want {
				t.Errorf("rides = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAckSent(t *testing.T) {
	in := inbound{n: 3, acked: 1, count: 2, bytes: 20, ackNow: true}
	in.ackSent(2) // an ack that left before message 3 arrived
	if in.acked != 2 || in.ackNow || in.count != 2 {
		t.Fatalf("after ackSent(2): %+v; want acked 2, ackNow cleared, the count kept", in)
	}
	in.ackSent(3)
	if in.acked != 3 || in.count != 0 || in.bytes != 0 {
		t.Fatalf("after ackSent(3): %+v; want everything acknowledged", in)
	}
	in.ackSent(1)
	if in.acked != 3 {
		t.Fatalf("an older ack moved acked back to %d", in.acked)
	}
}

func msg(seq uint64, s string) transport.Frame {
	return transport.Frame{Type: transport.TypeText, Seq: seq, Payload: []byte(s)}
}

func TestReceiveDuplicatesAndGap(t *testing.T) {
	c := newTestConn(t, "http://127.0.0.1:1/comet", nil)
	c.receive([]transport.Frame{msg(1, "a"), msg(2, "b"), msg(2, "b"), msg(1, "a")})
	c.mu.Lock()
	n, queued, ackNow := c.in.n, len(c.in.queue), c.in.ackNow
	c.mu.Unlock()
	if n != 2 || queued != 2 {
		t.Fatalf("after a resend: n=%d, %d queued; want 2, 2", n, queued)
	}
	if !ackNow {
		t.Fatal("a duplicate did not make an ack due: the server may have missed ours")
	}

	c.receive([]transport.Frame{msg(4, "d")})
	ctx := context.Background()
	for _, want := range []string{"a", "b"} {
		if _, p, err := c.Recv(ctx); err != nil || string(p) != want {
			t.Fatalf("Recv = %q, %v; want %q", p, err, want)
		}
	}
	_, _, err := c.Recv(ctx)
	var ce *transport.CloseError
	if !errors.As(err, &ce) || ce.Code != transport.CloseProtocolError || ce.Remote {
		t.Fatalf("Recv after a gap = %v, want a local CloseError 1002", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.out.Len() != 1 || c.out.Entry(1).Type != transport.TypeClose || c.out.Entry(1).Close.Code != transport.CloseProtocolError {
		t.Fatalf("outbox = %+v, want our close 1002 queued for the server", c.out)
	}
}

func TestReceiveRemoteClose(t *testing.T) {
	c := newTestConn(t, "http://127.0.0.1:1/comet", nil)
	c.receive([]transport.Frame{msg(1, "last words"), {Type: transport.TypeClose, Seq: 2, Code: 4001, Reason: "bye", Retry: 7}})
	ctx := context.Background()
	if _, p, err := c.Recv(ctx); err != nil || string(p) != "last words" {
		t.Fatalf("Recv = %q, %v; want the message sent before the close", p, err)
	}
	_, _, err := c.Recv(ctx)
	var ce *transport.CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 || ce.Reason != "bye" || ce.Retry != 7 || !ce.Remote {
		t.Fatalf("Recv = %v, want the server's CloseError 4001 bye", err)
	}
	if err := c.Send(ctx, transport.Text, []byte("x")); !errors.As(err, &ce) {
		t.Fatalf("Send after the server's close = %v, want its CloseError", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.out.Len() != 1 || c.out.Entry(1).Type != transport.TypeClose || *c.out.Entry(1).Close != (transport.CloseError{Code: 4001}) {
		t.Fatalf("outbox = %+v, want an answering close 4001 with no reason", c.out)
	}
	if !c.in.ackNow || c.in.n != 2 {
		t.Fatalf("the server's close is not acknowledged at once: %+v", c.in)
	}
}

func TestReceiveViolations(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame transport.Frame
		code  transport.CloseCode
	}{
		{"upstream-only frame", transport.Frame{Type: transport.TypeKey, Token: "x"}, transport.CloseProtocolError},
		{"second open frame", transport.Frame{Type: transport.TypeOpen, Attempt: 1}, transport.CloseProtocolError},
		{"ack of a message never sent", transport.Frame{Type: transport.TypeAck, Ack: 1}, transport.CloseProtocolError},
		{"message too big", msg(1, string(make([]byte, 65))), transport.CloseMessageTooBig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestConn(t, "http://127.0.0.1:1/comet", nil)
			c.receive([]transport.Frame{tc.frame})
			_, _, err := c.Recv(context.Background())
			if transport.CloseStatus(err) != tc.code {
				t.Fatalf("Recv = %v, want close %d", err, tc.code)
			}
		})
	}
}

func TestReceiveSuperseded(t *testing.T) {
	c := newTestConn(t, "http://127.0.0.1:1/comet", nil)
	if !c.receive([]transport.Frame{msg(1, "a"), {Type: transport.TypeSuperseded}, msg(2, "b")}) {
		t.Fatal(`["s"] did not end the downstream`)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.in.n != 1 {
		t.Fatalf("n = %d, want 1: nothing after [\"s\"] counts", c.in.n)
	}
}
