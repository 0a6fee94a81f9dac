package streaming_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/internal/httpstream"
	"github.com/seed-544bbf9f/comet/internal/httpstream/streamtest"
	"github.com/seed-544bbf9f/comet/internal/leakcheck"
	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/streaming"
	"github.com/seed-544bbf9f/comet/transport"
)

// These tests attach with raw HTTP requests on loopback and read the
// response line by line as it grows, as an XHR's responseText would be
// read, so that they check the wire of PROTOCOL.md section 5.1. Unless a
// test is about heartbeats, the heartbeat interval is a minute: a frame
// that should arrive at once and did not is caught by the test's bound,
// not by a timing assertion.

const preambleSize = 2048 + 1

func spaces(n int) string { return strings.Repeat(" ", n-1) + "\n" }

func start(t *testing.T, cfg streamtest.Config, opts *streaming.Options) *streamtest.Server {
	t.Helper()
	if cfg.Options == nil {
		cfg.Options = &session.Options{Heartbeat: time.Minute}
	}
	cfg.Adapters = []transport.Adapter{streaming.New(opts)}
	return streamtest.Start(t, cfg)
}

// stream is a live streaming response as a client reads it.
type stream struct {
	t    *testing.T
	resp *http.Response
	r    *bufio.Reader
	read int // bytes read so far
}

// attach sends an attach GET and checks the stream's headers; ctx bounds
// the whole response.
func attach(ctx context.Context, t *testing.T, s *streamtest.Server, p transport.AttachParams) *stream {
	t.Helper()
	resp := s.Attach(ctx, streamtest.Target(transport.Streaming, p))
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("attach: %s %s", resp.Status, body)
	}
	want := map[string]string{
		"Content-Type":           "text/plain; charset=utf-8",
		"Cache-Control":          "no-store, no-transform",
		"X-Accel-Buffering":      "no",
		"X-Content-Type-Options": "nosniff",
		"Connection":             "keep-alive",
		"Content-Length":         "",
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("header %s: %q, want %q", k, got, v)
		}
	}
	if resp.ContentLength != -1 {
		t.Errorf("response length %d, want none", resp.ContentLength)
	}
	return &stream{t: t, resp: resp, r: bufio.NewReader(resp.Body)}
}

// line reads one line. A response that ends inside a line did not end at
// a frame boundary.
func (st *stream) line() (string, error) {
	st.t.Helper()
	line, err := st.r.ReadString('\n')
	st.read += len(line)
	if err == io.EOF && line != "" {
		st.t.Fatalf("response ended inside a line, after %q", line)
	}
	return line, err
}

// readPreamble reads the padding line of size bytes that opens the stream.
func (st *stream) readPreamble(size int) {
	st.t.Helper()
	line, err := st.line()
	if err != nil || line != spaces(size) {
		st.t.Fatalf("preamble of %d bytes %v, want %d spaces and a newline", len(line), err, size-1)
	}
}

// next returns the next frame, skipping padding lines.
func (st *stream) next() (transport.Frame, error) {
	st.t.Helper()
	for {
		line, err := st.line()
		if err != nil {
			return transport.Frame{}, err
		}
		if strings.TrimLeft(line, " ") == "\n" {
			continue
		}
		var f transport.Frame
		if err := transport.DecodeFrame([]byte(line[:len(line)-1]), &f); err != nil {
			st.t.Fatalf("line %q: %v", line, err)
		}
		return f, nil
	}
}

// want reads one frame and checks its type.
func (st *stream) want(typ transport.Type) transport.Frame {
	st.t.Helper()
	return streamtest.Want(st.t, st.next, typ)
}

// open reads the preamble and the open frame of attempt.
func (st *stream) open(attempt uint64) transport.Frame {
	st.t.Helper()
	st.readPreamble(preambleSize)
	o := st.want(transport.TypeOpen)
	if o.Attempt != attempt || o.Token == "" {
		st.t.Fatalf("open frame %+v, want attempt %d and a ticket", o, attempt)
	}
	return o
}

// end checks that the response ends here.
func (st *stream) end() {
	st.t.Helper()
	streamtest.End(st.t, st.next)
}

func TestStream(t *testing.T) {
	t.Parallel()
	s := start(t, streamtest.Config{}, nil)
	ss := s.Negotiate()
	st := attach(streamtest.Bound(t), t, s, ss.Deliver(ss.N.Tickets[0], 1, 0))
	// Nothing has been sent: the preamble and the open frame arrive
	// because they were flushed at once.
	st.open(1)
	for i, msg := range []string{"hi", "line\r\nbreak \u2028 and more"} {
		ss.Send(t, msg)
		m := st.want(transport.TypeText)
		if m.Seq != uint64(i+1) || string(m.Payload) != msg {
			t.Errorf("message %d %q, want %d %q", m.Seq, m.Payload, i+1, msg)
		}
	}
}

// TestBatchIsOneFlush reads the response chunk by chunk: the preamble is
// flushed on its own, and a batch (here the open frame and the messages
// queued before the attach) arrives in one write.
func TestBatchIsOneFlush(t *testing.T) {
	t.Parallel()
	s := start(t, streamtest.Config{}, nil)
	ss := s.Negotiate()
	ss.Send(t, "one")
	ss.Send(t, "two")
	c := s.AttachRaw(streamtest.Bound(t), streamtest.Target(transport.Streaming, ss.Deliver(ss.N.Tickets[0], 1, 0)))
	defer c.Close()
	chunk, err := c.Next()
	if err != nil || string(chunk) != spaces(preambleSize) {
		t.Fatalf("first chunk of %d bytes %v, want the preamble alone", len(chunk), err)
	}
	chunk, err = c.Next()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(chunk), "\n")
	if len(lines) != 4 || lines[3] != "" || !strings.HasPrefix(lines[0], `["o",1,0,"`) ||
		lines[1] != "[\"m\",1,\"one\"]\n" || lines[2] != "[\"m\",2,\"two\"]\n" {
		t.Fatalf("second chunk %q, want the open frame and both messages", chunk)
	}
}

func TestHeartbeats(t *testing.T) {
	t.Parallel()
	const interval = 200 * time.Millisecond
	s := start(t, streamtest.Config{Options: &session.Options{Heartbeat: interval}}, nil)
	ss := s.Negotiate()
	st := attach(streamtest.Bound(t), t, s, ss.Deliver(ss.N.Tickets[0], 1, 0))
	if o := st.open(1); o.Interval != uint64(interval.Milliseconds()) {
		t.Errorf("open interval %d, want %d", o.Interval, interval.Milliseconds())
	}
	for range 3 {
		st.want(transport.TypeHeartbeat)
		s.Ack(ss, 0) // unanswered, the server would end the stream as silent
	}
}

func TestCloseEndsStreamOnceAcknowledged(t *testing.T) {
	t.Parallel()
	s := start(t, streamtest.Config{}, nil)
	ss := s.Negotiate()
	st := attach(streamtest.Bound(t), t, s, ss.Deliver(ss.N.Tickets[0], 1, 0))
	st.open(1)
	if err := ss.S.Close(transport.CloseNormal, "bye"); err != nil {
		t.Fatal(err)
	}
	c := st.want(transport.TypeClose)
	if c.Seq != 1 || transport.CloseCode(c.Code) != transport.CloseNormal || c.Reason != "bye" {
		t.Errorf("close frame %+v, want seq 1, 1000, bye", c)
	}
	s.Ack(ss, c.Seq)
	st.end()
}

func TestSuperseded(t *testing.T) {
	t.Parallel()
	s := start(t, streamtest.Config{}, nil)
	ss := s.Negotiate()
	older := attach(streamtest.Bound(t), t, s, ss.Deliver(ss.N.Tickets[0], 1, 0))
	older.open(1)
	newer := attach(streamtest.Bound(t), t, s, ss.Deliver(ss.N.Tickets[1], 2, 0))
	newer.open(2)
	older.want(transport.TypeSuperseded)
	older.end()

	ss.Send(t, "hi")
	if m := newer.want(transport.TypeText); string(m.Payload) != "hi" {
		t.Errorf("message %q on the newer stream, want hi", m.Payload)
	}
}

// TestRecycle sends a burst of 1 MiB and reads it as a client does: each
// response ends once it has carried the budget, at a frame boundary, and
// the client attaches again with its ack and a fresh ticket.
func TestRecycle(t *testing.T) {
	t.Parallel()
	const (
		budget   = 64 << 10
		maxBatch = 32 << 10
		size     = 1 << 10
		count    = 1024 // 1 MiB in all
	)
	s := start(t, streamtest.Config{Options: &session.Options{
		Heartbeat: time.Minute, MaxMessage: 4 << 10, MaxBatch: maxBatch,
	}}, &streaming.Options{RecycleBytes: budget})
	ss := s.Negotiate()
	ctx := streamtest.Bound(t)
	message := func(i int) string {
		return fmt.Sprintf("%05d", i) + strings.Repeat(string(rune('a'+i%26)), size-5)
	}
	sent := make(chan error, 1)
	go func() {
		for i := range count {
			if err := ss.S.Send(ctx, transport.Text, []byte(message(i))); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()

	var ack uint64
	ticket := ss.N.Tickets[0]
	responses := 0
	for attempt := uint64(1); ack < count; attempt++ {
		st := attach(ctx, t, s, ss.Deliver(ticket, attempt, ack))
		ticket = st.open(attempt).Token
		responses++
		var err error
		for ack < count {
			var m transport.Frame
			if m, err = st.next(); err != nil {
				break
			}
			if m.Type != transport.TypeText || m.Seq != ack+1 || string(m.Payload) != message(int(ack)) {
				t.Fatalf("response %d: %s frame %d %.12q…, want message %d", responses, m.Type, m.Seq, m.Payload, ack+1)
			}
			ack = m.Seq
		}
		switch {
		case err == nil: // everything arrived; this response need not end
		case err != io.EOF:
			t.Fatalf("response %d: %v", responses, err)
		case st.read <= budget || st.read > budget+maxBatch:
			t.Errorf("response %d ended after %d bytes, want the batch that passed %d", responses, st.read, budget)
		}
		t.Logf("response %d: %d bytes, %v, ack %d", responses, st.read, err, ack)
		st.resp.Body.Close()
	}
	if err := testutil.Receive(t, sent, "end of the burst"); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if responses < 4 {
		t.Errorf("1 MiB in %d responses, want several of %d bytes", responses, budget)
	}
}

// TestPad reads the response chunk by chunk: with pad, every flush is
// padded up to that many bytes with a padding line, the preamble too.
func TestPad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		pad      int
		preamble int
	}{
		{"above the preamble", 4096, 4096},
		{"below the preamble", 100, preambleSize},
		{"the most", transport.MaxPad, transport.MaxPad},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := start(t, streamtest.Config{}, nil)
			ss := s.Negotiate()
			p := ss.Deliver(ss.N.Tickets[0], 1, 0)
			p.Pad = uint64(tc.pad)
			c := s.AttachRaw(streamtest.Bound(t), streamtest.Target(transport.Streaming, p))
			defer c.Close()
			chunk, err := c.Next()
			if err != nil || string(chunk) != spaces(tc.preamble) {
				t.Fatalf("preamble chunk of %d bytes %v, want a padding line of %d", len(chunk), err, tc.preamble)
			}
			// The open frame, a small message and one above the pad, each
			// in its own flush.
			big := strings.Repeat("x", tc.pad+10)
			for i, want := range []transport.Type{transport.TypeOpen, transport.TypeText, transport.TypeText} {
				switch i {
				case 1:
					ss.Send(t, "small")
				case 2:
					ss.Send(t, big)
				}
				chunk, err := c.Next()
				if err != nil {
					t.Fatal(err)
				}
				frame, padding, _ := bytes.Cut(chunk, []byte("\n"))
				var f transport.Frame
				if err := transport.DecodeFrame(frame, &f); err != nil || f.Type != want {
					t.Fatalf("flush %d starts with %q (%v), want a %s frame", i, frame, err, want)
				}
				switch {
				case len(chunk) < tc.pad:
					t.Errorf("flush %d of %d bytes, want at least %d", i, len(chunk), tc.pad)
				case len(frame)+1 < tc.pad && string(padding) != spaces(tc.pad-len(frame)-1):
					t.Errorf("flush %d pads with %q, want one padding line up to %d bytes", i, padding, tc.pad)
				case len(frame)+1 >= tc.pad && len(padding) != 0:
					t.Errorf("flush %d of %d bytes is padded beyond the pad", i, len(chunk))
				}
			}
		})
	}
}

func TestURLNotReusable(t *testing.T) {
	t.Parallel()
	s := start(t, streamtest.Config{}, nil)
	ss := s.Negotiate()
	target := streamtest.Target(transport.Streaming, ss.Deliver(ss.N.Tickets[0], 1, 0))
	ctx, cancel := context.WithCancel(streamtest.Bound(t))
	resp := s.Attach(ctx, target)
	if cc := resp.Header.Get("Cache-Control"); resp.StatusCode != http.StatusOK || cc != "no-store, no-transform" {
		t.Fatalf("attach: %s, Cache-Control %q", resp.Status, cc)
	}
	cancel()
	resp.Body.Close()

	again, body := s.Do(http.MethodGet, target, "")
	var eb transport.ErrorBody
	if again.StatusCode != http.StatusForbidden || json.Unmarshal(body, &eb) != nil || eb.Code != transport.CodeBadTicket {
		t.Errorf("the same URL again: %s %s, want 403 %s", again.Status, body, transport.CodeBadTicket)
	}
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		wrap func(http.ResponseWriter) http.ResponseWriter
		ok   bool
	}{
		{"without Flush or Unwrap", streamtest.HideFlush, false},
		{"with Unwrap", streamtest.HideFlushUnwrap, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := start(t, streamtest.Config{Wrap: func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(tc.wrap(w), r) })
			}}, nil)
			ss := s.Negotiate()
			p := ss.Deliver(ss.N.Tickets[0], 1, 0)
			if tc.ok {
				st := attach(streamtest.Bound(t), t, s, p)
				st.open(1)
				ss.Send(t, "through")
				st.want(transport.TypeText)
				return
			}
			resp, body := s.Do(http.MethodGet, streamtest.Target(transport.Streaming, p), "")
			var eb transport.ErrorBody
			if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("Content-Type") != "application/json" ||
				json.Unmarshal(body, &eb) != nil || eb.Code != transport.CodeStreamingBroken {
				t.Fatalf("attach: %s %v %s, want 500 %s", resp.Status, resp.Header, body, transport.CodeStreamingBroken)
			}
		})
	}
}

// TestClientGone runs alone: its goroutine check would count a parallel
// test's goroutines as its own.
func TestClientGone(t *testing.T) {
	leakcheck.Check(t)
	s := start(t, streamtest.Config{}, nil)
	ss := s.Negotiate()
	ctx, cancel := context.WithCancel(streamtest.Bound(t))
	st := attach(ctx, t, s, ss.Deliver(ss.N.Tickets[0], 1, 0))
	o := st.open(1)
	testutil.Receive(t, s.Attached, "attach")
	cancel()
	// The server notices at once, not after two heartbeat intervals.
	if err := testutil.Receive(t, s.Lost, "TransportLost"); !errors.Is(err, httpstream.ErrClientGone) {
		t.Fatalf("TransportLost(%v), want %v", err, httpstream.ErrClientGone)
	}

	ss.Send(t, "after")
	st = attach(streamtest.Bound(t), t, s, ss.Deliver(o.Token, 2, 0))
	st.open(2)
	if m := st.want(transport.TypeText); string(m.Payload) != "after" {
		t.Errorf("message %q, want after", m.Payload)
	}
}
