package client

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"net"
	"time"

	"github.com/seed-544bbf9f/comet/internal/sweep"
)

// A WebSocket whose socket can be waited on (internal/readwait) is read
// from the application's goroutine while it waits in Recv, so that a
// message reaches Recv with no hand-off between goroutines, and from a
// goroutine of the attachment's while nobody waits there. Whoever reads
// holds the reading, guarded by c.mu.

// readState says who reads a WebSocket's connection.
type readState uint8

const (
	readNone       readState = iota // a reader goroutine of its own (no Waiter)
	readIdle                        // nobody: the application is expected back in Recv
	readInline                      // the application's goroutine, in Recv
	readBackground                  // a goroutine of the attachment's (readOn)
	readOver                        // reading has ended (readEnd holds why)
)

// recvAway is how long an application may stay away from Recv, while no
// goroutine reads its WebSocket, before one does: the server's messages,
// acks and close are taken from the socket at most this much later than
// they would be by a reader of their own.
const recvAway = 50 * time.Millisecond

// startReading begins the reading of w, served under ctx: at once by an
// application waiting in Recv, or else by a goroutine. Called with c.mu
// held.
func (w *wsAttachment) startReading(ctx context.Context) {
	c := w.c
	w.rctx = ctx
	w.rdState = readIdle
	c.reading = w
	if c.recvWaiting > 0 {
		c.changed.Wake() // Recv reads from now on
		return
	}
	w.keepReadingLocked()
}

// stopReading takes the reading of w away from Recv as the attachment
// ends, and reports whether somebody still reads (and will send its end
// to readEnd once the connection's close ends the read).
func (w *wsAttachment) stopReading() bool {
	c := w.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reading == w {
		c.reading = nil
	}
	switch w.rdState {
	case readIdle:
		w.rdState = readOver
		return false
	case readOver:
		return false
	}
	return true
}

// keepReadingLocked makes sure somebody reads w: if nobody does, a
// goroutine does. Called with c.mu held.
func (w *wsAttachment) keepReadingLocked() {
	if w.rdState != readIdle {
		return
	}
	w.rdState = readBackground
	go w.readOn()
}

// endReadingLocked records that reading w has ended with err. Called with
// c.mu held.
func (w *wsAttachment) endReadingLocked(err error) {
	w.rdState = readOver
	if w.c.reading == w {
		w.c.reading = nil
	}
	w.readEnd <- err // the one end: never full
}

// readOn reads w from a goroutine of its own, until reading ends, or
// hands it back to Recv when an application that may read waits there
// (which interrupts its wait).
func (w *wsAttachment) readOn() {
	c := w.c
	for {
		if err := c.waitUntil(w.rctx, c.roomLocked); err != nil {
			c.mu.Lock()
			w.endReadingLocked(err)
			c.mu.Unlock()
			return
		}
		if w.wait.Wait() {
			if err := w.readOne(); err != nil {
				c.mu.Lock()
				w.endReadingLocked(err)
				c.mu.Unlock()
				return
			}
		}
		c.mu.Lock()
		if w.rdState == readBackground && c.recvWaiting > 0 && c.reading == w && c.closeErr == nil {
			w.rdState = readIdle
			c.changed.Wake() // Recv reads from now on
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
}

// readInline reads w from Recv's goroutine, until something has been
// read, or ctx ends, or the wait is interrupted. Called with c.mu held and
// w's reading idle; it lets go of c.mu while it reads.
func (c *Conn) readInline(ctx context.Context, w *wsAttachment) {
	w.rdState = readInline
	if done := ctx.Done(); done != nil && done != c.recvDone {
		c.watchRecvLocked(ctx)
	}
	c.mu.Unlock()
	var err error
	if w.wait.Wait() {
		err = w.readOne()
	}
	c.mu.Lock()
	switch {
	case err != nil:
		w.endReadingLocked(err)
	case w.rdState == readInline:
		w.rdState = readIdle
		if c.reading != w || c.closeErr != nil {
			w.keepReadingLocked() // Recv will not read it again
		}
	}
}

// watchRecvLocked makes the end of ctx, Recv's, interrupt a Recv that
// reads. The watch stays for the next Recv with a ctx that ends with
// this one (the application's loop passes the same ctx each time), so
// that a Recv costs no registration; a Recv with another ctx replaces
// it, and the end of the Conn removes it. Once the Recv that set it has
// returned, its firing can only interrupt a Recv that must return too,
// or none. Called with c.mu held.
func (c *Conn) watchRecvLocked(ctx context.Context) {
	if c.recvUnwatch != nil {
		c.recvUnwatch()
	}
	c.recvDone = ctx.Done()
	c.recvUnwatch = context.AfterFunc(ctx, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.recvCalledAwayLocked()
	})
}

// recvLeavingLocked is called as Recv returns: if nobody reads the
// WebSocket now, a goroutine does unless the application comes back to
// Recv within recvAway (awaySweep checks). Called with c.mu held.
func (c *Conn) recvLeavingLocked() {
	w := c.reading
	if w == nil || w.rdState != readIdle {
		return
	}
	if c.closeErr != nil {
		w.keepReadingLocked()
		return
	}
	awaySweep.Wait(&c.away, c)
}

// awaySweep checks the Conns whose application left Recv with nobody
// reading their WebSocket, every recvAway, for all the Conns of the
// process: a timer of each Conn's own would be set, and fire, once per
// message.
var awaySweep = sweep.New(recvAway, (*Conn).awayCheck)

// awayCheck is awaySweep's check at epoch: once the application has been
// away from Recv for recvAway, a goroutine reads. It reports whether c
// stays listed: its application left, and not long enough ago.
func (c *Conn) awayCheck(epoch uint64) (keep bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.reading
	switch {
	case w == nil || w.rdState != readIdle:
	case !c.away.Over(epoch):
		return true
	default:
		w.keepReadingLocked()
	}
	c.away.Unlist()
	return false
}

// keepReadingLocked makes sure somebody reads the WebSocket, for a change
// the application may wait for away from Recv (room in the window).
// Called with c.mu held.
func (c *Conn) keepReadingLocked() {
	if w := c.reading; w != nil {
		w.keepReadingLocked()
	}
}

// recvCalledAwayLocked interrupts a Recv reading the WebSocket, so that
// it returns what it now must (the session's close). Called with c.mu
// held.
func (c *Conn) recvCalledAwayLocked() {
	if w := c.reading; w != nil && w.rdState == readInline {
		w.wait.Interrupt()
	}
}

// frameConn is a WebSocket's connection as gorilla/websocket reads it,
// through a buffer of the client's own (br) that a Waiter can fill and
// look into. Each read hands gorilla at most the rest of one header
// block (the handshake's answers) or of one WebSocket frame, so that
// gorilla's own buffer holds nothing once it has returned a whole
// message: whatever has arrived and not been read is in br.
type frameConn struct {
	net.Conn
	br     *bufio.Reader
	frames bool  // the handshake is over: reads are bounded by frames
	left   int64 // bytes of the current frame not yet handed out
	// The scan for a header block's end: at a line's start, and after a
	// carriage return there.
	lineStart, cr bool
}

// frameBuffer is the size of a frameConn's buffer.
const frameBuffer = 4 << 10

func newFrameConn(c net.Conn) *frameConn {
	return &frameConn{Conn: c, br: bufio.NewReaderSize(c, frameBuffer)}
}

// handshook is called once the WebSocket handshake is over: the frames
// begin.
func (f *frameConn) handshook() { f.frames = true }

var errFrameTooLarge = errors.New("comet: WebSocket frame length out of range")

func (f *frameConn) Read(p []byte) (int, error) {
	if !f.frames {
		return f.readHeaders(p)
	}
	if f.left == 0 {
		n, err := f.frameLen()
		if err != nil {
			return 0, err
		}
		f.left = n
	}
	if int64(len(p)) > f.left {
		p = p[:f.left]
	}
	n, err := f.br.Read(p)
	f.left -= int64(n)
	return n, err
}

// readHeaders hands out what has arrived, up to the end of a header
// block (an empty line, "\r\n" or "\n").
func (f *frameConn) readHeaders(p []byte) (int, error) {
	if _, err := f.br.Peek(1); err != nil {
		return 0, err
	}
	b, _ := f.br.Peek(min(f.br.Buffered(), len(p)))
	n := len(b)
	for i, ch := range b {
		end := false
		switch {
		case ch == '\n':
			end = f.lineStart
			f.lineStart, f.cr = true, false
		case ch == '\r' && f.lineStart && !f.cr:
			f.cr = true
		default:
			f.lineStart, f.cr = false, false
		}
		if end {
			n = i + 1
			f.lineStart = false
			break
		}
	}
	return f.br.Read(p[:n])
}

// frameLen returns the length of the frame that begins in br, header
// included, once its header has arrived.
func (f *frameConn) frameLen() (int64, error) {
	h, err := f.br.Peek(2)
	if err != nil {
		return 0, err
	}
	size := 2
	if h[1]&0x80 != 0 {
		size += 4 // a mask key
	}
	switch h[1] & 0x7f {
	case 126:
		size += 2
	case 127:
		size += 8
	}
	if h, err = f.br.Peek(size); err != nil {
		return 0, err
	}
	var payload uint64
	switch n := h[1] & 0x7f; n {
	case 126:
		payload = uint64(binary.BigEndian.Uint16(h[2:]))
	case 127:
		payload = binary.BigEndian.Uint64(h[2:])
	default:
		payload = uint64(n)
	}
	if payload > math.MaxInt64-uint64(size) {
		return 0, errFrameTooLarge
	}
	return int64(size) + int64(payload), nil
}

// framed wraps dial's connections in a frameConn, for a plain WebSocket
// (ws:): over TLS, gorilla reads the records of a tls.Conn.
func framed(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return newFrameConn(c), nil
	}
}
