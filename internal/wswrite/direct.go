package wswrite

import (
	"encoding/binary"
	"io"
	"math/rand/v2"
	"sync"

	"github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet/internal/wsmask"
	"github.com/seed-544bbf9f/comet/transport"
)

// Direct writes b as Batch does without compression, but builds the
// frames itself and hands them to w, the socket under conn, in one
// Write. gorilla's writer costs, for every message, a buffer from its
// pool and an allocation to put it back, a lock of its own and a write
// deadline; in a 64-session echo that was as much CPU as the rest of a
// server's Send. A batch larger than directMax goes through gorilla,
// which writes its bulk without copying it.
//
// w must take each Write whole, whatever else writes to it
// concurrently: gorilla still writes the control frames (a pong, a
// close) on its own, straight to the socket (trywrite.Conn and
// net.TCPConn do; so does the client's frameConn, which writes through
// one of them). conn must not have negotiated compression. mask is for a
// client, whose frames are masked (RFC 6455 section 5.3).
func Direct(conn *websocket.Conn, w io.Writer, b *transport.Batch, mask bool) error {
	if len(b.Bytes) > directMax {
		return Batch(conn, b, false)
	}
	bp := directBufs.Get().(*[]byte)
	buf := (*bp)[:0]
	for raw, p := range b.WSMessages() {
		op := byte(websocket.TextMessage)
		if raw {
			op = websocket.BinaryMessage
		}
		buf = appendFrame(buf, op, p, mask)
	}
	_, err := w.Write(buf)
	*bp = buf
	directBufs.Put(bp)
	return err
}

// directMax is the largest batch Direct copies into a frame buffer of
// its own; the buffers are kept for reuse, so it also bounds what the
// pool holds on to.
const directMax = 16 << 10

var directBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, 1<<10)
	return &b
}}

// appendFrame appends p as one final frame of opcode op (RFC 6455
// section 5.2), masked with a fresh key if mask is set.
func appendFrame(dst []byte, op byte, p []byte, mask bool) []byte {
	const finalBit, maskBit = 0x80, 0x80
	var m byte
	if mask {
		m = maskBit
	}
	dst = append(dst, finalBit|op)
	switch n := len(p); {
	case n <= 125:
		dst = append(dst, m|byte(n))
	case n <= 0xffff:
		dst = append(dst, m|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, m|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	if !mask {
		return append(dst, p...)
	}
	// The key must be one the application cannot predict (section
	// 10.3): math/rand/v2's generator is seeded from the system's
	// entropy, as gorilla's own keys are.
	key := rand.Uint32()
	dst = binary.LittleEndian.AppendUint32(dst, key)
	start := len(dst)
	dst = append(dst, p...)
	wsmask.Mask(dst[start:], key)
	return dst
}
