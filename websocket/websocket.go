// Package websocket is Comet's WebSocket transport: it adapts a
// gorilla/websocket connection to the session layer. Every WebSocket
// text message, both ways, holds one batch of frames; once negotiate has
// agreed to them, a binary message travels as a binary WebSocket message
// of its own (PROTOCOL.md sections 4 and 5). When the handler's
// Limits.DeflateLevel asks for it, the upgrade offers permessage-deflate
// (RFC 7692), and a client that accepts gets large messages compressed
// both ways, the open frame always alone and uncompressed.
//
// The adapter is safe for concurrent use. Each connection has one reader
// at a time, and one writer. On a plain TCP connection neither needs a
// goroutine of its own. Reads: the session reads the connection from the
// application's goroutine while it waits in Recv (transport.Reader,
// internal/readwait), and from a goroutine of its own while nobody does.
// Writes never wait on the client (internal/trywrite): the session writes
// from the goroutine that has something to send, and bytes the socket
// does not take at once go from a goroutine that lives only until they
// have. Elsewhere (TLS terminated by the server) the connection has a
// reader goroutine, and the session's writer is a goroutine that runs
// while there is something to write and ends soon after there is none.
package websocket

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet/internal/readwait"
	"github.com/seed-544bbf9f/comet/internal/trywrite"
	"github.com/seed-544bbf9f/comet/internal/wsread"
	"github.com/seed-544bbf9f/comet/internal/wswrite"
	"github.com/seed-544bbf9f/comet/transport"
)

// Options configures the adapter. Nil means defaults.
type Options struct {
	// ReadBufferSize is the size of each connection's read buffer. Upstream
	// traffic is mostly small acks, so it is small. Default 1 KiB; at
	// least 512 bytes.
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
	// deflater is upgrader offering permessage-deflate, for a handler whose
	// Limits.DeflateLevel asks for it.
	deflater websocket.Upgrader
	readSize int // each connection's read buffer
}

// minReadBuffer is the smallest read buffer the upgrader keeps as the
// connection's (gorilla/websocket takes a hijacked one above 256 bytes).
const minReadBuffer = 512

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
	ad := &Adapter{readSize: max(o.ReadBufferSize, minReadBuffer), upgrader: websocket.Upgrader{
		HandshakeTimeout: o.HandshakeTimeout,
		// Zero: the upgrader reads through the buffer the hijacker
		// gives it (see hijacker), of readSize bytes.
		ReadBufferSize:  0,
		WriteBufferSize: o.WriteBufferSize,
		WriteBufferPool: &sync.Pool{},
		// The session handler has applied the Origin policy already.
		CheckOrigin: func(*http.Request) bool { return true },
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			transport.WriteError(w, status, transport.ErrorBody{Code: transport.CodeBadRequest, Message: reason.Error()}, 0)
		},
	}}
	ad.deflater = ad.upgrader
	ad.deflater.EnableCompression = true
	return ad
}

// Name returns transport.WebSocket.
func (*Adapter) Name() string { return transport.WebSocket }

// ServeAttach upgrades the request, starts the attachment and returns:
// the connection is hijacked, and what the request's goroutine holds
// (net/http's buffers for the connection, the request) is garbage once it
// returns. The session reads and writes the connection as the package
// doc says.
func (ad *Adapter) ServeAttach(w http.ResponseWriter, r *http.Request, a transport.Attachment) {
	lim := a.Limits()
	up := &ad.upgrader
	if lim.DeflateLevel != 0 {
		up = &ad.deflater
	}
	hw := &hijacker{ResponseWriter: w, readSize: ad.readSize}
	conn, err := up.Upgrade(hw, r, w.Header().Clone())
	if err != nil {
		return // the upgrader has answered
	}
	conn.SetReadLimit(int64(lim.MaxBatch))
	// A client that offered no permessage-deflate cannot have it; one
	// that did is treated as having it, which at worst costs its open
	// frame a message of its own.
	deflate := lim.DeflateLevel != 0 && wswrite.Named(r.Header)
	wswrite.Setup(conn, lim.DeflateLevel)
	ds := &downstream{conn: conn, sock: hw.conn, timeout: lim.WriteTimeout, deflate: deflate, prompt: hw.prompt}
	if hw.prompt {
		// Only a write that waits can time out: the socket bounds it,
		// and WriteBatch reads no clock.
		hw.conn.(*trywrite.Conn).SetWriteTimeout(lim.WriteTimeout)
	}
	if a.Start(ds, transport.Stream) != nil {
		return // the session has finished; Start closed the connection
	}
	rd := &reader{conn: conn, br: hw.br, a: a, limit: int64(lim.MaxBatch)}
	if ra, ok := a.(transport.ReadingAttachment); ok && hw.br != nil {
		if rd.wait = readwait.New(hw.conn, hw.br); rd.wait != nil {
			ra.Read(rd)
			return
		}
	}
	go rd.loop()
}

// reader feeds upstream batches, of at most limit bytes once
// decompressed, to the attachment until the connection fails or the
// attachment ends, which closes the connection. It is the session's
// transport.Reader where the socket can be waited on (readwait), and
// otherwise its own goroutine.
type reader struct {
	conn  *websocket.Conn
	br    *bufio.Reader // what gorilla reads conn through, if ours (see hijacker)
	a     transport.Attachment
	limit int64
	wait  *readwait.Waiter
}

func (rd *reader) loop() {
	for rd.ReadOne() {
	}
}

// Wait implements transport.Reader.
func (rd *reader) Wait() bool { return rd.wait.Wait() }

// Interrupt implements transport.Reader.
func (rd *reader) Interrupt() { rd.wait.Interrupt() }

// ReadOne implements transport.Reader.
func (rd *reader) ReadOne() bool {
	a := rd.a
	if rd.br != nil {
		if typ, p, n, ok := wsread.Buffered(rd.br, true, rd.limit); ok {
			err := rd.receive(typ, p)
			rd.br.Discard(n)
			return rd.goesOn(err)
		}
	}
	typ, b, err := wsread.Next(rd.conn, rd.limit)
	switch {
	case errors.Is(err, websocket.ErrReadLimit):
		a.Fail(transport.CloseMessageTooBig, "WebSocket message exceeds the batch limit")
		return false
	case err != nil:
		a.End(err)
		return false
	}
	err = rd.receive(typ, b.Bytes())
	wsread.Put(b)
	return rd.goesOn(err)
}

// receive hands the attachment a message read, which keeps nothing of p.
func (rd *reader) receive(typ int, p []byte) error {
	if typ == websocket.BinaryMessage {
		// A raw binary message, if negotiate agreed to them; the
		// session refuses it with 1002 otherwise.
		return rd.a.ReceiveBinary(p)
	}
	return rd.a.Receive(p)
}

// goesOn reports whether reading goes on after the attachment took a
// message with err.
func (rd *reader) goesOn(err error) bool {
	a := rd.a
	if err != nil {
		select {
		case <-a.Done():
			return false
		default: // a violation: keep reading for the client's ack of our close
		}
	}
	return true
}

// hijacker hands the upgrader the hijacked connection wrapped by
// trywrite where the socket allows, so that the session's writes never
// wait on the client and need no goroutine of their own, and a read
// buffer of its own, which the upgrader keeps as the connection's, so
// that a reader waiting on the socket (readwait) knows what the buffer
// holds already.
type hijacker struct {
	http.ResponseWriter
	readSize int
	conn     net.Conn
	br       *bufio.Reader // nil if the upgrader refuses the connection
	prompt   bool
}

func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	c, h.prompt = trywrite.Wrap(c)
	h.conn = c
	if brw.Reader.Buffered() > 0 {
		return c, brw, nil // the upgrader refuses it: data before the handshake's end
	}
	h.br = bufio.NewReaderSize(c, h.readSize)
	return c, bufio.NewReadWriter(h.br, brw.Writer), nil
}

// Unwrap returns the wrapped ResponseWriter, for http.ResponseController.
func (h *hijacker) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// downstream writes batches as WebSocket text messages, and the raw
// binary messages of a batch (when the session agreed to them) as binary
// messages, in sequence order.
type downstream struct {
	conn    *websocket.Conn
	sock    net.Conn // the socket under conn: a trywrite.Conn if prompt
	timeout time.Duration
	deflate bool // permessage-deflate may be in use: see wswrite.Batch
	prompt  bool // the connection's writes never wait (trywrite)
	once    sync.Once
}

// WritesPromptly implements transport.PromptDownstream.
func (d *downstream) WritesPromptly() bool { return d.prompt }

// WritesRaw implements transport.RawDownstream.
func (d *downstream) WritesRaw() bool { return true }

func (d *downstream) WriteBatch(b *transport.Batch) error {
	switch {
	case !d.prompt:
		d.conn.SetWriteDeadline(time.Now().Add(d.timeout))
	case !d.deflate:
		// The socket never waits and takes each write whole, beside
		// gorilla's control frames.
		return wswrite.Direct(d.conn, d.sock, b, false)
	}
	return wswrite.Batch(d.conn, b, d.deflate)
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
