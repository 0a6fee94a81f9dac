package wsread

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet/internal/wsmask"
)

// frame encodes a frame by RFC 6455 section 5.2: b0 is its first byte
// (FIN, RSV bits, opcode); the payload is masked with key if mask.
func frame(b0 byte, payload []byte, mask bool, key uint32) []byte {
	f := []byte{b0}
	var m byte
	if mask {
		m = 0x80
	}
	switch n := len(payload); {
	case n <= 125:
		f = append(f, m|byte(n))
	case n <= 0xffff:
		f = append(f, m|126)
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	default:
		f = append(f, m|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	if !mask {
		return append(f, payload...)
	}
	f = binary.LittleEndian.AppendUint32(f, key)
	start := len(f)
	f = append(f, payload...)
	wsmask.Mask(f[start:], key)
	return f
}

// buffered returns a reader holding data, all of it buffered.
func buffered(t testing.TB, data []byte) *bufio.Reader {
	br := bufio.NewReaderSize(bytes.NewReader(data), max(len(data), 16))
	if len(data) > 0 {
		if _, err := br.Peek(len(data)); err != nil {
			t.Fatal(err)
		}
	}
	return br
}

// TestBuffered takes the plain single frames whole in the buffer, from
// a client (masked) or a server, and leaves everything else to gorilla,
// unread.
func TestBuffered(t *testing.T) {
	const key = 0x9a3f0c71
	small := []byte(`[["m",1,"hello"]]`)
	mid := bytes.Repeat([]byte("x"), 300)
	const text, binaryOp, fin = websocket.TextMessage, websocket.BinaryMessage, 0x80
	tests := []struct {
		name       string
		data       []byte
		fromClient bool
		limit      int64
		want       []byte // the payload; nil: not taken
		typ        int
	}{
		{"client text", frame(fin|text, small, true, key), true, 1024, small, text},
		{"server text", frame(fin|text, small, false, 0), false, 1024, small, text},
		{"client binary, 16-bit length", frame(fin|binaryOp, mid, true, key), true, 1024, mid, binaryOp},
		{"empty", frame(fin|text, nil, true, key), true, 1024, []byte{}, text},
		{"client frame unmasked", frame(fin|text, small, false, 0), true, 1024, nil, 0},
		{"server frame masked", frame(fin|text, small, true, key), false, 1024, nil, 0},
		{"ping", frame(fin|websocket.PingMessage, small, true, key), true, 1024, nil, 0},
		{"close", frame(fin|websocket.CloseMessage, []byte{3, 232}, true, key), true, 1024, nil, 0},
		{"a fragment", frame(text, small, true, key), true, 1024, nil, 0},
		{"a continuation", frame(fin|0, small, true, key), true, 1024, nil, 0},
		{"compressed (RSV1)", frame(fin|0x40|text, small, true, key), true, 1024, nil, 0},
		{"RSV2", frame(fin|0x20|text, small, true, key), true, 1024, nil, 0},
		{"over the limit", frame(fin|text, mid, true, key), true, 299, nil, 0},
		{"at the limit", frame(fin|text, mid, true, key), true, 300, mid, text},
		{"64-bit length", frame(fin|text, bytes.Repeat([]byte("y"), 0x10000), true, key), true, 1 << 20, nil, 0},
		{"header only", frame(fin|text, small, true, key)[:6], true, 1024, nil, 0},
		{"one byte short", frame(fin|text, small, true, key)[:6+len(small)-1], true, 1024, nil, 0},
		{"length cut", frame(fin|text, mid, true, key)[:3], true, 1024, nil, 0},
		{"one byte", []byte{fin | text}, true, 1024, nil, 0},
		{"nothing", nil, true, 1024, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			br := buffered(t, tc.data)
			typ, p, n, ok := Buffered(br, tc.fromClient, tc.limit)
			if ok != (tc.want != nil) {
				t.Fatalf("ok = %v, want %v", ok, tc.want != nil)
			}
			if br.Buffered() != len(tc.data) {
				t.Fatalf("%d bytes left buffered of %d: Buffered consumed some", br.Buffered(), len(tc.data))
			}
			if !ok {
				if !tc.fromClient || len(tc.data) < 6 || tc.data[1]&0x80 == 0 {
					return
				}
				// Masked bytes declined are left as they came.
				if !bytes.Equal(mustPeek(t, br), tc.data) {
					t.Fatal("the bytes left were changed")
				}
				return
			}
			if typ != tc.typ || !bytes.Equal(p, tc.want) || n != len(tc.data) {
				t.Fatalf("got type %d, %q, %d bytes; want %d, %q, %d", typ, p, n, tc.typ, tc.want, len(tc.data))
			}
		})
	}
}

func mustPeek(t *testing.T, br *bufio.Reader) []byte {
	t.Helper()
	b, err := br.Peek(br.Buffered())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBufferedInTurn reads two frames buffered together, the second
// once the first is discarded, and then declines a ping after them.
func TestBufferedInTurn(t *testing.T) {
	data := append(frame(0x81, []byte("one"), true, 1), frame(0x82, []byte("two"), true, 2)...)
	data = append(data, frame(0x89, nil, true, 3)...)
	br := buffered(t, data)
	for i, want := range []string{"one", "two"} {
		_, p, n, ok := Buffered(br, true, 100)
		if !ok || string(p) != want {
			t.Fatalf("message %d: %q, %v", i, p, ok)
		}
		br.Discard(n)
	}
	if _, _, _, ok := Buffered(br, true, 100); ok {
		t.Fatal("a ping was taken")
	}
}

// FuzzBuffered holds Buffered to the frame format: whatever the bytes,
// it consumes nothing, and what it takes is the frame its first n bytes
// encode: its type, its length and, masked again, its payload.
func FuzzBuffered(f *testing.F) {
	f.Add(frame(0x81, []byte(`[["m",1,"x"]]`), true, 0x01020304), true, int64(1024))
	f.Add(frame(0x82, bytes.Repeat([]byte{7}, 200), false, 0), false, int64(1024))
	f.Add(frame(0x89, nil, true, 5), true, int64(10))
	f.Fuzz(func(t *testing.T, data []byte, fromClient bool, limit int64) {
		orig := bytes.Clone(data)
		br := buffered(t, data)
		typ, p, n, ok := Buffered(br, fromClient, limit)
		if br.Buffered() != len(data) {
			t.Fatalf("consumed %d bytes", len(data)-br.Buffered())
		}
		if !ok {
			return
		}
		if typ != websocket.TextMessage && typ != websocket.BinaryMessage || int64(len(p)) > limit || n > len(data) {
			t.Fatalf("took type %d, %d bytes of payload, n %d of %d", typ, len(p), n, len(data))
		}
		hdr := n - len(p)
		wantHdr := 2
		switch l := int(orig[1] & 0x7f); {
		case l <= 125:
			if l != len(p) {
				t.Fatalf("took %d bytes of a frame of %d", len(p), l)
			}
		case l == 126:
			wantHdr = 4
			if l := int(binary.BigEndian.Uint16(orig[2:])); l != len(p) {
				t.Fatalf("took %d bytes of a frame of %d", len(p), l)
			}
		default:
			t.Fatal("took a frame with a 64-bit length")
		}
		wire := bytes.Clone(p)
		if fromClient {
			wantHdr += 4
			wsmask.Mask(wire, binary.LittleEndian.Uint32(orig[hdr-4:]))
		}
		if hdr != wantHdr || orig[0] != 0x80|byte(typ) || !bytes.Equal(wire, orig[hdr:n]) {
			t.Fatalf("took type %d, %q after %d header bytes from % x", typ, p, hdr, orig[:n])
		}
	})
}
