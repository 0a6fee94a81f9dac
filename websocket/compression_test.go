package websocket_test

import (
	"bytes"
	"net"
	"strings"
	"sync"
	"testing"

	gorilla "github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet/internal/chatjson"
	"github.com/seed-544bbf9f/comet/internal/httpstream/streamtest"
	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/internal/wirecount"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
	"github.com/seed-544bbf9f/comet/websocket"
)

// wire records the WebSocket messages of a server's connections.
type wire struct {
	mu   sync.Mutex
	msgs []wirecount.Message
}

func (w *wire) record(m wirecount.Message) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, m)
}

// out returns the messages the server wrote from the n-th message
// recorded on.
func (w *wire) out(n int) []wirecount.Message {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []wirecount.Message
	for _, m := range w.msgs[n:] {
		if m.Out {
			out = append(out, m)
		}
	}
	return out
}

func (w *wire) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.msgs)
}

// startWatched serves a Handler as start does, recording its WebSocket
// messages.
func startWatched(t *testing.T, opts *session.Options) (*server, *wire) {
	t.Helper()
	w := &wire{}
	s := streamtest.Start(t, streamtest.Config{Options: opts, Adapters: []transport.Adapter{websocket.New(nil)},
		Listener: func(l net.Listener) net.Listener {
			wl := wirecount.Wrap(l)
			wl.Record = w.record
			return wl
		}})
	return &server{s}, w
}

// deflater asks for permessage-deflate.
var deflater = &gorilla.Dialer{EnableCompression: true}

// TestCompressionHandshake checks that permessage-deflate is agreed only
// when the server's Options.Compression and the client both ask for it:
// a server without the option answers no Sec-WebSocket-Extensions.
func TestCompressionHandshake(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		server, client bool
	}{
		{"both", true, true},
		{"server only", true, false},
		{"client only", false, true},
		{"neither", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := &session.Options{}
			if tc.server {
				opts.Compression = &transport.Compression{Level: 5}
			}
			s := start(t, opts)
			n := s.negotiate(t)
			d := &gorilla.Dialer{EnableCompression: tc.client}
			c, resp, err := s.dialWith(t, d, deliver(n, n.Tickets[0], 1), nil)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			ext := resp.Header.Values("Sec-WebSocket-Extensions")
			if agreed := tc.server && tc.client; agreed != (len(ext) > 0) {
				t.Fatalf("Sec-WebSocket-Extensions %q; want permessage-deflate: %v", ext, agreed)
			}
			if len(ext) > 0 && !strings.HasPrefix(ext[0], "permessage-deflate") {
				t.Fatalf("Sec-WebSocket-Extensions %q, want permessage-deflate", ext)
			}
			if f := c.next(); f.Type != transport.TypeOpen {
				t.Fatalf("first frame %+v, want the open frame", f)
			}
		})
	}
}

// TestCompressionKeepsTicketsApart reads the server's messages off the
// wire with compression agreed: application batches of at least
// DeflateMinSize bytes are compressed (RSV1 set), while every open frame,
// which carries a ticket, travels alone in an uncompressed message, also
// when it opens a batch of resent messages, and no compressed message
// holds a ticket.
func TestCompressionKeepsTicketsApart(t *testing.T) {
	t.Parallel()
	s, w := startWatched(t, &session.Options{Serve: echo, Compression: &transport.Compression{}})
	n := s.negotiate(t)
	ss := s.session(t, n)
	c, open := s.mustDialWith(t, deflater, deliver(n, n.Tickets[0], 1))
	doc := chatjson.Doc(1)
	c.send(transport.Frame{Type: transport.TypeText, Seq: 1, Payload: doc})
	if f := c.nextOf(transport.TypeText); !bytes.Equal(f.Payload, doc) {
		t.Fatalf("echo of %d bytes differs", len(doc))
	}

	// A message sent while the client is away opens the next attach's
	// first batch, right after the open frame.
	c.conn.Close()
	testutil.Receive(t, s.Lost, "the server's loss of the first connection")
	later := chatjson.Doc(2)
	if err := ss.Send(t.Context(), transport.Text, later); err != nil {
		t.Fatal(err)
	}
	mark := w.len()
	c2, open2 := s.mustDialWith(t, deflater, transport.AttachParams{Session: n.SessionID, Ticket: open.Token, Attempt: 2, Ack: 1, Deliver: true})
	if f := c2.nextOf(transport.TypeText); f.Seq != 2 || !bytes.Equal(f.Payload, later) {
		t.Fatalf("resent message %d of %d bytes, want 2 of %d", f.Seq, len(f.Payload), len(later))
	}
	resumed := w.out(mark)
	if len(resumed) < 2 || resumed[0].Deflated || !resumed[1].Deflated {
		t.Fatalf("resumed attach: %d messages, want the open frame uncompressed, then the resent message compressed", len(resumed))
	}
	if frames, err := transport.DecodeBatch(resumed[0].Payload); err != nil || len(frames) != 1 || frames[0].Type != transport.TypeOpen {
		t.Fatalf("first message %q, want the open frame alone", resumed[0].Payload)
	}

	tickets := append([]string{open.Token, open2.Token}, n.Tickets...)
	deflated := 0
	for _, m := range w.out(0) {
		p, err := m.Inflated()
		if err != nil {
			t.Fatalf("inflate: %v", err)
		}
		if m.Deflated {
			deflated++
		}
		frames, err := transport.DecodeBatch(p)
		if err != nil {
			t.Fatalf("server message %q: %v", p, err)
		}
		for _, f := range frames {
			if f.Type.CarriesCredential() && m.Deflated {
				t.Errorf("compressed message %q carries a %s frame", p, f.Type)
			}
		}
		for _, tk := range tickets {
			if m.Deflated && bytes.Contains(p, []byte(tk)) {
				t.Errorf("compressed message %q holds ticket %s", p, tk)
			}
		}
		if !m.Deflated && len(p) >= transport.DeflateMinSize {
			t.Errorf("message of %d bytes uncompressed: %q", len(p), p)
		}
	}
	if deflated < 2 {
		t.Fatalf("%d compressed messages from the server, want the echo and the resent message", deflated)
	}
}

// TestCompressionBomb sends a compressed message of a few dozen bytes on
// the wire that inflates past maxBatch: the server stops reading it at
// maxBatch and closes the session with 1009, as for a message that large
// on the wire, instead of inflating it whole.
func TestCompressionBomb(t *testing.T) {
	t.Parallel()
	s := start(t, &session.Options{MaxMessage: 100, MaxBatch: 1024, Compression: &transport.Compression{}})
	bomb := `["m",1,"` + strings.Repeat("x", 64<<10) + `"]`
	s.violateWith(t, deflater, "", gorilla.TextMessage, []byte(bomb), true, transport.CloseMessageTooBig)
}
