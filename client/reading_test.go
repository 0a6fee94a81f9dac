package client

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
)

// pipeConn is a net.Conn reading r, for frameConn's tests.
type pipeConn struct {
	net.Conn
	r io.Reader
}

func (p *pipeConn) Read(b []byte) (int, error) { return p.r.Read(b) }

// frameHeader returns a server frame's header for a payload of n bytes.
func frameHeader(n int, masked bool) []byte {
	var h []byte
	b1 := byte(0)
	if masked {
		b1 = 0x80
	}
	switch {
	case n < 126:
		h = []byte{0x81, b1 | byte(n)}
	case n <= 0xffff:
		h = binary.BigEndian.AppendUint16([]byte{0x81, b1 | 126}, uint16(n))
	default:
		h = binary.BigEndian.AppendUint64([]byte{0x81, b1 | 127}, uint64(n))
	}
	if masked {
		h = append(h, 1, 2, 3, 4)
	}
	return h
}

// TestFrameConnBoundsReads: once the handshake is over, no read hands
// gorilla bytes of two frames, whatever their lengths' encodings; before
// it, no read goes past a header block's end, "\r\n\r\n" or "\n\n".
func TestFrameConnBoundsReads(t *testing.T) {
	var stream bytes.Buffer
	stream.WriteString("HTTP/1.1 200 Connection established\r\n\r\n")
	stream.WriteString("HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\n\n")
	var frames [][]byte
	for _, f := range []struct {
		n      int
		masked bool
	}{{0, false}, {5, false}, {125, true}, {126, false}, {3000, false}, {70000, true}, {1, false}} {
		b := append(frameHeader(f.n, f.masked), bytes.Repeat([]byte{'x'}, f.n)...)
		frames = append(frames, b)
		stream.Write(b)
	}
	whole := stream.Bytes()
	fc := newFrameConn(&pipeConn{r: bytes.NewReader(whole)})
	buf := make([]byte, 1<<17)

	read := func() []byte {
		t.Helper()
		n, err := fc.Read(buf)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return buf[:n]
	}
	// The header blocks, each read alone (here, at once: they are buffered).
	for _, want := range []string{"HTTP/1.1 200 Connection established\r\n\r\n", "HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\n\n"} {
		var got []byte
		for len(got) < len(want) {
			got = append(got, read()...)
		}
		if string(got) != want {
			t.Fatalf("header block read as %q, want %q", got, want)
		}
	}
	fc.handshook()
	for i, want := range frames {
		var got []byte
		for len(got) < len(want) {
			got = append(got, read()...)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("frame %d: read %d bytes, want exactly its %d", i, len(got), len(want))
		}
	}
	if _, err := fc.Read(buf); err != io.EOF {
		t.Fatalf("after the frames: %v, want EOF", err)
	}
}

// TestFrameConnRefusesHugeLength: a 64-bit length no frame can have fails
// the read instead of overflowing.
func TestFrameConnRefusesHugeLength(t *testing.T) {
	h := binary.BigEndian.AppendUint64([]byte{0x81, 127}, 1<<63-1)
	fc := newFrameConn(&pipeConn{r: bytes.NewReader(h)})
	fc.handshook()
	if _, err := fc.Read(make([]byte, 64)); err != errFrameTooLarge {
		t.Fatalf("read = %v, want errFrameTooLarge", err)
	}
}

// FuzzFrameConn feeds arbitrary bytes, handshake or frames, through a
// frameConn read in chunks of every size: whatever lengths the bytes
// claim, it never hands out more than asked, and what it hands out is
// what it was fed, in order, with nothing skipped or repeated.
func FuzzFrameConn(f *testing.F) {
	f.Add([]byte("HTTP/1.1 101 OK\r\n\r\n\x81\x05hello\x81\x00"), uint8(3), uint8(0))
	f.Add(append(frameHeader(300, true), make([]byte, 300)...), uint8(7), uint8(1))
	f.Add([]byte("\n\n\r\n\r\nabc"), uint8(1), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, size uint8, frames uint8) {
		fc := newFrameConn(&pipeConn{r: bytes.NewReader(data)})
		if frames&1 != 0 {
			fc.handshook()
		}
		var out []byte
		p := make([]byte, int(size)+1)
		for {
			n, err := fc.Read(p)
			if n > len(p) {
				t.Fatalf("read %d into %d", n, len(p))
			}
			out = append(out, p[:n]...)
			if err != nil {
				break
			}
		}
		if !bytes.HasPrefix(data, out) {
			t.Fatalf("handed out %q, not a prefix of %q", out, data)
		}
	})
}

// TestFrameConnWaiterSeesEverything: what a Waiter on a frameConn's
// buffer reports as buffered is all that arrived and was not read: after
// a whole frame, gorilla's buffer holds nothing.
func TestFrameConnWaiterSeesEverything(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	fc := newFrameConn(a)
	fc.handshook()
	two := append(append(frameHeader(3, false), "one"...), append(frameHeader(3, false), "two"...)...)
	go b.Write(two)
	// gorilla's own buffer, reading through fc.
	gb := bufio.NewReaderSize(fc, 4096)
	first := make([]byte, 5)
	if _, err := io.ReadFull(gb, first); err != nil || string(first[2:]) != "one" {
		t.Fatalf("first frame %q, %v", first, err)
	}
	if gb.Buffered() != 0 {
		t.Fatalf("gorilla's buffer holds %d bytes after a whole frame, want 0", gb.Buffered())
	}
	fc.br.Peek(5) // in case the pipe handed the second frame over apart
	if fc.br.Buffered() != 5 {
		t.Fatalf("the client's buffer holds %d bytes, want the second frame's 5", fc.br.Buffered())
	}
}
