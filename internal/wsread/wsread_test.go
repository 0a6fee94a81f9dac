package wsread

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// sender serves a WebSocket that writes msgs, then closes normally.
func sender(t *testing.T, msgs ...[]byte) *websocket.Conn {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for _, m := range msgs {
			if err := c.WriteMessage(websocket.TextMessage, m); err != nil {
				return
			}
		}
		c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
		c.ReadMessage() // until the client's close arrives
	}))
	t.Cleanup(srv.Close)
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestNextReusesBuffers checks that messages of every size arrive whole
// through reused buffers, a large one included, and that the end of the
// connection is reported as ReadMessage reports it.
func TestNextReusesBuffers(t *testing.T) {
	msgs := [][]byte{[]byte("one"), bytes.Repeat([]byte("x"), 100<<10), []byte("three"), {}, []byte("five")}
	c := sender(t, msgs...)
	for i, want := range msgs {
		typ, b, err := Next(c, 1<<20)
		if err != nil || typ != websocket.TextMessage || !bytes.Equal(b.Bytes(), want) {
			t.Fatalf("message %d: type %d, %d bytes, %v; want text, %d bytes", i, typ, len(b.Bytes()), err, len(want))
		}
		Put(b)
	}
	if _, b, err := Next(c, 1<<20); !websocket.IsCloseError(err, websocket.CloseNormalClosure) || b != nil {
		t.Fatalf("after the messages: %v, %v; want the normal close and no buffer", b, err)
	}
}

// TestNextReadLimit checks that a message over the read limit is refused
// with gorilla's ErrReadLimit, which callers map to a close code.
func TestNextReadLimit(t *testing.T) {
	c := sender(t, bytes.Repeat([]byte("x"), 2048))
	c.SetReadLimit(1024)
	if _, b, err := Next(c, 1<<20); !errors.Is(err, websocket.ErrReadLimit) || b != nil {
		t.Fatalf("Next = %v, %v; want ErrReadLimit and no buffer", b, err)
	}
}

// TestNextLimit checks Next's own limit, which counts the bytes as read:
// a message of exactly the limit arrives, one byte more is refused.
func TestNextLimit(t *testing.T) {
	c := sender(t, bytes.Repeat([]byte("x"), 1000), bytes.Repeat([]byte("x"), 1001))
	typ, b, err := Next(c, 1000)
	if err != nil || typ != websocket.TextMessage || b.Len() != 1000 {
		t.Fatalf("Next = %d, %v; want the message of 1000 bytes", typ, err)
	}
	Put(b)
	if _, b, err := Next(c, 1000); !errors.Is(err, websocket.ErrReadLimit) || b != nil {
		t.Fatalf("Next = %v, %v; want ErrReadLimit and no buffer", b, err)
	}
}

// TestPutResets checks that a buffer goes back to the pool empty.
func TestPutResets(t *testing.T) {
	b := new(Buffer)
	b.WriteString("abc")
	Put(b)
	if b.Len() != 0 {
		t.Errorf("a pooled buffer keeps %d bytes, want it reset", b.Len())
	}
}
