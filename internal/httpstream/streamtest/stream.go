package streamtest

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// StreamAdapter describes a stream adapter (SSE, XHR streaming) to the
// tests shared by both: how to make one, and how its response reads on
// the wire.
type StreamAdapter struct {
	// Name is the transport's name, the last element of its attach path.
	Name string
	// New returns a fresh adapter with its default options.
	New func() transport.Adapter
	// ContentType is the Content-Type of a stream.
	ContentType string
	// Preamble is what opens every stream, byte for byte, when the client
	// asks for no padding.
	Preamble string
	// Event returns how the frame whose JSON text is frame is written on
	// the wire: one SSE event, one line. seq is the sequence number of a
	// message or close frame, 0 for another frame.
	Event func(frame string, seq uint64) string
	// Next reads the next frame off r, skipping what carries none, and
	// returns its JSON text and how many bytes of r it consumed. It fails
	// t if what it reads is not of the wire's form, a response that ends
	// inside a frame included; after the last frame it returns io.EOF.
	Next func(t testing.TB, r *bufio.Reader) (frame []byte, n int, err error)
}

// Start serves the adapter as cfg says. Unless cfg sets them, Adapters are
// a fresh adapter alone and the heartbeat interval is a minute: a frame
// that should arrive at once and did not is caught by the test's bound,
// not taken for a heartbeat.
func (a StreamAdapter) Start(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Options == nil {
		cfg.Options = &session.Options{Heartbeat: time.Minute}
	}
	if cfg.Adapters == nil {
		cfg.Adapters = []transport.Adapter{a.New()}
	}
	return Start(t, cfg)
}

// Target returns the path and query of an attach request of the adapter.
func (a StreamAdapter) Target(p transport.AttachParams) string { return Target(a.Name, p) }

// Stream is a live stream response as a client reads it.
type Stream struct {
	t    *testing.T
	a    StreamAdapter
	Resp *http.Response
	r    *bufio.Reader
	// Read counts the bytes read so far, the preamble included.
	Read int
}

// Attach sends an attach GET and checks the stream's headers; ctx bounds
// the whole response, whose body the test's cleanup closes.
func (a StreamAdapter) Attach(ctx context.Context, t *testing.T, s *Server, p transport.AttachParams) *Stream {
	t.Helper()
	return a.AttachTarget(ctx, t, s, a.Target(p))
}

// AttachTarget is Attach with the request's path and query as they are.
func (a StreamAdapter) AttachTarget(ctx context.Context, t *testing.T, s *Server, target string) *Stream {
	t.Helper()
	resp := s.Attach(ctx, target)
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("attach: %s %s", resp.Status, body)
	}
	want := map[string]string{
		"Content-Type":           a.ContentType,
		"Cache-Control":          "no-store, no-transform",
		"X-Accel-Buffering":      "no",
		"X-Content-Type-Options": "nosniff",
		"Content-Length":         "",
	}
	// Connection is a hop-by-hop header that HTTP/2 forbids (RFC 9113
	// section 8.2.2). On HTTP/1.1 a stream the server takes over says
	// close (net/http's client reports it as resp.Close and drops the
	// field); one it cannot take over, keep-alive.
	switch {
	case resp.ProtoMajor != 1:
		want["Connection"] = ""
	case !resp.Close:
		want["Connection"] = "keep-alive"
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("header %s: %q, want %q", k, got, v)
		}
	}
	if resp.ContentLength != -1 {
		t.Errorf("response length %d, want none", resp.ContentLength)
	}
	return &Stream{t: t, a: a, Resp: resp, r: bufio.NewReader(resp.Body)}
}

// ReadPreamble reads the preamble, which must open the stream.
func (st *Stream) ReadPreamble() {
	st.t.Helper()
	p := make([]byte, len(st.a.Preamble))
	n, err := io.ReadFull(st.r, p)
	st.Read += n
	if err != nil {
		st.t.Fatalf("reading the preamble: %v after %q", err, p[:n])
	}
	if string(p) != st.a.Preamble {
		st.t.Fatalf("preamble %q, want %q", p, st.a.Preamble)
	}
}

// Next reads the next frame.
func (st *Stream) Next() (transport.Frame, error) {
	st.t.Helper()
	raw, n, err := st.a.Next(st.t, st.r)
	st.Read += n
	if err != nil {
		return transport.Frame{}, err
	}
	var f transport.Frame
	if err := transport.DecodeFrame(raw, &f); err != nil {
		st.t.Fatalf("frame %q: %v", raw, err)
	}
	return f, nil
}

// Want reads the next frame and checks its type.
func (st *Stream) Want(typ transport.Type) transport.Frame {
	st.t.Helper()
	f, err := st.Next()
	if err != nil {
		st.t.Fatalf("waiting for a %s frame: %v", typ, err)
	}
	if f.Type != typ {
		st.t.Fatalf("%s frame %+v, want %s", f.Type, f, typ)
	}
	return f
}

// Open reads the preamble and the open frame of attempt.
func (st *Stream) Open(attempt uint64) transport.Frame {
	st.t.Helper()
	st.ReadPreamble()
	o := st.Want(transport.TypeOpen)
	if o.Attempt != attempt || o.Token == "" {
		st.t.Fatalf("open frame %+v, want attempt %d and a ticket", o, attempt)
	}
	return o
}

// End checks that the response ends here.
func (st *Stream) End() {
	st.t.Helper()
	if f, err := st.Next(); err != io.EOF {
		st.t.Fatalf("after the last frame: %+v %v, want the end of the response", f, err)
	}
}
