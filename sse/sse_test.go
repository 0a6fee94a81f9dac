package sse_test

import (
	"bufio"
	"bytes"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/seed-544bbf9f/comet/internal/httpstream/streamtest"
	"github.com/seed-544bbf9f/comet/sse"
	"github.com/seed-544bbf9f/comet/transport"
)

// wire describes SSE to the tests every stream adapter shares: an event
// per frame (PROTOCOL.md section 5.1).
var wire = streamtest.StreamAdapter{
	Name:        transport.SSE,
	New:         func() transport.Adapter { return sse.New() },
	ContentType: "text/event-stream; charset=utf-8",
	Preamble:    ":" + strings.Repeat(" ", 2048) + "\n" + "retry: 86400000\n\n",
	Event:       event,
	Next:        next,
}

// event returns the event of one frame: an id line holding the seq for
// message and close frames, none for the others, then one data line and a
// blank line.
func event(frame string, seq uint64) string {
	if seq == 0 {
		return "data: " + frame + "\n\n"
	}
	return "id: " + strconv.FormatUint(seq, 10) + "\ndata: " + frame + "\n\n"
}

// next reads one event and returns its frame, checking the event's form
// as event writes it.
func next(t testing.TB, r *bufio.Reader) ([]byte, int, error) {
	t.Helper()
	var raw []byte
	for {
		line, err := r.ReadBytes('\n')
		raw = append(raw, line...)
		if err != nil {
			if len(raw) > 0 && err == io.EOF {
				t.Fatalf("stream ended inside an event: %q", raw)
			}
			return nil, len(raw), err
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
		t.Fatalf("event %q is not [id line] + one data line + blank line", raw)
	}
	data = data[:len(data)-2]
	var f transport.Frame
	if err := transport.DecodeFrame(data, &f); err != nil {
		t.Fatalf("event %q: %v", raw, err)
	}
	switch {
	case f.Type.Sequenced() && string(id) != strconv.FormatUint(f.Seq, 10):
		t.Fatalf("event %q: a %s frame needs the id %d", raw, f.Type, f.Seq)
	case !f.Type.Sequenced() && hasID:
		t.Fatalf("event %q: a %s frame carries no id", raw, f.Type)
	}
	return data, len(raw), nil
}

// TestStreamAdapter runs the tests every stream adapter shares. It is not
// parallel: one of them checks for leaked goroutines.
func TestStreamAdapter(t *testing.T) { streamtest.RunStreamSuite(t, wire) }

func TestHTTP2(t *testing.T) {
	t.Parallel()
	s := wire.Start(t, streamtest.Config{HTTP2: true})
	ss := s.Negotiate()
	st := wire.Attach(streamtest.Bound(t), t, s, ss.Deliver(ss.N.Tickets[0], 1, 0))
	if st.Resp.ProtoMajor != 2 {
		t.Fatalf("response over %s, want HTTP/2", st.Resp.Proto)
	}
	if _, ok := st.Resp.Header["Connection"]; ok {
		t.Errorf("HTTP/2 response with a Connection header: %v", st.Resp.Header)
	}
	st.Open(1)
	ss.Send(t, "over h2")
	if m := st.Want(transport.TypeText); string(m.Payload) != "over h2" {
		t.Errorf("message %q", m.Payload)
	}
}
