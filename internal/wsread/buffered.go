package wsread

import (
	"bufio"
	"encoding/binary"

	"github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet/internal/wsmask"
)

// Buffered returns the next message of a WebSocket connection when it is
// already whole in br, the buffered reader under gorilla's, as a plain
// single frame: final, a text or binary opcode, no extension bits, masked
// exactly when it comes from a client (fromClient), and at most limit
// bytes. Its payload, unmasked in place, is a view of br's buffer, valid
// until the caller gives the message's n bytes up with br.Discard(n).
// Anything else (a control frame, a fragment, a frame not yet whole, one
// gorilla would refuse) is left in br and ok is false: Next then reads it
// through gorilla as always, which knows how to answer it.
//
// A single frame of a few dozen bytes is what an exchange of messages
// sends; reading it through gorilla costs a reader allocated per message
// and a copy into a pooled buffer. Buffered is for the reader between
// messages only: gorilla must have returned every message it began, and
// keep nothing buffered of its own, as on the server (gorilla reads br
// itself) and in the client (whose frameConn hands gorilla one frame at
// a time).
func Buffered(br *bufio.Reader, fromClient bool, limit int64) (typ int, payload []byte, n int, ok bool) {
	h, _ := br.Peek(min(br.Buffered(), 14))
	if len(h) < 2 {
		return 0, nil, 0, false
	}
	const final, rsv, maskBit = 0x80, 0x70, 0x80
	typ = int(h[0] & 0x0f)
	if h[0]&(final|rsv) != final || (typ != websocket.TextMessage && typ != websocket.BinaryMessage) ||
		(h[1]&maskBit != 0) != fromClient {
		return 0, nil, 0, false
	}
	size := 2
	var length uint64
	switch l := h[1] & 0x7f; l {
	case 126:
		size += 2
		if len(h) < size {
			return 0, nil, 0, false
		}
		length = uint64(binary.BigEndian.Uint16(h[2:]))
	case 127:
		return 0, nil, 0, false // 64 KiB or more: never whole in br
	default:
		length = uint64(l)
	}
	var key []byte
	if fromClient {
		if len(h) < size+4 {
			return 0, nil, 0, false
		}
		key = h[size : size+4]
		size += 4
	}
	if int64(length) > limit || uint64(br.Buffered()) < uint64(size)+length {
		return 0, nil, 0, false
	}
	n = size + int(length)
	b, _ := br.Peek(n)
	payload = b[size:]
	if key != nil {
		wsmask.Mask(payload, binary.LittleEndian.Uint32(key))
	}
	return typ, payload, n, true
}
