package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet/internal/trywrite"
	"github.com/seed-544bbf9f/comet/transport"
)

// TestSendWritesItself: on a WebSocket whose writes never wait, Send
// writes its message itself. The attachment here has no writer goroutine
// at all, so the message reaches the server only if Send wrote it.
func TestSendWritesItself(t *testing.T) {
	t.Parallel()
	got := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		_, p, err := conn.ReadMessage()
		if err == nil {
			got <- p
		}
	}))
	defer srv.Close()
	c := newTestConn(t, srv.URL, nil)
	o, _ := (&Options{}).withDefaults()
	d := o.wsDialer()
	ws, _, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_, prompt := ws.NetConn().(*trywrite.Conn)
	if !prompt {
		t.Fatal("the dialer did not wrap a TCP connection")
	}
	w := &wsAttachment{c: c, ws: ws, interval: time.Second, prompt: true}
	c.mu.Lock()
	c.promptWS = w
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Send(ctx, transport.Text, []byte("itself")); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if want := `["m",1,"itself"]` + "\n"; string(p) != want {
			t.Fatalf("the server read %q, want %q", p, want)
		}
	case <-ctx.Done():
		t.Fatal("Send did not write its message")
	}
	c.mu.Lock()
	sent, busy := w.sent, w.busy
	c.mu.Unlock()
	if sent != 1 || busy {
		t.Fatalf("after Send: sent %d, busy %v; want 1, false", sent, busy)
	}
}
