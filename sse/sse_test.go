package sse_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/internal/httpstream"
	"github.com/seed-544bbf9f/comet/internal/httpstream/streamtest"
	"github.com/seed-544bbf9f/comet/internal/leakcheck"
	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/sse"
	"github.com/seed-544bbf9f/comet/transport"
)

// These tests attach with raw HTTP requests on loopback and read the
// event stream as it grows, so that they check the wire of PROTOCOL.md
// section 5.1. Unless a test is about heartbeats, the heartbeat interval
// is a minute: a frame that should arrive at once and did not is caught by
// the test's bound, not by a timing assertion.

var preamble = ":" + strings.Repeat(" ", 2048) + "\n" + "retry: 86400000\n\n"

func start(t *testing.T, cfg streamtest.Config) *streamtest.Server {
	t.Helper()
	if cfg.Options == nil {
		cfg.Options = &session.Options{Heartbeat: time.Minute}
	}
	cfg.Adapters = []transport.Adapter{sse.New()}
	return streamtest.Start(t, cfg)
}

// stream is a live SSE response as a client reads it.
type stream struct {
	t    *testing.T
	resp *http.Response
	r    *bufio.Reader
}

// attach sends an attach GET and checks the stream's headers; ctx bounds
// the whole response.
func attach(ctx context.Context, t *testing.T, s *streamtest.Server, p transport.AttachParams) *stream {
	t.Helper()
	return attachTarget(ctx, t, s, streamtest.Target(transport.SSE, p))
}

func attachTarget(ctx context.Context, t *testing.T, s *streamtest.Server, target string) *stream {
	t.Helper()
	resp := s.Attach(ctx, target)
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("attach: %s %s", resp.Status, body)
	}
	h := resp.Header
	want := map[string]string{
		"Content-Type":           "text/event-stream; charset=utf-8",
		"Cache-Control":          "no-store, no-transform",
		"X-Accel-Buffering":      "no",
		"X-Content-Type-Options": "nosniff",
		"Content-Length":         "",
	}
	if resp.ProtoMajor == 1 {
		want["Connection"] = "keep-alive"
	} else {
		want["Connection"] = ""
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("header %s: %q, want %q", k, got, v)
		}
	}
	if resp.ContentLength != -1 {
		t.Errorf("response length %d, want none", resp.ContentLength)
	}
	return &stream{t: t, resp: resp, r: bufio.NewReader(resp.Body)}
}

// readPreamble reads the preamble, which must open the stream.
func (st *stream) readPreamble() {
	st.t.Helper()
	p := make([]byte, len(preamble))
	if _, err := io.ReadFull(st.r, p); err != nil {
		st.t.Fatalf("reading the preamble: %v", err)
	}
	if string(p) != preamble {
		st.t.Fatalf("preamble %q, want %q", p, preamble)
	}
}

// next reads one event and returns its frame, checking the event's form:
// an id line holding the seq for message and close frames, none for the
// others, then one data line and a blank line.
func (st *stream) next() (transport.Frame, error) {
	st.t.Helper()
	var raw []byte
	for {
		line, err := st.r.ReadBytes('\n')
		raw = append(raw, line...)
		if err != nil {
			if len(raw) > 0 && err == io.EOF {
				st.t.Fatalf("stream ended inside an event: %q", raw)
			}
			return transport.Frame{}, err
		}
		if len(line) == 1 {
			break
		}
	}
	id, rest, hasID := []byte(nil), raw, bytes.HasPrefix(raw, []byte("id: "))
	if hasID {
		id, rest, _ = bytes.Cut(raw[len("id: "):], []byte("\n"))
	}
	data, ok := bytes.CutPrefix(rest, []byte("data: "))
	if !ok || !bytes.HasSuffix(data, []byte("\n\n")) || bytes.Count(data, []byte("\n")) != 2 {
		st.t.Fatalf("event %q is not [id line] + one data line + blank line", raw)
	}
	var f transport.Frame
	if err := transport.DecodeFrame(data[:len(data)-2], &f); err != nil {
		st.t.Fatalf("event %q: %v", raw, err)
	}
	switch {
	case f.Type.Sequenced() && string(id) != strconv.FormatUint(f.Seq, 10):
		st.t.Fatalf("event %q: a %s frame needs the id %d", raw, f.Type, f.Seq)
	case !f.Type.Sequenced() && hasID:
		st.t.Fatalf("event %q: a %s frame carries no id", raw, f.Type)
	}
	return f, nil
}

// want reads one event and checks its frame's type.
func (st *stream) want(typ transport.Type) transport.Frame {
	st.t.Helper()
	return streamtest.Want(st.t, st.next, typ)
}

// open reads the preamble and the open frame of attempt.
func (st *stream) open(attempt uint64) transport.Frame {
	st.t.Helper()
	st.readPreamble()
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
	s := start(t, streamtest.Config{})
	ss := s.Negotiate()
	st := attach(streamtest.Bound(t), t, s, ss.Deliver(ss.N.Tickets[0], 1, 0))
	// Nothing has been sent: the preamble and the open frame arrive
	// because they were flushed at once.
	o := st.open(1)
	if o.Interval != uint64(time.Minute.Milliseconds()) {
		t.Errorf("open interval %d, want %d", o.Interval, time.Minute.Milliseconds())
	}
	for i, msg := range []string{"hi", "line\r\nbreak \u2028 and more"} {
		ss.Send(t, msg)
		m := st.want(transport.TypeText)
		if m.Seq != uint64(i+1) || string(m.Payload) != msg {
			t.Errorf("message %d %q, want %d %q", m.Seq, m.Payload, i+1, msg)
		}
	}
	if err := ss.S.SendPrepared(t.Context(), mustPrepare(t, s, []byte{0, 1, 0xff})); err != nil {
		t.Fatal(err)
	}
	if b := st.want(transport.TypeBinary); b.Seq != 3 || !bytes.Equal(b.Payload, []byte{0, 1, 0xff}) {
		t.Errorf("binary message %d %x, want 3 0001ff", b.Seq, b.Payload)
	}
}

func mustPrepare(t *testing.T, s *streamtest.Server, p []byte) *session.PreparedMessage {
	m, err := s.H.NewPreparedMessage(transport.Binary, p)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestBatchIsOneFlush reads the response chunk by chunk: the preamble is
// flushed on its own, and every frame of a batch (here the open frame and
// the messages queued before the attach) arrives in one write.
func TestBatchIsOneFlush(t *testing.T) {
	t.Parallel()
	s := start(t, streamtest.Config{})
	ss := s.Negotiate()
	ss.Send(t, "one")
	ss.Send(t, "two")
	c := s.AttachRaw(streamtest.Bound(t), streamtest.Target(transport.SSE, ss.Deliver(ss.N.Tickets[0], 1, 0)))
	defer c.Close()
	if c.Status != http.StatusOK || c.Header.Get("Content-Length") != "" {
		t.Fatalf("attach: %d, headers %v", c.Status, c.Header)
	}
	chunk, err := c.Next()
	if err != nil || string(chunk) != preamble {
		t.Fatalf("first chunk %q %v, want the preamble alone", chunk, err)
	}
	chunk, err = c.Next()
	if err != nil {
		t.Fatal(err)
	}
	events := strings.SplitAfter(string(chunk), "\n\n")
	if len(events) != 4 || events[3] != "" ||
		!strings.HasPrefix(events[0], `data: ["o",1,0,"`) ||
		events[1] != "id: 1\ndata: [\"m\",1,\"one\"]\n\n" ||
		events[2] != "id: 2\ndata: [\"m\",2,\"two\"]\n\n" {
		t.Fatalf("second chunk %q, want the open frame and both messages", chunk)
	}
}

func TestHeartbeats(t *testing.T) {
	t.Parallel()
	const interval = 200 * time.Millisecond
	s := start(t, streamtest.Config{Options: &session.Options{Heartbeat: interval}})
	ss := s.Negotiate()
	st := attach(streamtest.Bound(t), t, s, ss.Deliver(ss.N.Tickets[0], 1, 0))
	if o := st.open(1); o.Interval != uint64(interval.Milliseconds()) {
		t.Errorf("open interval %d, want %d", o.Interval, interval.Milliseconds())
	}
	for range 3 {
		// A heartbeat is a real event, so that a page sees it; the client
		// answers each, or the server ends the stream as silent.
		st.want(transport.TypeHeartbeat)
		s.Ack(ss, 0)
	}
}

func TestProbeEcho(t *testing.T) {
	t.Parallel()
	s := start(t, streamtest.Config{})
	ss := s.Negotiate()
	st := attach(streamtest.Bound(t), t, s, ss.Deliver(ss.N.Tickets[0], 1, 0))
	st.open(1)
	if status, body := s.Post(ss, 0, `["p",1,"tok"]`); status != http.StatusOK {
		t.Fatalf("probe: %d %s", status, body)
	}
	if e := st.want(transport.TypeEcho); e.Token != "tok" {
		t.Errorf("echo of %q, want tok", e.Token)
	}
}

func TestCloseEndsStreamOnceAcknowledged(t *testing.T) {
	t.Parallel()
	s := start(t, streamtest.Config{})
	ss := s.Negotiate()
	st := attach(streamtest.Bound(t), t, s, ss.Deliver(ss.N.Tickets[0], 1, 0))
	st.open(1)
	ss.Send(t, "last words")
	st.want(transport.TypeText)
	if err := ss.S.Close(transport.CloseNormal, "bye"); err != nil {
		t.Fatal(err)
	}
	c := st.want(transport.TypeClose)
	if c.Seq != 2 || transport.CloseCode(c.Code) != transport.CloseNormal || c.Reason != "bye" {
		t.Errorf("close frame %+v, want seq 2, 1000, bye", c)
	}
	s.Ack(ss, c.Seq)
	st.end()
}

func TestSuperseded(t *testing.T) {
	t.Parallel()
	s := start(t, streamtest.Config{})
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

// TestURLNotReusable replays an attach URL, as a proxy's retry or the
// browser EventSource's own reconnect would: its ticket is spent.
func TestURLNotReusable(t *testing.T) {
	t.Parallel()
	s := start(t, streamtest.Config{})
	ss := s.Negotiate()
	target := streamtest.Target(transport.SSE, ss.Deliver(ss.N.Tickets[0], 1, 0))
	ctx, cancel := context.WithCancel(streamtest.Bound(t))
	st := attachTarget(ctx, t, s, target) // checks no-store
	st.open(1)
	cancel()
	st.resp.Body.Close()

	again, body := s.Do(http.MethodGet, target, "")
	var eb transport.ErrorBody
	if again.StatusCode != http.StatusForbidden || json.Unmarshal(body, &eb) != nil || eb.Code != transport.CodeBadTicket {
		t.Errorf("the same URL again: %s %s, want 403 %s", again.Status, body, transport.CodeBadTicket)
	}
	if cc := again.Header.Get("Cache-Control"); cc != "no-store, no-transform" {
		t.Errorf("refusal Cache-Control %q", cc)
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
			}})
			ss := s.Negotiate()
			p := ss.Deliver(ss.N.Tickets[0], 1, 0)
			if tc.ok {
				st := attach(streamtest.Bound(t), t, s, p)
				st.open(1)
				ss.Send(t, "through")
				st.want(transport.TypeText)
				return
			}
			resp, body := s.Do(http.MethodGet, streamtest.Target(transport.SSE, p), "")
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

func TestHTTP2(t *testing.T) {
	t.Parallel()
	s := start(t, streamtest.Config{HTTP2: true})
	ss := s.Negotiate()
	st := attach(streamtest.Bound(t), t, s, ss.Deliver(ss.N.Tickets[0], 1, 0))
	if st.resp.ProtoMajor != 2 {
		t.Fatalf("response over %s, want HTTP/2", st.resp.Proto)
	}
	if _, ok := st.resp.Header["Connection"]; ok {
		t.Errorf("HTTP/2 response with a Connection header: %v", st.resp.Header)
	}
	st.open(1)
	ss.Send(t, "over h2")
	if m := st.want(transport.TypeText); string(m.Payload) != "over h2" {
		t.Errorf("message %q", m.Payload)
	}
}

// TestClientGone runs alone: its goroutine check would count a parallel
// test's goroutines as its own.
func TestClientGone(t *testing.T) {
	leakcheck.Check(t)
	s := start(t, streamtest.Config{})
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

	// The session goes on: what was sent meanwhile comes on the next stream.
	ss.Send(t, "after")
	st = attach(streamtest.Bound(t), t, s, ss.Deliver(o.Token, 2, 0))
	st.open(2)
	if m := st.want(transport.TypeText); string(m.Payload) != "after" {
		t.Errorf("message %q, want after", m.Payload)
	}
}
