// Package wirecount counts what crosses a server's connections, for tests
// and benchmarks: bytes each way, and on WebSocket connections the text
// and binary messages each way, read from the frames' opcodes (RFC 6455
// section 5.2), and those compressed by permessage-deflate. It lets a
// test check what a client put on the wire without trusting the code
// under test to say so; Listener.Record hands it each message whole.
//
// A Listener and its Counts are safe for concurrent use.
package wirecount

import (
	"bytes"
	"compress/flate"
	"io"
	"net"
	"strings"
	"sync/atomic"
)

// Counts are the totals of a Listener's connections. In is what the
// server read, Out what it wrote.
type Counts struct {
	BytesIn, BytesOut   atomic.Int64
	TextIn, TextOut     atomic.Int64 // WebSocket text messages
	BinaryIn, BinaryOut atomic.Int64 // WebSocket binary messages
	// DeflatedIn and DeflatedOut count the WebSocket messages whose first
	// frame has RSV1 set: compressed by permessage-deflate (RFC 7692
	// section 6).
	DeflatedIn, DeflatedOut atomic.Int64
}

// Message is one WebSocket data message as it crossed the wire.
type Message struct {
	Out      bool // written by the server
	Binary   bool
	Deflated bool // RSV1 set: Payload is DEFLATE data (RFC 7692 section 7.2.1)
	// Payload is the message's frames' payloads joined, unmasked, as
	// sent: compressed if Deflated.
	Payload []byte
}

// Inflated returns the payload of m as the application wrote it:
// decompressed if m is Deflated (the sender dropped the empty block's
// 00 00 ff ff that ends every message, RFC 7692 section 7.2.1, and a
// final empty block ends the stream), as it is otherwise.
func (m Message) Inflated() ([]byte, error) {
	if !m.Deflated {
		return m.Payload, nil
	}
	tail := strings.NewReader("\x00\x00\xff\xff\x01\x00\x00\xff\xff")
	return io.ReadAll(flate.NewReader(io.MultiReader(bytes.NewReader(m.Payload), tail)))
}

// Listener wraps a net.Listener and counts its connections' traffic.
type Listener struct {
	net.Listener
	Counts Counts
	// Record, if set before the first Accept, receives every WebSocket
	// data message of every connection once its last frame has crossed,
	// on the goroutine that read or wrote that frame.
	Record func(Message)
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
	cc.in = frameReader{text: &l.Counts.TextIn, binary: &l.Counts.BinaryIn, deflated: &l.Counts.DeflatedIn, record: l.Record}
	cc.out = frameReader{text: &l.Counts.TextOut, binary: &l.Counts.BinaryOut, deflated: &l.Counts.DeflatedOut,
		record: l.Record, msg: Message{Out: true}}
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

// Write counts the messages of p before it writes them, so that a peer
// that has read a message finds it counted; BytesOut counts what was
// written.
func (c *conn) Write(p []byte) (int, error) {
	c.out.feed(p, upgradeResponse)
	n, err := c.Conn.Write(p)
	c.counts.BytesOut.Add(int64(n))
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
	text, binary, deflated *atomic.Int64
	record                 func(Message)
	framing                bool
	done                   bool   // the first header block was no upgrade: nothing to count
	head                   []byte // an HTTP header block, or a frame header, so far
	skip                   uint64 // payload bytes of the current frame still to pass

	// The current frame, and the message being recorded.
	fin, control bool
	mask         [4]byte // zero if unmasked
	off          int     // payload bytes of the current frame passed
	msg          Message
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
			if r.record != nil && !r.control {
				for _, b := range p[:n] {
					r.msg.Payload = append(r.msg.Payload, b^r.mask[r.off%4])
					r.off++
				}
			}
			r.skip -= n
			p = p[n:]
			if r.skip == 0 {
				r.frameEnd()
			}
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
	op := h[0] & 0x0f
	r.fin, r.control, r.off = h[0]&0x80 != 0, op >= 8, 0
	if op == 1 || op == 2 {
		if op == 1 {
			r.text.Add(1)
		} else {
			r.binary.Add(1)
		}
		deflated := h[0]&0x40 != 0
		if deflated {
			r.deflated.Add(1)
		}
		r.msg = Message{Out: r.msg.Out, Binary: op == 2, Deflated: deflated}
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
	r.mask = [4]byte{}
	if h[1]&0x80 != 0 {
		copy(r.mask[:], h[len(h)-4:])
	}
	r.skip = n
	r.head = r.head[:0]
	if n == 0 {
		r.frameEnd()
	}
}

// frameEnd hands the message on to Record once its last frame is done.
func (r *frameReader) frameEnd() {
	if r.record == nil || r.control || !r.fin {
		return
	}
	r.record(r.msg)
	r.msg = Message{Out: r.msg.Out}
}
