// Package wsread reads WebSocket messages into pooled buffers, for the
// server's WebSocket adapter and the Go client. gorilla's ReadMessage
// allocates a fresh, growing buffer per message: half the bytes an echo
// round trip allocated. transport.DecodeBatch copies what it keeps, so a
// batch's buffer can go back to the pool as soon as it is decoded.
package wsread

import (
	"bytes"
	"io"
	"sync"

	"github.com/gorilla/websocket"
)

// maxPooled bounds the buffers kept for reuse, so that the pool does not
// hold on to a rare large batch.
const maxPooled = 64 << 10

var pool = sync.Pool{New: func() any { return new(Buffer) }}

// Buffer holds a message read by Next. It carries the reader that bounds
// the message, so that a read allocates neither.
type Buffer struct {
	bytes.Buffer
	limited io.LimitedReader
}

// Next reads the next message of conn into a pooled buffer. The caller
// gives the buffer back with Put once done with its bytes. On error the
// buffer is nil. A message longer than limit bytes, as read, fails with
// websocket.ErrReadLimit: gorilla's own read limit counts the bytes on
// the wire, which permessage-deflate may inflate a thousandfold.
func Next(conn *websocket.Conn, limit int64) (typ int, b *Buffer, err error) {
	typ, r, err := conn.NextReader()
	if err != nil {
		return typ, nil, err
	}
	b = pool.Get().(*Buffer)
	b.limited = io.LimitedReader{R: r, N: limit + 1}
	n, err := b.ReadFrom(&b.limited)
	b.limited.R = nil
	if err == nil && n > limit {
		err = websocket.ErrReadLimit
	}
	if err != nil {
		Put(b)
		return typ, nil, err
	}
	return typ, b, nil
}

// Put returns b, from Next, to the pool; its bytes are invalid after.
func Put(b *Buffer) {
	if b.Cap() <= maxPooled {
		b.Reset()
		pool.Put(b)
	}
}
