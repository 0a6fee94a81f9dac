// Package websocket is Comet's WebSocket transport: it adapts a
// gorilla/websocket connection to the session layer. Every WebSocket
// text message, both ways, holds one batch of frames; once negotiate has
// agreed to them, a binary message travels as a binary WebSocket message
// of its own (PROTOCOL.md sections 4 and 5).
//
// The adapter is safe for concurrent use; each connection has exactly one
// reader goroutine and one writer (the session's pump).
package websocket

import (
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet/internal/wsread"
	"github.com/seed-544bbf9f/comet/transport"
)

// Options configures the adapter. Nil means defaults.
type Options struct {
	// ReadBufferSize is the size of each connection's read buffer. Upstream
	// traffic is mostly small acks, so it is small. Default 1 KiB.
	ReadBufferSize int
	// WriteBufferSize is the size of the pooled write buffers, shared by
	// connections between writes. Default 4 KiB.
	WriteBufferSize int
	// HandshakeTimeout bounds the upgrade. Default 10s.
	HandshakeTimeout time.Duration
}

// Adapter serves WebSocket attachments.
type Adapter struct {
	upgrader websocket.Upgrader
}

// New returns a WebSocket adapter.
func New(opts *Options) *Adapter {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.ReadBufferSize == 0 {
		o.ReadBufferSize = 1 << 10
	}
	if o.WriteBufferSize == 0 {
		o.WriteBufferSize = 4 << 10
	}
	if o.HandshakeTimeout == 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	return &Adapter{upgrader: websocket.Upgrader{
		HandshakeTimeout: o.HandshakeTimeout,
		ReadBufferSize:   o.ReadBufferSize,
		WriteBufferSize:  o.WriteBufferSize,
		WriteBufferPool:  &sync.Pool{},
		// The session handler has applied the Origin policy already.
		CheckOrigin: func(*http.Request) bool { return true },
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			transport.WriteError(w, status, transport.ErrorBody{Code: transport.CodeBadRequest, Message: reason.Error()}, 0)
		},
	}}
}

// Name returns transport.WebSocket.
func (*Adapter) Name() string { return transport.WebSocket }

// ServeAttach upgrades the request and serves the attachment until it ends.
func (ad *Adapter) ServeAttach(w http.ResponseWriter, r *http.Request, a transport.Attachment) {
	conn, err := ad.upgrader.Upgrade(w, r, w.Header().Clone())
	if err != nil {
		return // the upgrader has answered
	}
	lim := a.Limits()
	conn.SetReadLimit(int64(lim.MaxBatch))
	ds := &downstream{conn: conn, timeout: lim.WriteTimeout}
	read := make(chan struct{})
	go func() {
		defer close(read)
		readLoop(conn, a)
	}()
	a.Serve(ds, transport.Stream)
	<-read
}

// readLoop feeds upstream batches to the attachment until the connection
// fails or the attachment ends.
func readLoop(conn *websocket.Conn, a transport.Attachment) {
	select {
	case <-a.Started():
	case <-a.Done():
		return
	}
	for {
		typ, b, err := wsread.Next(conn)
		switch {
		case errors.Is(err, websocket.ErrReadLimit):
			a.Fail(transport.CloseMessageTooBig, "WebSocket message exceeds the batch limit")
			return
		case err != nil:
			a.End(err)
			return
		}
		if typ == websocket.BinaryMessage {
			// A raw binary message, if negotiate agreed to them; the
			// session refuses it with 1002 otherwise.
			err = a.ReceiveBinary(b.Bytes())
		} else {
			err = a.Receive(b.Bytes())
		}
		wsread.Put(b)
		if err != nil {
			select {
			case <-a.Done():
				return
			default: // a violation: keep reading for the client's ack of our close
			}
		}
	}
}

// downstream writes batches as WebSocket text messages, and the raw
// binary messages of a batch (when the session agreed to them) as binary
// messages, in sequence order.
type downstream struct {
	conn    *websocket.Conn
	timeout time.Duration
	once    sync.Once
}

// WritesRaw implements transport.RawDownstream.
func (d *downstream) WritesRaw() bool { return true }

func (d *downstream) WriteBatch(b *transport.Batch) error {
	d.conn.SetWriteDeadline(time.Now().Add(d.timeout))
	if !b.Raw {
		return d.conn.WriteMessage(websocket.TextMessage, b.Bytes)
	}
	for binary, p := range b.WSMessages() {
		typ := websocket.TextMessage
		if binary {
			typ = websocket.BinaryMessage
		}
		if err := d.conn.WriteMessage(typ, p); err != nil {
			return err
		}
	}
	return nil
}

// Close says goodbye with a WebSocket close frame, briefly, and closes the
// connection; both are safe concurrently with WriteBatch.
func (d *downstream) Close() error {
	d.once.Do(func() {
		d.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
			time.Now().Add(time.Second))
		d.conn.Close()
	})
	return nil
}
