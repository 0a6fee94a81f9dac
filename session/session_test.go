package session

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

func TestSendDeliversInOrder(t *testing.T) {
	t.Parallel()
	s := newTestSession(t, newTestHandler(t, nil))
	mustSend(t, s, "hello")
	if err := s.Send(t.Context(), transport.Binary, []byte{0, 1, 0xff}); err != nil {
		t.Fatal(err)
	}
	mustSend(t, s, "line\nbreak")

	a := attachStream(t, s, deliver(1, 0))
	a.ds.expect(t, `["o",1,0,"T",25000]`, `["m",1,"hello"]`, `["b",2,"AAH/"]`, `["m",3,"line\nbreak"]`)
	if err := s.TrySend(transport.Binary, nil); err != nil {
		t.Fatal(err)
	}
	mustSend(t, s, "é")
	a.ds.expect(t, `["b",4,""]`, `["m",5,"é"]`)
	if got := s.Transport(); got != transport.WebSocket {
		t.Errorf("Transport() = %q, want %q", got, transport.WebSocket)
	}
}

// TestWindow checks that the outbound window, counted in messages or in
// bytes, holds what the client has not acknowledged, and that an ack
// releases it.
func TestWindow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts Options
		size int
	}{
		{"messages", Options{WindowMessages: 2}, 1},
		{"bytes", Options{MaxMessage: 8, WindowBytes: 16}, 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newTestSession(t, newTestHandler(t, &tc.opts))
			p := []byte(strings.Repeat("x", tc.size))
			for range 2 {
				if err := s.TrySend(transport.Text, p); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.TrySend(transport.Text, p); !errors.Is(err, ErrWouldBlock) {
				t.Fatalf("TrySend to a full window = %v, want ErrWouldBlock", err)
			}
			mustUpstream(t, s, `["a",1]`)
			if err := s.TrySend(transport.Text, p); err != nil {
				t.Fatalf("TrySend after an ack = %v", err)
			}
			if err := s.TrySend(transport.Text, p); !errors.Is(err, ErrWouldBlock) {
				t.Fatalf("TrySend to a full window again = %v, want ErrWouldBlock", err)
			}
			mustUpstream(t, s, `["a",3]`)
			if err := s.TrySend(transport.Text, p); err != nil {
				t.Fatalf("TrySend after a cumulative ack = %v", err)
			}
		})
	}
}

// TestSendWaitsForRoom checks that Send on a full window waits for an ack,
// for its ctx, or for the session to close, whichever comes first.
func TestSendWaitsForRoom(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := newTestSession(t, newTestHandler(t, &Options{WindowMessages: 1}))
		mustSend(t, s, "1")
		sendAsync := func(ctx context.Context, text string) <-chan error {
			res := make(chan error, 1)
			go func() { res <- s.Send(ctx, transport.Text, []byte(text)) }()
			synctest.Wait()
			if isDone(res) {
				t.Fatalf("Send(%q) returned with the window full", text)
			}
			return res
		}

		res := sendAsync(context.Background(), "2")
		mustUpstream(t, s, `["a",1]`)
		synctest.Wait()
		if err := <-res; err != nil {
			t.Fatalf("Send after an ack = %v", err)
		}

		ctx, cancel := context.WithCancel(context.Background())
		res = sendAsync(ctx, "3")
		cancel()
		synctest.Wait()
		if err := <-res; !errors.Is(err, context.Canceled) {
			t.Fatalf("Send with its ctx cancelled = %v, want context.Canceled", err)
		}

		ctx, cancel = context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		res = sendAsync(ctx, "3")
		time.Sleep(time.Second)
		synctest.Wait()
		if err := <-res; !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Send past its deadline = %v, want context.DeadlineExceeded", err)
		}
		if s.Context().Err() != nil {
			t.Fatal("a Send that gave up ended the session")
		}

		res = sendAsync(context.Background(), "3")
		s.Close(transport.CloseNormal, "")
		synctest.Wait()
		if err := <-res; transport.CloseStatus(err) != transport.CloseNormal {
			t.Fatalf("Send when the session closed = %v, want the close", err)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.out.Last() != 3 { // "1", "2" and the close
			t.Errorf("%d sequence numbers used, want 3: a Send that failed took one", s.out.Last())
		}
	})
}

func TestCloseSlowConsumers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		send func(*Session) error
	}{
		{"Send", func(s *Session) error { return s.Send(context.Background(), transport.Text, []byte("y")) }},
		{"TrySend", func(s *Session) error { return s.TrySend(transport.Text, []byte("y")) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newTestSession(t, newTestHandler(t, &Options{WindowMessages: 1, CloseSlowConsumers: true}))
			mustSend(t, s, "x")
			if err := tc.send(s); transport.CloseStatus(err) != transport.CloseSlowConsumer {
				t.Fatalf("%s to a full window = %v, want close 3002", tc.name, err)
			}
			if _, _, err := s.Recv(t.Context()); transport.CloseStatus(err) != transport.CloseSlowConsumer {
				t.Fatalf("Recv = %v, want close 3002", err)
			}
			if s.Context().Err() == nil {
				t.Error("Context() is not cancelled")
			}
			// The close follows what the client has not read yet.
			a := attachStream(t, s, deliver(1, 0))
			a.ds.expect(t, `["o",1,0,"T",25000]`, `["m",1,"x"]`, `["c",2,3002,"outbound window full",0]`)
		})
	}
}

func TestSendRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		typ  transport.MessageType
		p    string
		want error // nil: accepted
	}{
		{"invalid UTF-8 text", transport.Text, "a\xffb", transport.ErrInvalidUTF8},
		{"encoded surrogate", transport.Text, "\xed\xa0\x80", transport.ErrInvalidUTF8},
		{"text too big", transport.Text, "123456789", ErrMessageTooBig},
		{"binary too big", transport.Binary, "123456789", ErrMessageTooBig},
		{"type 0", 0, "x", ErrInvalidMessageType},
		{"type 3", 3, "x", ErrInvalidMessageType},
		{"text of the limit", transport.Text, "12345678", nil},
		{"binary that is not UTF-8", transport.Binary, "\xff\xfe", nil},
		{"empty text", transport.Text, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newTestHandler(t, &Options{MaxMessage: 8})
			s := newTestSession(t, h)
			errs := map[string]error{
				"Send":               s.Send(t.Context(), tc.typ, []byte(tc.p)),
				"TrySend":            s.TrySend(tc.typ, []byte(tc.p)),
				"NewPreparedMessage": func() error { _, err := h.NewPreparedMessage(tc.typ, []byte(tc.p)); return err }(),
			}
			for call, err := range errs {
				if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
					t.Errorf("%s(%v, %q) = %v, want %v", call, tc.typ, tc.p, err, tc.want)
				}
			}
			if s.Context().Err() != nil {
				t.Error("a refused message closed the session")
			}
		})
	}
}

func TestCloseCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code  transport.CloseCode
		valid bool
	}{
		{1000, true}, {4000, true}, {4999, true},
		{999, false}, {1001, false}, {1002, false}, {1011, false},
		{3000, false}, {3001, false}, {3999, false}, {5000, false},
	}
	for _, tc := range tests {
		t.Run(tc.code.String(), func(t *testing.T) {
			t.Parallel()
			s := newTestSession(t, newTestHandler(t, nil))
			err := s.Close(tc.code, "reason")
			if !tc.valid {
				if !errors.Is(err, ErrInvalidCloseCode) {
					t.Fatalf("Close(%d) = %v, want ErrInvalidCloseCode", tc.code, err)
				}
				if s.Context().Err() != nil {
					t.Fatal("a refused Close closed the session")
				}
				return
			}
			if err != nil {
				t.Fatalf("Close(%d) = %v", tc.code, err)
			}
			_, _, err = s.Recv(t.Context())
			if ce := closeError(t, err); *ce != (transport.CloseError{Code: tc.code, Reason: "reason"}) {
				t.Fatalf("Recv after Close = %+v", ce)
			}
		})
	}
}

func TestCloseReasonTruncated(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, reason, want string
	}{
		{"short", "bye", "bye"},
		{"exactly 123 bytes", strings.Repeat("x", 123), strings.Repeat("x", 123)},
		{"ascii", strings.Repeat("x", 200), strings.Repeat("x", 123)},
		{"at a rune boundary", strings.Repeat("é", 100), strings.Repeat("é", 61)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newTestSession(t, newTestHandler(t, nil))
			if err := s.Close(4000, tc.reason); err != nil {
				t.Fatal(err)
			}
			_, _, err := s.Recv(t.Context())
			if got := closeError(t, err).Reason; got != tc.want {
				t.Errorf("Recv's reason is %d bytes %q, want %d bytes", len(got), got, len(tc.want))
			}
			a := attachStream(t, s, deliver(1, 0))
			a.ds.expect(t, `["o",1,0,"T",25000]`, string(transport.AppendFrame(nil,
				&transport.Frame{Type: transport.TypeClose, Seq: 1, Code: 4000, Reason: tc.want})))
		})
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	t.Parallel()
	s := newTestSession(t, newTestHandler(t, nil))
	if err := s.Close(4001, "first"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(4002, "second"); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if err := s.Send(t.Context(), transport.Text, []byte("late")); transport.CloseStatus(err) != 4001 {
		t.Fatalf("Send after Close = %v, want the first close", err)
	}
	a := attachStream(t, s, deliver(1, 0))
	a.ds.expect(t, `["o",1,0,"T",25000]`, `["c",1,4001,"first",0]`)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out.Len() != 1 {
		t.Errorf("%d frames queued, want the one close", s.out.Len())
	}
}

// TestCloseWhileDetached checks that a close issued while the client is
// away reaches it on its next attach, after the messages sent before it,
// and that its acknowledgement finishes the session.
func TestCloseWhileDetached(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		o := &Options{}
		ev := observe(o)
		h := newTestHandler(t, o)
		s := newTestSession(t, h)
		mustSend(t, s, "one")
		a := attachStream(t, s, deliver(1, 0))
		synctest.Wait()
		a.ds.expectBatches(t, []string{`["o",1,0,"T",25000]`, `["m",1,"one"]`})
		a.End(errors.New("connection reset"))
		synctest.Wait()

		mustSend(t, s, "two")
		if err := s.Close(4001, "bye"); err != nil {
			t.Fatal(err)
		}
		if s.Context().Err() == nil {
			t.Error("Context() is not cancelled by Close")
		}
		if isDone(s.Done()) {
			t.Fatal("Done is closed before the client has the close")
		}

		b := attachStream(t, s, deliver(2, 0))
		synctest.Wait()
		b.ds.expectBatches(t, []string{`["o",2,0,"T",25000]`, `["m",1,"one"]`, `["m",2,"two"]`, `["c",3,4001,"bye",0]`})
		if isDone(s.Done()) {
			t.Fatal("Done is closed before the client acknowledged the close")
		}
		if err := b.Receive(batch(`["a",3]`)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if !isDone(s.Done()) {
			t.Fatal("Done is not closed once the client acknowledged the close")
		}
		if !b.returned() {
			t.Error("the attachment outlived its session")
		}
		if n := h.Sessions(); n != 0 {
			t.Errorf("the registry holds %d sessions, want 0", n)
		}
		s.Close(1000, "")
		s.CloseNow()
		synctest.Wait()
		want := []string{
			`changed ""→"websocket" why=""`,
			`lost websocket: connection reset`,
			`closed 4001 "bye" remote=false`,
		}
		if got := ev.drain(); !slices.Equal(got, want) {
			t.Errorf("observer events\n got %q\nwant %q", got, want)
		}
	})
}

func TestCloseNow(t *testing.T) {
	t.Parallel()
	o := &Options{}
	ev := observe(o)
	h := newTestHandler(t, o)
	s := newTestSession(t, h)
	stuck := newFake(t)
	stuck.holdWrites()
	a := serve(t, s, transport.WebSocket, stuck, transport.Stream, deliver(1, 0))
	p := attachStream(t, s, probe(2))
	waitFor(t, stuck.held, "write to block")
	p.ds.expect(t, `["o",2,0,"T",25000]`)
	recv := make(chan error, 1)
	go func() {
		_, _, err := s.Recv(context.Background())
		recv <- err
	}()

	if err := s.CloseNow(); err != nil {
		t.Fatal(err)
	}
	for _, x := range []*served{a, p} {
		x.wait(t)
		if !x.ds.isClosed() {
			t.Errorf("attachment %d: downstream not closed", x.Params().Attempt)
		}
	}
	if p.ds.drain(t) != nil {
		t.Error("CloseNow wrote to the client")
	}
	if ce := closeError(t, waitFor(t, recv, "return from Recv")); ce.Code != transport.CloseNormal || ce.Remote {
		t.Errorf("Recv after CloseNow = %+v", ce)
	}
	if err := s.Send(t.Context(), transport.Text, []byte("x")); transport.CloseStatus(err) != transport.CloseNormal {
		t.Errorf("Send after CloseNow = %v", err)
	}
	waitFor(t, s.Done(), "Done")
	if n := h.Sessions(); n != 0 {
		t.Errorf("the registry holds %d sessions, want 0", n)
	}
	if e := ev.next(t); e != `changed ""→"websocket" why=""` {
		t.Errorf("first event %q", e)
	}
	if e := ev.next(t); e != `closed 1000 "closed" remote=false` {
		t.Errorf("second event %q", e)
	}
	s.CloseNow()
	if err := s.Close(1000, ""); err != nil {
		t.Errorf("Close after CloseNow = %v", err)
	}
	if e := ev.drain(); e != nil {
		t.Errorf("events after the session ended: %q", e)
	}
}

// TestGraceExpiry checks that a detached session waits for its client for
// exactly the grace period, then ends with 3000, and that an attach within
// it starts the count again.
func TestGraceExpiry(t *testing.T) {
	t.Parallel()
	const grace = 5 * time.Second
	t.Run("expires", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			o := &Options{Grace: grace}
			ev := observe(o)
			h := newTestHandler(t, o)
			s := newTestSession(t, h)
			a := attachStream(t, s, deliver(1, 0))
			synctest.Wait()
			a.End(errors.New("connection reset"))
			happensAt(t, grace, "the session ended", func() bool { return isDone(s.Done()) })
			_, _, err := s.Recv(context.Background())
			if transport.CloseStatus(err) != transport.CloseSessionExpired {
				t.Errorf("Recv = %v, want close 3000", err)
			}
			if h.Sessions() != 0 {
				t.Error("the expired session is still registered")
			}
			if got := ev.drain(); len(got) == 0 || !strings.HasPrefix(got[len(got)-1], "closed 3000 ") {
				t.Errorf("observer events %q, want a close with 3000 last", got)
			}
		})
	})
	t.Run("client returns", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			s := newTestSession(t, newTestHandler(t, &Options{Grace: grace}))
			a := attachStream(t, s, deliver(1, 0))
			synctest.Wait()
			a.End(errors.New("connection reset"))
			time.Sleep(grace - time.Millisecond)
			b := attachStream(t, s, deliver(2, 0))
			time.Sleep(3 * grace) // silent, but heartbeats are 25 s apart
			synctest.Wait()
			if isDone(s.Done()) {
				t.Fatal("the session expired while attached")
			}
			b.End(errors.New("connection reset"))
			happensAt(t, grace, "the session ended", func() bool { return isDone(s.Done()) })
		})
	})
}

// TestFirstAttachTimeout checks that a session negotiated and never
// attached ends after 10 s (PROTOCOL.md section 9).
func TestFirstAttachTimeout(t *testing.T) {
	t.Parallel()
	t.Run("never attached", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			s := newTestSession(t, newTestHandler(t, nil))
			happensAt(t, 10*time.Second, "the session ended", func() bool { return isDone(s.Done()) })
			_, _, err := s.Recv(context.Background())
			if transport.CloseStatus(err) != transport.CloseSessionExpired {
				t.Errorf("Recv = %v, want close 3000", err)
			}
		})
	})
	t.Run("attached in time", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			s := newTestSession(t, newTestHandler(t, nil))
			time.Sleep(10*time.Second - time.Millisecond)
			attachStream(t, s, deliver(1, 0))
			time.Sleep(time.Minute)
			synctest.Wait()
			if isDone(s.Done()) {
				t.Fatal("an attached session expired")
			}
		})
	})
}

// TestCloseLinger checks that a closing session whose client never
// acknowledges the close is forgotten after the grace period.
func TestCloseLinger(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const grace = 10 * time.Second
		o := &Options{Grace: grace}
		ev := observe(o)
		s := newTestSession(t, newTestHandler(t, o))
		a := attachStream(t, s, deliver(1, 0))
		synctest.Wait()
		a.ds.expectBatches(t, []string{`["o",1,0,"T",25000]`})
		if err := s.Close(1000, "bye"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		a.ds.expectBatches(t, []string{`["c",1,1000,"bye",0]`})
		happensAt(t, grace, "the session was forgotten", func() bool { return isDone(s.Done()) })
		if err := a.wait(t); err != nil {
			t.Errorf("Serve = %v, want nil", err)
		}
		if got := ev.drain(); len(got) == 0 || got[len(got)-1] != `closed 1000 "bye" remote=false` {
			t.Errorf("observer events %q, want the local close last", got)
		}
	})
}

// TestRecvOnOwnContextReportsClose: Recv given the session's own Context
// reports the close that cancelled it, never context.Canceled, however the
// two wake-ups are ordered.
func TestRecvOnOwnContextReportsClose(t *testing.T) {
	t.Parallel()
	for range 50 {
		s := newTestSession(t, newTestHandler(t, nil))
		errc := make(chan error, 1)
		go func() {
			_, _, err := s.Recv(s.Context())
			errc <- err
		}()
		s.Close(4000, "bye")
		if err := <-errc; transport.CloseStatus(err) != 4000 {
			t.Fatalf("Recv = %v, want the close", err)
		}
	}
}
