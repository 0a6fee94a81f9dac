package streamtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/internal/httpstream"
	"github.com/seed-544bbf9f/comet/internal/leakcheck"
	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// RunStreamSuite runs the tests every stream adapter must pass, each a
// subtest, attaching with raw HTTP requests on loopback and reading the
// response as it grows, so that they check the wire of PROTOCOL.md
// section 5.1. Call it from a test that is not parallel: one of its tests
// checks for leaked goroutines, and runs alone.
func RunStreamSuite(t *testing.T, a StreamAdapter) {
	// ClientGone runs first and alone: its goroutine check would count a
	// parallel test's goroutines as its own.
	t.Run("ClientGone", func(t *testing.T) { testClientGone(t, a) })
	tests := []struct {
		name string
		test func(*testing.T, StreamAdapter)
	}{
		{"Stream", testStream},
		{"BatchIsOneFlush", testBatchIsOneFlush},
		{"Heartbeats", testHeartbeats},
		{"ProbeEcho", testProbeEcho},
		{"CloseEndsStreamOnceAcknowledged", testCloseEndsStreamOnceAcknowledged},
		{"Superseded", testSuperseded},
		{"URLNotReusable", testURLNotReusable},
		{"Middleware", testMiddleware},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, a)
		})
	}
}

func testStream(t *testing.T, a StreamAdapter) {
	s := a.Start(t, Config{})
	ss := s.Negotiate()
	st := a.Attach(Bound(t), t, s, ss.Deliver(ss.N.Tickets[0], 1, 0))
	// Nothing has been sent: the preamble and the open frame arrive
	// because they were flushed at once.
	o := st.Open(1)
	if o.Interval != uint64(time.Minute.Milliseconds()) {
		t.Errorf("open interval %d, want %d", o.Interval, time.Minute.Milliseconds())
	}
	for i, msg := range []string{"hi", "line\r\nbreak \u2028 and more"} {
		ss.Send(t, msg)
		m := st.Want(transport.TypeText)
		if m.Seq != uint64(i+1) || string(m.Payload) != msg {
			t.Errorf("message %d %q, want %d %q", m.Seq, m.Payload, i+1, msg)
		}
	}
	bin := []byte{0, 1, 0xff}
	pm, err := s.H.NewPreparedMessage(transport.Binary, bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := ss.S.SendPrepared(t.Context(), pm); err != nil {
		t.Fatal(err)
	}
	if b := st.Want(transport.TypeBinary); b.Seq != 3 || !bytes.Equal(b.Payload, bin) {
		t.Errorf("binary message %d %x, want 3 %x", b.Seq, b.Payload, bin)
	}
}

// testBatchIsOneFlush reads the response chunk by chunk: the preamble is
// flushed on its own, and every frame of a batch (here the open frame and
// the messages queued before the attach) arrives in one write.
func testBatchIsOneFlush(t *testing.T, a StreamAdapter) {
	s := a.Start(t, Config{})
	ss := s.Negotiate()
	ss.Send(t, "one")
	ss.Send(t, "two")
	c := s.AttachRaw(Bound(t), a.Target(ss.Deliver(ss.N.Tickets[0], 1, 0)))
	defer c.Close()
	if c.Status != http.StatusOK || c.Header.Get("Content-Length") != "" {
		t.Fatalf("attach: %d, headers %v", c.Status, c.Header)
	}
	chunk, err := c.Next()
	if err != nil || string(chunk) != a.Preamble {
		t.Fatalf("first chunk of %d bytes %.40q… %v, want the preamble alone", len(chunk), chunk, err)
	}
	if chunk, err = c.Next(); err != nil {
		t.Fatal(err)
	}
	messages := a.Event(`["m",1,"one"]`, 1) + a.Event(`["m",2,"two"]`, 2)
	open, ok := strings.CutSuffix(string(chunk), messages)
	if !ok {
		t.Fatalf("second chunk %q, want it to end with both messages, %q", chunk, messages)
	}
	// The open frame carries a fresh ticket: read it off the wire rather
	// than spell it.
	frame, n, err := a.Next(t, bufioReader(open))
	if err != nil || n != len(open) || !bytes.HasPrefix(frame, []byte(`["o",1,0,"`)) || open != a.Event(string(frame), 0) {
		t.Fatalf("second chunk %q, want the open frame of attempt 1, then both messages", chunk)
	}
}

func testHeartbeats(t *testing.T, a StreamAdapter) {
	const interval = 200 * time.Millisecond
	s := a.Start(t, Config{Options: &session.Options{Heartbeat: interval}})
	ss := s.Negotiate()
	st := a.Attach(Bound(t), t, s, ss.Deliver(ss.N.Tickets[0], 1, 0))
	if o := st.Open(1); o.Interval != uint64(interval.Milliseconds()) {
		t.Errorf("open interval %d, want %d", o.Interval, interval.Milliseconds())
	}
	for range 3 {
		// A heartbeat is a frame of its own, so that a page sees it; the
		// client answers each, or the server ends the stream as silent.
		st.Want(transport.TypeHeartbeat)
		s.Ack(ss, 0)
	}
}

func testProbeEcho(t *testing.T, a StreamAdapter) {
	s := a.Start(t, Config{})
	ss := s.Negotiate()
	st := a.Attach(Bound(t), t, s, ss.Deliver(ss.N.Tickets[0], 1, 0))
	st.Open(1)
	if status, body := s.Post(ss, 0, `["p",1,"tok"]`); status != http.StatusOK {
		t.Fatalf("probe: %d %s", status, body)
	}
	if e := st.Want(transport.TypeEcho); e.Token != "tok" {
		t.Errorf("echo of %q, want tok", e.Token)
	}
}

func testCloseEndsStreamOnceAcknowledged(t *testing.T, a StreamAdapter) {
	tests := []struct {
		name   string
		before []string // messages sent before the close
	}{
		{"alone", nil},
		{"after a message", []string{"last words"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := a.Start(t, Config{})
			ss := s.Negotiate()
			st := a.Attach(Bound(t), t, s, ss.Deliver(ss.N.Tickets[0], 1, 0))
			st.Open(1)
			for _, msg := range tc.before {
				ss.Send(t, msg)
				st.Want(transport.TypeText)
			}
			if err := ss.S.Close(transport.CloseNormal, "bye"); err != nil {
				t.Fatal(err)
			}
			c := st.Want(transport.TypeClose)
			seq := uint64(len(tc.before) + 1)
			if c.Seq != seq || transport.CloseCode(c.Code) != transport.CloseNormal || c.Reason != "bye" {
				t.Errorf("close frame %+v, want seq %d, 1000, bye", c, seq)
			}
			s.Ack(ss, c.Seq)
			st.End()
		})
	}
}

func testSuperseded(t *testing.T, a StreamAdapter) {
	s := a.Start(t, Config{})
	ss := s.Negotiate()
	older := a.Attach(Bound(t), t, s, ss.Deliver(ss.N.Tickets[0], 1, 0))
	older.Open(1)
	newer := a.Attach(Bound(t), t, s, ss.Deliver(ss.N.Tickets[1], 2, 0))
	newer.Open(2)
	older.Want(transport.TypeSuperseded)
	older.End()

	ss.Send(t, "hi")
	if m := newer.Want(transport.TypeText); string(m.Payload) != "hi" {
		t.Errorf("message %q on the newer stream, want hi", m.Payload)
	}
}

// testURLNotReusable replays an attach URL, as a proxy's retry or the
// browser EventSource's own reconnect would: its ticket is spent.
func testURLNotReusable(t *testing.T, a StreamAdapter) {
	s := a.Start(t, Config{})
	ss := s.Negotiate()
	target := a.Target(ss.Deliver(ss.N.Tickets[0], 1, 0))
	ctx, cancel := context.WithCancel(Bound(t))
	st := a.AttachTarget(ctx, t, s, target) // checks no-store
	st.Open(1)
	cancel()
	st.Resp.Body.Close()

	again, body := s.Do(http.MethodGet, target, "")
	var eb transport.ErrorBody
	if again.StatusCode != http.StatusForbidden || json.Unmarshal(body, &eb) != nil || eb.Code != transport.CodeBadTicket {
		t.Errorf("the same URL again: %s %s, want 403 %s", again.Status, body, transport.CodeBadTicket)
	}
	if cc := again.Header.Get("Cache-Control"); cc != "no-store, no-transform" {
		t.Errorf("refusal Cache-Control %q", cc)
	}
}

func testMiddleware(t *testing.T, a StreamAdapter) {
	tests := []struct {
		name string
		wrap func(http.ResponseWriter) http.ResponseWriter
		ok   bool
	}{
		{"without Flush or Unwrap", HideFlush, false},
		{"with Unwrap", HideFlushUnwrap, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := a.Start(t, Config{Wrap: func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(tc.wrap(w), r) })
			}})
			ss := s.Negotiate()
			p := ss.Deliver(ss.N.Tickets[0], 1, 0)
			if tc.ok {
				st := a.Attach(Bound(t), t, s, p)
				st.Open(1)
				ss.Send(t, "through")
				st.Want(transport.TypeText)
				return
			}
			resp, body := s.Do(http.MethodGet, a.Target(p), "")
			var eb transport.ErrorBody
			if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("Content-Type") != "application/json" ||
				json.Unmarshal(body, &eb) != nil || eb.Code != transport.CodeStreamingBroken {
				t.Fatalf("attach: %s %v %s, want 500 %s", resp.Status, resp.Header, body, transport.CodeStreamingBroken)
			}
			if resp.Header.Get("X-Accel-Buffering") != "" || !strings.Contains(eb.Message, "middleware") {
				t.Errorf("refusal %v %q: want JSON headers and a message naming the cause", resp.Header, eb.Message)
			}
		})
	}
}

func testClientGone(t *testing.T, a StreamAdapter) {
	leakcheck.Check(t)
	s := a.Start(t, Config{})
	ss := s.Negotiate()
	ctx, cancel := context.WithCancel(Bound(t))
	st := a.Attach(ctx, t, s, ss.Deliver(ss.N.Tickets[0], 1, 0))
	o := st.Open(1)
	testutil.Receive(t, s.Attached, "attach")
	cancel()
	// The server notices at once, not after two heartbeat intervals.
	if err := testutil.Receive(t, s.Lost, "TransportLost"); !errors.Is(err, httpstream.ErrClientGone) {
		t.Fatalf("TransportLost(%v), want %v", err, httpstream.ErrClientGone)
	}

	// The session goes on: what was sent meanwhile comes on the next stream.
	ss.Send(t, "after")
	st = a.Attach(Bound(t), t, s, ss.Deliver(o.Token, 2, 0))
	st.Open(2)
	if m := st.Want(transport.TypeText); string(m.Payload) != "after" {
		t.Errorf("message %q, want after", m.Payload)
	}
}

// bufioReader reads s.
func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }
