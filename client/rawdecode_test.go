package client

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet/transport"
)

// TestDecodeWS checks the reader's decoding of a downstream WebSocket
// message: a raw binary message's payload must not alias the reader's
// buffer, which is reused, and a bad header closes the session with 1002.
func TestDecodeWS(t *testing.T) {
	msg := []byte("[\"r\",1]\n\x00\xff")
	frames, err := decodeWS(nil, websocket.BinaryMessage, msg)
	if err != nil || len(frames) != 1 || frames[0].Type != transport.TypeBinary || frames[0].Seq != 1 ||
		!bytes.Equal(frames[0].Payload, []byte{0, 0xff}) {
		t.Fatalf("decodeWS = %+v, %v", frames, err)
	}
	msg[len(msg)-1] = 1
	if frames[0].Payload[1] != 0xff {
		t.Fatal("the payload aliases the message buffer")
	}

	for _, bad := range []string{`["r",1]`, "[\"r\",0]\nx", "[\"b\",1]\nx", "[\"r\",1,2]\nx"} {
		_, err := decodeWS(nil, websocket.BinaryMessage, []byte(bad))
		if !errors.Is(err, transport.ErrMalformed) {
			t.Fatalf("decodeWS(%q) = %v, want ErrMalformed", bad, err)
		}
		c := newTestConn(t, "http://127.0.0.1:1/comet", nil)
		c.failDecode(err)
		if _, _, err := c.Recv(context.Background()); transport.CloseStatus(err) != transport.CloseProtocolError {
			t.Fatalf("after %q: Recv = %v, want close 1002", bad, err)
		}
	}
}
