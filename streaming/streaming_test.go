package streaming_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/internal/httpstream/streamtest"
	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/streaming"
	"github.com/seed-544bbf9f/comet/transport"
)

// The tests here are streaming's own: the recycle budget and the padding.
// Those every stream adapter shares run from TestStreamAdapter.

const preambleSize = 2048 + 1

func spaces(n int) string { return strings.Repeat(" ", n-1) + "\n" }

// wire describes XHR streaming to the tests every stream adapter shares: a
// line per frame, and padding lines of spaces that a reader skips
// (PROTOCOL.md sections 4 and 5.1).
var wire = streamtest.StreamAdapter{
	Name:        transport.Streaming,
	New:         func() transport.Adapter { return streaming.New(nil) },
	ContentType: "text/plain; charset=utf-8",
	Preamble:    spaces(preambleSize),
	Event:       func(frame string, _ uint64) string { return frame + "\n" },
	Next:        next,
}

// next returns the next frame line, skipping padding lines. A response
// that ends inside a line did not end at a frame boundary.
func next(t testing.TB, r *bufio.Reader) ([]byte, int, error) {
	t.Helper()
	read := 0
	for {
		line, err := r.ReadBytes('\n')
		read += len(line)
		if err == io.EOF && len(line) > 0 {
			t.Fatalf("response ended inside a line, after %q", line)
		}
		if err != nil {
			return nil, read, err
		}
		if len(bytes.TrimLeft(line, " ")) == 1 {
			continue
		}
		return line[:len(line)-1], read, nil
	}
}

// TestStreamAdapter runs the tests every stream adapter shares. It is not
// parallel: one of them checks for leaked goroutines.
func TestStreamAdapter(t *testing.T) { streamtest.RunStreamSuite(t, wire) }

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
	s := wire.Start(t, streamtest.Config{
		Options:  &session.Options{Heartbeat: time.Minute, MaxMessage: 4 << 10, MaxBatch: maxBatch},
		Adapters: []transport.Adapter{streaming.New(&streaming.Options{RecycleBytes: budget})},
	})
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
		st := wire.Attach(ctx, t, s, ss.Deliver(ticket, attempt, ack))
		ticket = st.Open(attempt).Token
		responses++
		var err error
		for ack < count {
			var m transport.Frame
			if m, err = st.Next(); err != nil {
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
		case st.Read <= budget || st.Read > budget+maxBatch:
			t.Errorf("response %d ended after %d bytes, want the batch that passed %d", responses, st.Read, budget)
		}
		t.Logf("response %d: %d bytes, %v, ack %d", responses, st.Read, err, ack)
		st.Resp.Body.Close()
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
			s := wire.Start(t, streamtest.Config{})
			ss := s.Negotiate()
			p := ss.Deliver(ss.N.Tickets[0], 1, 0)
			p.Pad = uint64(tc.pad)
			c := s.AttachRaw(streamtest.Bound(t), wire.Target(p))
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
