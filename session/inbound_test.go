package session

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// TestUpstreamViolations checks that each upstream violation closes the
// session with its code, and that the close reaches the client.
func TestUpstreamViolations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		batch string
		code  transport.CloseCode
	}{
		{"gap", `["m",2,"x"]`, transport.CloseProtocolError},
		{"gap after an accepted message", `["m",1,"a"]` + "\n" + `["m",3,"c"]`, transport.CloseProtocolError},
		{"text too big", `["m",1,"123456789"]`, transport.CloseMessageTooBig},
		{"binary too big", `["b",1,"MTIzNDU2Nzg5"]`, transport.CloseMessageTooBig},
		{"unpaired surrogate", `["m",1,"\udc00"]`, transport.CloseInvalidPayload},
		{"raw bytes that are not UTF-8", "[\"m\",1,\"\xff\"]", transport.CloseInvalidPayload},
		{"unknown frame type", `["x"]`, transport.CloseProtocolError},
		{"not a frame", `hello`, transport.CloseProtocolError},
		{"open upstream", `["o",1,0,"t",25000]`, transport.CloseProtocolError},
		{"echo upstream", `["e","t"]`, transport.CloseProtocolError},
		{"superseded upstream", `["s"]`, transport.CloseProtocolError},
		{"ticket upstream", `["t","t"]`, transport.CloseProtocolError},
		{"key upstream", `["k","secret",0,0]`, transport.CloseProtocolError},
		{"ack of a message never sent", `["a",1]`, transport.CloseProtocolError},
		{"reserved close code", `["c",1,1006,"",0]`, transport.CloseProtocolError},
		{"close without a code, not agreed", `["c",1,1005,"",0]`, transport.CloseProtocolError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newTestSession(t, newTestHandler(t, &Options{MaxMessage: 8}))
			a := s.newAttachment(transport.WebSocket, deliver(1, 0))
			err := a.Receive([]byte(tc.batch))
			var pe *protocolError
			if !errors.As(err, &pe) || pe.Code != tc.code {
				t.Fatalf("Receive(%q) = %v, want a violation with code %d", tc.batch, err, tc.code)
			}
			_, _, err = s.Recv(t.Context())
			if ce := closeError(t, err); ce.Code != tc.code || ce.Remote {
				t.Fatalf("Recv = %+v, want a local close with code %d", ce, tc.code)
			}
			d := attachStream(t, s, deliver(2, 0))
			frames := d.ds.next(t)
			if last := frames[len(frames)-1]; last.Type != transport.TypeClose || last.Seq != 1 || last.Code != int(tc.code) {
				t.Fatalf("the client got %q, want a close with code %d last", wire(frames), tc.code)
			}
		})
	}
}

// TestRecv checks that Recv waits for a message, and that a cancelled ctx
// ends only the call.
func TestRecv(t *testing.T) {
	t.Parallel()
	s := newTestSession(t, newTestHandler(t, nil))

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := s.Recv(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Recv with a cancelled ctx = %v, want context.Canceled", err)
	}
	if err := s.Context().Err(); err != nil {
		t.Fatalf("a cancelled Recv ended the session: %v", err)
	}

	type message struct {
		typ transport.MessageType
		p   string
		err error
	}
	got := make(chan message, 1)
	go func() {
		typ, p, err := s.Recv(t.Context())
		got <- message{typ, string(p), err}
	}()
	mustUpstream(t, s, `["b",1,"AAE="]`)
	if m := waitFor(t, got, "message from Recv"); m != (message{transport.Binary, "\x00\x01", nil}) {
		t.Fatalf("Recv = %+v, want binary 00 01", m)
	}
}

// TestDuplicatesAcknowledged checks that a resent message is dropped and
// still acknowledged, as after a resume.
func TestDuplicatesAcknowledged(t *testing.T) {
	t.Parallel()
	s := newTestSession(t, newTestHandler(t, nil))
	a := attachStream(t, s, deliver(1, 0))
	a.ds.expect(t, `["o",1,0,"T",25000]`)
	for _, step := range []struct {
		batch []byte
		ack   string
	}{
		{batch(`["m",1,"a"]`, `["m",2,"b"]`), `["a",2]`},
		{batch(`["m",1,"a"]`, `["m",2,"b"]`, `["m",3,"c"]`), `["a",3]`},
		{batch(`["m",2,"b"]`), `["a",3]`},
	} {
		if err := a.Receive(step.batch); err != nil {
			t.Fatalf("Receive(%q) = %v", step.batch, err)
		}
		a.ds.expect(t, step.ack)
	}
	for _, want := range []string{"a", "b", "c"} {
		if _, p, err := s.Recv(t.Context()); string(p) != want || err != nil {
			t.Fatalf("Recv = %q, %v, want %q", p, err, want)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.in) != 0 {
		t.Errorf("%d duplicates were queued for Recv", len(s.in))
	}
}

// TestInboundFull checks that a full inbound buffer accepts part of a
// batch (the POST path) or makes Receive wait for Recv (the WebSocket
// path), in messages and in bytes.
func TestInboundFull(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts Options
		p    string
	}{
		{"messages", Options{InboundMessages: 2}, "x"},
		{"bytes", Options{MaxMessage: 4, InboundBytes: 8}, "wxyz"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				s := newTestSession(t, newTestHandler(t, &tc.opts))
				m := func(seq int) string { return fmt.Sprintf(`["m",%d,%q]`, seq, tc.p) }
				accepted := func() uint64 {
					s.mu.Lock()
					defer s.mu.Unlock()
					return s.inSeq
				}
				recv := func() {
					t.Helper()
					if _, p, err := s.Recv(context.Background()); string(p) != tc.p || err != nil {
						t.Fatalf("Recv = %q, %v", p, err)
					}
				}

				if n, err := upstream(t, s, m(1), m(2), m(3)); n != 2 || err != nil {
					t.Fatalf("receiveLocked into room for 2 = %d, %v; want 2, nil", n, err)
				}
				a := s.newAttachment(transport.WebSocket, deliver(1, 0))
				res := make(chan error, 1)
				go func() { res <- a.Receive(batch(m(3), m(4))) }()
				synctest.Wait()
				if isDone(res) || accepted() != 2 {
					t.Fatalf("Receive into a full buffer returned or accepted (up to %d)", accepted())
				}
				recv()
				synctest.Wait()
				if isDone(res) || accepted() != 3 {
					t.Fatalf("after one Recv: Receive returned, or accepted up to %d, want 3", accepted())
				}
				recv()
				synctest.Wait()
				if !isDone(res) || accepted() != 4 {
					t.Fatalf("after two Recvs: Receive still waits, or accepted up to %d, want 4", accepted())
				}
				recv()
				recv()
			})
		})
	}
}

// TestControlFramesPassAFullBuffer: a commit or probe behind a message the
// full inbound buffer cannot take still applies, so that a client that
// writes control frames last is never stuck waiting for its commit.
func TestControlFramesPassAFullBuffer(t *testing.T) {
	t.Parallel()
	s := newTestSession(t, newTestHandler(t, &Options{InboundMessages: 1}))
	a := attachStream(t, s, probe(1))
	a.ds.expect(t, `["o",1,0,"T",25000]`)
	mustSend(t, s, "waiting")

	n, err := upstream(t, s, `["m",1,"fits"]`, `["m",2,"does not fit"]`, `["u",1]`, `["p",1,"tok"]`, `["m",3,"nor this"]`)
	if err != nil || n != 3 {
		t.Fatalf("upstream consumed %d, %v; want the first message and both control frames", n, err)
	}
	// The probe is echoed, and the commit made it deliver the message
	// that was waiting.
	a.ds.expect(t, `["e","tok"]`, `["m",1,"waiting"]`)
	if _, p, _ := s.Recv(context.Background()); string(p) != "fits" {
		t.Fatalf("Recv = %q", p)
	}
	if n, err := upstream(t, s, `["m",2,"does not fit"]`); n != 1 || err != nil {
		t.Fatalf("resend after Recv: %d, %v", n, err)
	}
}

// TestPeerClose checks that Recv returns the messages before a client's
// close, then the close, and that the server answers with the same code.
func TestPeerClose(t *testing.T) {
	t.Parallel()
	o := &Options{}
	ev := observe(o)
	h := newTestHandler(t, o)
	s := newTestSession(t, h)
	mustUpstream(t, s, `["m",1,"a"]`, `["b",2,"AAE="]`, `["c",3,4001,"bye",0]`)

	want := []struct {
		typ transport.MessageType
		p   string
	}{{transport.Text, "a"}, {transport.Binary, "\x00\x01"}}
	for _, w := range want {
		if typ, p, err := s.Recv(t.Context()); typ != w.typ || string(p) != w.p || err != nil {
			t.Fatalf("Recv = %v %q %v, want %v %q", typ, p, err, w.typ, w.p)
		}
	}
	for range 2 {
		_, _, err := s.Recv(t.Context())
		if ce := closeError(t, err); *ce != (transport.CloseError{Code: 4001, Reason: "bye", Remote: true}) {
			t.Fatalf("Recv after the messages = %+v, want the client's close", ce)
		}
	}
	if s.Context().Err() == nil {
		t.Error("Context() is not cancelled")
	}
	if err := s.Send(t.Context(), transport.Text, []byte("x")); transport.CloseStatus(err) != 4001 {
		t.Errorf("Send after the client's close = %v", err)
	}

	a := attachStream(t, s, deliver(1, 0))
	a.ds.expect(t, `["o",1,3,"T",25000]`, `["c",1,4001,"",0]`)
	mustUpstream(t, s, `["a",1]`)
	waitFor(t, s.Done(), "Done")
	for e := ev.next(t); e != `closed 4001 "bye" remote=true`; e = ev.next(t) {
		if e != `changed ""→"websocket" why=""` {
			t.Fatalf("unexpected event %q", e)
		}
	}
	if h.Sessions() != 0 {
		t.Error("the session is still registered")
	}
}

// TestClosesCross checks that a session closed by both sides at once
// finishes without waiting for acknowledgements.
func TestClosesCross(t *testing.T) {
	t.Parallel()
	s := newTestSession(t, newTestHandler(t, nil))
	if err := s.Close(4000, "mine"); err != nil {
		t.Fatal(err)
	}
	mustUpstream(t, s, `["c",1,4000,"theirs",0]`)
	waitFor(t, s.Done(), "Done")
	_, _, err := s.Recv(t.Context())
	if ce := closeError(t, err); ce.Reason != "mine" || ce.Remote {
		t.Errorf("Recv = %+v, want the local close", ce)
	}
}

// TestReceiveAfterLocalClose checks that a Receive waiting for room in a
// full inbound buffer returns when the session closes. The WebSocket
// reader is that goroutine: while it waits, the client's acknowledgement of
// the close cannot be read, and the session would linger for the whole
// grace period.
func TestReceiveAfterLocalClose(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := newTestSession(t, newTestHandler(t, &Options{InboundMessages: 1}))
		mustUpstream(t, s, `["m",1,"a"]`)
		a := s.newAttachment(transport.WebSocket, deliver(1, 0))
		res := make(chan error, 1)
		go func() { res <- a.Receive(batch(`["m",2,"b"]`)) }()
		synctest.Wait()
		if isDone(res) {
			t.Fatal("Receive into a full buffer returned")
		}
		if err := s.Close(1000, ""); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if !isDone(res) {
			t.Fatal("Receive still waits for room after the session closed")
		}
		if err := a.Receive(batch(`["a",1]`)); err != nil {
			t.Fatalf("Receive of the close's ack = %v", err)
		}
		synctest.Wait()
		if !isDone(s.Done()) {
			t.Fatal("the acknowledged close did not finish the session")
		}
	})
}

// TestAckRidesOnReply checks that an ack due on a stream waits up to
// ackHold for a reply to carry it, and goes alone when none comes.
func TestAckRidesOnReply(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := newTestSession(t, newTestHandler(t, nil))
		a := attachStream(t, s, deliver(1, 0))
		a.ds.expect(t, `["o",1,0,"T",25000]`)

		if err := a.Receive(batch(`["m",1,"a"]`)); err != nil {
			t.Fatal(err)
		}
		happensAt(t, ackHold, "the lone ack", func() bool { return len(a.ds.batches) > 0 })
		a.ds.expectBatches(t, []string{`["a",1]`})

		if err := a.Receive(batch(`["m",2,"b"]`)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(ackHold / 2)
		mustSend(t, s, "reply")
		synctest.Wait()
		a.ds.expectBatches(t, []string{`["a",2]`, `["m",1,"reply"]`})
	})
}

// TestAckHoldsShareATick checks the handler's one ack timer: an ack held
// while another's hold runs goes at the first tick after its own hold is
// over, one held alone goes exactly at ackHold, and an attachment that
// ended while holding leaves the list without writing.
func TestAckHoldsShareATick(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newTestHandler(t, nil)
		first, second, gone := newTestSession(t, h), newTestSession(t, h), newTestSession(t, h)
		a := attachStream(t, first, deliver(1, 0))
		b := attachStream(t, second, deliver(1, 0))
		c := attachStream(t, gone, deliver(1, 0))
		for _, x := range []*served{a, b, c} {
			x.ds.expect(t, `["o",1,0,"T",25000]`)
		}

		mustReceive := func(x *served, line string) {
			t.Helper()
			if err := x.Receive(batch(line)); err != nil {
				t.Fatal(err)
			}
		}
		mustReceive(a, `["m",1,"a"]`)
		mustReceive(c, `["m",1,"c"]`)
		time.Sleep(ackHold / 2)
		mustReceive(b, `["m",1,"b"]`)
		c.End(nil)
		time.Sleep(ackHold / 2)
		synctest.Wait()
		a.ds.expectBatches(t, []string{`["a",1]`})
		if n := len(b.ds.batches); n != 0 {
			t.Fatalf("an ack held for half of ackHold went at the tick")
		}
		happensAt(t, ackHold, "the second lone ack", func() bool { return len(b.ds.batches) > 0 })
		b.ds.expectBatches(t, []string{`["a",1]`})

		synctest.Wait()
		h.ackHolds.mu.Lock()
		left, armed := len(h.ackHolds.held), h.ackHolds.armed
		h.ackHolds.mu.Unlock()
		if left != 0 || armed {
			t.Fatalf("after every hold: %d attachments listed, timer armed %v; want none, off", left, armed)
		}
	})
}
