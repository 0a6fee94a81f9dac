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
	up := websocket.Upgrader{}
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
			c.WriteMessage(typ, p)
		}
	}))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wl := wirecount.Wrap(l)
	srv.Listener = wl
	srv.Start()
	defer srv.Close()

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
