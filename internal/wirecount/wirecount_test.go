package wirecount_test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet/internal/wirecount"
)

// TestCounts echoes messages of each frame length encoding (7-bit, 16-bit
// and 64-bit) over a counted WebSocket, beside a plain HTTP request, and
// checks the totals.
func TestCounts(t *testing.T) {
	srv, wl := echoServer(t, false, nil)

	resp, err := http.Post(srv.URL+"/plain", "text/plain", strings.NewReader("\r\n\r\n\x82\x00"))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	msgs := []struct {
		typ int
		p   []byte
	}{
		{websocket.TextMessage, []byte("hi")},
		{websocket.BinaryMessage, nil},
		{websocket.BinaryMessage, bytes.Repeat([]byte{0x82}, 300)},
		{websocket.BinaryMessage, bytes.Repeat([]byte{1}, 70000)},
		{websocket.TextMessage, bytes.Repeat([]byte("x"), 200)},
	}
	for _, m := range msgs {
		if err := c.WriteMessage(m.typ, m.p); err != nil {
			t.Fatal(err)
		}
		typ, p, err := c.ReadMessage()
		if err != nil || typ != m.typ || !bytes.Equal(p, m.p) {
			t.Fatalf("echo: %d %d bytes %v", typ, len(p), err)
		}
	}
	c.Close()
	n := &wl.Counts
	if n.TextIn.Load() != 2 || n.TextOut.Load() != 2 || n.BinaryIn.Load() != 3 || n.BinaryOut.Load() != 3 {
		t.Fatalf("text in/out %d/%d, binary in/out %d/%d; want 2/2, 3/3",
			n.TextIn.Load(), n.TextOut.Load(), n.BinaryIn.Load(), n.BinaryOut.Load())
	}
	if n.BytesIn.Load() < 70000 || n.BytesOut.Load() < 70000 {
		t.Fatalf("bytes in/out %d/%d, want at least the large message each way", n.BytesIn.Load(), n.BytesOut.Load())
	}
}

// TestRecord echoes messages over a WebSocket with permessage-deflate,
// compressed, uncompressed and in several frames, and checks the messages
// Record saw each way: RSV1 as written, payloads unmasked, whole.
func TestRecord(t *testing.T) {
	got := make(chan wirecount.Message, 16)
	srv, wl := echoServer(t, true, func(m wirecount.Message) { got <- m })
	d := websocket.Dialer{EnableCompression: true}
	c, _, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	long := bytes.Repeat([]byte(`{"user":"ada","text":"hello"}`), 400)
	for _, m := range []struct {
		typ      int
		p        []byte
		deflated bool
	}{
		{websocket.TextMessage, []byte("short"), false},
		{websocket.TextMessage, long, true},
		{websocket.BinaryMessage, bytes.Repeat([]byte{7}, 70000), true},
	} {
		c.EnableWriteCompression(m.deflated)
		if err := c.WriteMessage(m.typ, m.p); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.ReadMessage(); err != nil {
			t.Fatal(err)
		}
		for _, out := range []bool{false, true} {
			r := <-got
			if r.Out != out || r.Binary != (m.typ == websocket.BinaryMessage) || r.Deflated != m.deflated {
				t.Fatalf("%d bytes: recorded out %v binary %v deflated %v; want %v %v %v",
					len(m.p), r.Out, r.Binary, r.Deflated, out, m.typ == websocket.BinaryMessage, m.deflated)
			}
			p, err := r.Inflated()
			if err != nil || !bytes.Equal(p, m.p) {
				t.Fatalf("%d bytes: recorded payload of %d bytes differs (%v)", len(m.p), len(p), err)
			}
		}
	}
	if n := &wl.Counts; n.DeflatedIn.Load() != 2 || n.DeflatedOut.Load() != 2 {
		t.Fatalf("deflated in/out %d/%d, want 2/2", n.DeflatedIn.Load(), n.DeflatedOut.Load())
	}
}

// echoServer serves, on a counted listener with record as its Record,
// WebSockets at /ws that write every message back (compressed when
// compress is set, compression was agreed and the message is over 100
// bytes), and at any other path a plain response that looks like frames.
func echoServer(t *testing.T, compress bool, record func(wirecount.Message)) (*httptest.Server, *wirecount.Listener) {
	t.Helper()
	up := websocket.Upgrader{EnableCompression: compress}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ws" {
			io.WriteString(w, "\r\n\r\nnot a frame")
			return
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			typ, p, err := c.ReadMessage()
			if err != nil {
				return
			}
			c.EnableWriteCompression(len(p) > 100)
			c.WriteMessage(typ, p)
		}
	}))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wl := wirecount.Wrap(l)
	wl.Record = record
	srv.Listener = wl
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, wl
}
