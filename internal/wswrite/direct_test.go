package wswrite

import (
	"bytes"
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet/transport"
)

// TestDirect writes batches with Direct both ways, server to client
// unmasked and client to server masked, and reads them with gorilla,
// which refuses a client frame without a mask and a server frame with
// one: the messages, their types and their bytes are the batch's, at
// every length class of the frame header, and past directMax, where
// gorilla writes.
func TestDirect(t *testing.T) {
	text := func(seq uint64, n int) transport.Frame {
		return transport.Frame{Type: transport.TypeText, Seq: seq, Payload: bytes.Repeat([]byte{'x'}, n)}
	}
	tests := []struct {
		name   string
		frames []transport.Frame
		binary []byte // a raw binary message appended last, if set
		want   []int  // the messages' types
	}{
		{"an ack", []transport.Frame{{Type: transport.TypeAck, Ack: 7}}, nil, []int{websocket.TextMessage}},
		{"125 bytes at most in the first header", []transport.Frame{text(1, 110)}, nil, []int{websocket.TextMessage}},
		{"a 16-bit length", []transport.Frame{text(1, 300)}, nil, []int{websocket.TextMessage}},
		{"just below directMax", []transport.Frame{text(1, directMax-20)}, nil, []int{websocket.TextMessage}},
		{"above directMax, through gorilla", []transport.Frame{text(1, directMax), text(2, 100)}, nil, []int{websocket.TextMessage}},
		{"a raw binary message after text", []transport.Frame{text(1, 40)}, bytes.Repeat([]byte{0, 1, 2, 0xff}, 100),
			[]int{websocket.TextMessage, websocket.BinaryMessage}},
	}
	for _, tc := range tests {
		for _, fromClient := range []bool{false, true} {
			name := tc.name + ", server to client"
			if fromClient {
				name = tc.name + ", client to server"
			}
			t.Run(name, func(t *testing.T) {
				server, client := plainPair(t)
				w, r := server, client
				if fromClient {
					w, r = client, server
				}
				b := &transport.Batch{Raw: tc.binary != nil}
				for i := range tc.frames {
					b.Append(&tc.frames[i])
				}
				if tc.binary != nil {
					b.AppendBinary(uint64(len(tc.frames)+1), tc.binary)
				}
				if err := Direct(w, w.NetConn(), b, fromClient); err != nil {
					t.Fatal(err)
				}
				var read []byte
				for i, want := range tc.want {
					typ, p, err := r.ReadMessage()
					if err != nil {
						t.Fatalf("message %d: %v", i, err)
					}
					if typ != want {
						t.Fatalf("message %d is of type %d, want %d", i, typ, want)
					}
					read = append(read, p...)
				}
				if !bytes.Equal(read, b.Bytes) {
					t.Fatalf("the messages hold other bytes than the batch's (%d, want %d)", len(read), len(b.Bytes))
				}
			})
		}
	}
}

// TestAppendFrameHeader checks the header of each length class, 64-bit
// lengths included (Direct never writes one), and that a masked payload
// XORed with its key is the payload.
func TestAppendFrameHeader(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 0xffff, 0x10000} {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i * 7)
		}
		for _, mask := range []bool{false, true} {
			f := appendFrame(nil, websocket.BinaryMessage, p, mask)
			if f[0] != 0x80|websocket.BinaryMessage {
				t.Fatalf("length %d: first byte %#x, want FIN and opcode 2", n, f[0])
			}
			if masked := f[1]&0x80 != 0; masked != mask {
				t.Fatalf("length %d: mask bit %v, want %v", n, masked, mask)
			}
			var got, hdr int
			switch l := int(f[1] & 0x7f); l {
			case 126:
				got, hdr = int(binary.BigEndian.Uint16(f[2:])), 4
			case 127:
				got, hdr = int(binary.BigEndian.Uint64(f[2:])), 10
			default:
				got, hdr = l, 2
			}
			wantHdr := 2
			if n > 125 {
				wantHdr = 4
			}
			if n > 0xffff {
				wantHdr = 10
			}
			if got != n || hdr != wantHdr {
				t.Fatalf("length %d: header says %d in %d bytes, want %d bytes", n, got, hdr, wantHdr)
			}
			body := f[hdr:]
			if mask {
				key := body[:4]
				body = bytes.Clone(body[4:])
				for i := range body {
					body[i] ^= key[i%4]
				}
			}
			if !bytes.Equal(body, p) {
				t.Fatalf("length %d, mask %v: the payload did not come back", n, mask)
			}
		}
	}
}

// TestDirectBesideControl writes batches with Direct while another
// goroutine writes pings with gorilla's WriteControl, straight to the
// same socket: the client reads every message whole and in order, and
// every ping.
func TestDirectBesideControl(t *testing.T) {
	server, client := plainPair(t)
	const messages, pings = 200, 200
	pinged := make(chan struct{}, pings)
	client.SetPingHandler(func(string) error {
		pinged <- struct{}{}
		return nil
	})
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() {
		for i := range messages {
			b := &transport.Batch{}
			b.Append(&transport.Frame{Type: transport.TypeText, Seq: uint64(i + 1), Payload: bytes.Repeat([]byte{'m'}, 1000)})
			if err := Direct(server, server.NetConn(), b, false); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Go(func() {
		for range pings {
			if err := server.WriteControl(websocket.PingMessage, []byte("p"), deadline()); err != nil {
				errs <- err
				return
			}
		}
	})
	for i := range messages {
		_, p, err := client.ReadMessage()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		frames, err := transport.DecodeBatch(p)
		if err != nil || len(frames) != 1 || frames[0].Seq != uint64(i+1) {
			t.Fatalf("message %d: %v, %v", i, frames, err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// A last message, written after every ping: once it is read, so
	// are they.
	last := &transport.Batch{}
	last.Append(&transport.Frame{Type: transport.TypeAck, Ack: 1})
	if err := Direct(server, server.NetConn(), last, false); err != nil {
		t.Fatal(err)
	}
	if _, p, err := client.ReadMessage(); err != nil || !bytes.Equal(p, last.Bytes) {
		t.Fatalf("the last message: %q, %v", p, err)
	}
	if len(pinged) != pings {
		t.Fatalf("%d pings read, want %d", len(pinged), pings)
	}
}

func deadline() time.Time { return time.Now().Add(10 * time.Second) }
