// Package wirecount counts what crosses a server's connections, for tests
// and benchmarks: bytes each way, and on WebSocket connections the text
// and binary messages each way, read from the frames' opcodes (RFC 6455
// section 5.2). It lets a test check what a client put on the wire
// without trusting the code under test to say so.
//
// A Listener and its Counts are safe for concurrent use.
package wirecount

import (
	"bytes"
	"net"
	"sync/atomic"
)

// Counts are the totals of a Listener's connections. In is what the
// server read, Out what it wrote.
type Counts struct {
	BytesIn, BytesOut   atomic.Int64
	TextIn, TextOut     atomic.Int64 // WebSocket text messages
	BinaryIn, BinaryOut atomic.Int64 // WebSocket binary messages
}

// Listener wraps a net.Listener and counts its connections' traffic.
type Listener struct {
	net.Listener
	Counts Counts
}

// Wrap returns a counting Listener around l.
func Wrap(l net.Listener) *Listener { return &Listener{Listener: l} }

// Accept implements net.Listener.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &conn{Conn: c, counts: &l.Counts}
	cc.in = frameReader{text: &l.Counts.TextIn, binary: &l.Counts.BinaryIn}
	cc.out = frameReader{text: &l.Counts.TextOut, binary: &l.Counts.BinaryOut}
	return cc, nil
}

// conn counts one connection. Read and Write may run concurrently; each
// direction's parser is touched by one of them only.
type conn struct {
	net.Conn
	counts  *Counts
	in, out frameReader
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.counts.BytesIn.Add(int64(n))
	c.in.feed(p[:n], upgradeRequest)
	return n, err
}

func (c *conn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.counts.BytesOut.Add(int64(n))
	c.out.feed(p[:n], upgradeResponse)
	return n, err
}

// upgradeRequest and upgradeResponse tell, from a header block, whether
// the WebSocket frames begin after it.
func upgradeRequest(head []byte) bool {
	return bytes.Contains(bytes.ToLower(head), []byte("\nupgrade: websocket"))
}

func upgradeResponse(head []byte) bool { return bytes.HasPrefix(head, []byte("HTTP/1.1 101 ")) }

// frameReader follows one direction of a connection: its first HTTP
// header block, then, if that was an upgrade, WebSocket frames, whose
// first frame of each message it counts by opcode.
type frameReader struct {
	text, binary *atomic.Int64
	framing      bool
	done         bool   // the first header block was no upgrade: nothing to count
	head         []byte // an HTTP header block, or a frame header, so far
	skip         uint64 // payload bytes of the current frame still to pass
}

// maxHead bounds the HTTP header block kept; a longer one is no upgrade
// this package needs to see.
const maxHead = 8 << 10

func (r *frameReader) feed(p []byte, upgrade func([]byte) bool) {
	for len(p) > 0 && !r.done {
		if !r.framing {
			r.head = append(r.head, p...)
			i := bytes.Index(r.head, []byte("\r\n\r\n"))
			if i < 0 {
				if len(r.head) > maxHead {
					r.head = r.head[len(r.head)-3:]
				}
				return
			}
			rest := r.head[i+4:]
			// A WebSocket connection begins with its upgrade (clients dial
			// a connection of their own for it); any other connection is
			// plain HTTP from its first request on.
			r.framing = upgrade(r.head[:i+2])
			r.done = !r.framing
			p = append([]byte(nil), rest...)
			r.head = r.head[:0]
			continue
		}
		if r.skip > 0 {
			n := min(r.skip, uint64(len(p)))
			r.skip -= n
			p = p[n:]
			continue
		}
		r.head = append(r.head, p[0])
		p = p[1:]
		if size, ok := frameHeaderSize(r.head); ok && len(r.head) == size {
			r.frame()
		}
	}
}

// frameHeaderSize returns the size of the frame header h begins, once h
// holds enough of it to tell.
func frameHeaderSize(h []byte) (int, bool) {
	if len(h) < 2 {
		return 0, false
	}
	size := 2
	switch h[1] & 0x7f {
	case 126:
		size += 2
	case 127:
		size += 8
	}
	if h[1]&0x80 != 0 {
		size += 4 // masking key
	}
	return size, true
}

// frame counts the frame whose header is r.head and sets up the skip of
// its payload.
func (r *frameReader) frame() {
	h := r.head
	switch h[0] & 0x0f {
	case 1:
		r.text.Add(1)
	case 2:
		r.binary.Add(1)
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		n = uint64(h[2])<<8 | uint64(h[3])
	case 127:
		n = 0
		for _, b := range h[2:10] {
			n = n<<8 | uint64(b)
		}
	}
	r.skip = n
	r.head = r.head[:0]
}
