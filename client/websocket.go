package client

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet/internal/clock"
	"github.com/seed-544bbf9f/comet/internal/readwait"
	"github.com/seed-544bbf9f/comet/internal/trywrite"
	"github.com/seed-544bbf9f/comet/internal/wsread"
	"github.com/seed-544bbf9f/comet/internal/wswrite"
	"github.com/seed-544bbf9f/comet/transport"
)

// goodbyeTimeout bounds the WebSocket close frame written when a session
// ends gracefully.
const goodbyeTimeout = time.Second

// wsAttachment is a WebSocket carrying the session. It has one reader and
// one writer, which drains everything due into one batch per WebSocket
// message (PROTOCOL.md section 4).
type wsAttachment struct {
	c          *Conn
	ws         *websocket.Conn
	interval   time.Duration     // the heartbeat interval of the open frame
	sent       uint64            // the highest upstream sequence number written here; the writer's
	superseded bool              // the open frame came with ["s"]
	attempt    uint64            // the attach's attempt id
	deflate    bool              // permessage-deflate was agreed at the handshake
	prompt     bool              // writes never wait on the server (trywrite): Send may write itself
	busy       bool              // a goroutine builds or writes a batch here; guarded by c.mu
	nowBatch   transport.Batch   // writeNow's, kept between calls; its while busy
	lastWrite  time.Time         // when the last batch began to be written; guarded by c.mu
	claimed    time.Time         // when Send claimed the writing (claimLocked); guarded by c.mu
	frames     []transport.Frame // the reader's, for each batch it decodes
	until      time.Time         // the read deadline; the reader's
	br         *bufio.Reader     // the frameConn's buffer, if framed: whole messages are read from it (wsread.Buffered)

	// Reading from Recv (reading.go), when the socket can be waited on.
	wait    *readwait.Waiter
	rctx    context.Context // the serving's: a goroutine's reading ends with it
	rdState readState       // who reads; guarded by c.mu
	readEnd chan error      // why reading ended, once
}

// attachWebSocket opens a WebSocket to the session and waits, within
// timeout, for its open frame. A refused upgrade or dial fails with
// ws_refused, a handshake not answered in time with ws_hung, and an
// upgrade without an open frame in time with ws_silent.
func (c *Conn) attachWebSocket(why string, timeout time.Duration) (attachment, error) {
	tctx, cancel := context.WithTimeout(c.ctx, timeout)
	ticket, err := c.ticket(tctx)
	cancel()
	if err != nil {
		if c.ctx.Err() != nil {
			return nil, c.ctx.Err()
		}
		return nil, &attachError{transport: transport.WebSocket, err: err}
	}
	c.mu.Lock()
	c.attempt++
	// An upgrade attaches as a probe, and delivers once committed
	// (PROTOCOL.md section 5).
	p := transport.AttachParams{Session: c.sid, Ticket: ticket, Attempt: c.attempt, Ack: c.in.n, Deliver: why != whyUpgraded,
		Heartbeat: c.lim.hb, Reason: why}
	c.mu.Unlock()

	deadline := time.Now().Add(timeout)
	ws, deflate, err := c.dialWebSocket(c.wsURL(p), deadline)
	if err != nil {
		return nil, err
	}
	return c.adoptWebSocket(ws, deflate, p, deadline)
}

// adoptWebSocket reads the open frame of ws, upgraded with the attach
// parameters p, by deadline, and returns the attachment it begins.
// deflate says whether the upgrade agreed to permessage-deflate.
func (c *Conn) adoptWebSocket(ws *websocket.Conn, deflate bool, p transport.AttachParams, deadline time.Time) (attachment, error) {
	f, framed := ws.NetConn().(*frameConn)
	if framed {
		f.handshook() // before the open frame: frames from here on
	}
	wswrite.Setup(ws, c.opts.Compression.DeflateLevel())
	ws.SetReadLimit(c.wsReadLimit())
	stop := context.AfterFunc(c.ctx, func() { ws.Close() })
	ws.SetReadDeadline(deadline)
	typ, frames, err := c.readWSBatch(ws)
	stop()
	switch {
	case err != nil:
	case typ != websocket.TextMessage || len(frames) == 0 || frames[0].Type != transport.TypeOpen:
		err = errNoOpen
	case frames[0].Attempt != p.Attempt:
		err = errStale
	}
	if err != nil {
		ws.Close()
		if c.ctx.Err() != nil {
			return nil, c.ctx.Err()
		}
		return nil, &attachError{transport: transport.WebSocket, why: "ws_silent", err: err}
	}
	open := &frames[0]
	c.opened(open, p.Ack)
	nc := ws.NetConn()
	if framed {
		nc = f.Conn
	}
	tw, prompt := nc.(*trywrite.Conn)
	w := &wsAttachment{c: c, ws: ws, interval: millis(int(open.Interval), c.lim.heartbeat), sent: open.Ack, attempt: p.Attempt,
		deflate: deflate, prompt: prompt}
	if prompt {
		// Only a write that waits can time out: the socket bounds it,
		// and writeBatch reads no clock.
		tw.SetWriteTimeout(w.writeTimeout())
	}
	if framed {
		w.wait = readwait.New(f.Conn, f.br)
		w.br = f.br
	}
	w.superseded = c.receive(frames[1:])
	return w, nil
}

// wsReadLimit bounds each downstream WebSocket message, on the wire and,
// with permessage-deflate, once inflated: a batch, plus slack for padding
// lines.
func (c *Conn) wsReadLimit() int64 { return int64(c.lim.maxBatch) + 1024 }

// readWSBatch reads one WebSocket message, within wsReadLimit, and
// decodes it as a batch if it is a text message; the caller refuses any
// other.
func (c *Conn) readWSBatch(ws *websocket.Conn) (int, []transport.Frame, error) {
	typ, b, err := wsread.Next(ws, c.wsReadLimit())
	if err != nil {
		return typ, nil, err
	}
	defer wsread.Put(b)
	if typ != websocket.TextMessage {
		return typ, nil, nil
	}
	frames, err := transport.DecodeBatch(b.Bytes())
	return typ, frames, err
}

// wsURL returns the WebSocket URL of an attach with p.
func (c *Conn) wsURL(p transport.AttachParams) string {
	q := url.Values{}
	p.Encode(q)
	q.Set("z", cacheBuster())
	u, _ := url.Parse(c.endpoint("/websocket", q)) // endpoint's output always parses
	u.Scheme = "ws"
	if c.base.Scheme == "https" {
		u.Scheme = "wss"
	}
	return u.String()
}

// dialWebSocket runs the WebSocket handshake, bounded by deadline, and
// classifies its failure. deflate reports whether permessage-deflate was
// agreed.
func (c *Conn) dialWebSocket(u string, deadline time.Time) (ws *websocket.Conn, deflate bool, err error) {
	ctx, cancel := context.WithDeadline(c.ctx, deadline)
	defer cancel()
	// gorilla/websocket bounds the handshake by ctx's deadline but does not
	// watch its cancellation, so the dialer keeps the connection for the
	// end of the session to cut.
	d := c.wsDialer
	if strings.HasPrefix(u, "ws:") {
		d.NetDialContext = framed(d.NetDialContext)
	}
	var mu sync.Mutex
	var nc net.Conn
	dial := d.NetDialContext
	d.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		mu.Lock()
		nc = conn
		mu.Unlock()
		return conn, err
	}
	stop := context.AfterFunc(c.ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if nc != nil {
			nc.Close()
		}
	})
	ws, resp, err := d.DialContext(ctx, u, c.opts.Header)
	stop()
	if err == nil {
		return ws, c.opts.agreedDeflate(resp.Header), nil
	}
	fail := func(why string, err error) error {
		return &attachError{transport: transport.WebSocket, why: why, err: err}
	}
	switch {
	case c.ctx.Err() != nil:
		return nil, false, c.ctx.Err()
	case resp != nil:
		data, _ := readBody(resp)
		return nil, false, fail("ws_refused", httpError(resp, data))
	case ctx.Err() != nil || isTimeout(err):
		return nil, false, fail("ws_hung", err)
	}
	return nil, false, fail("ws_refused", err)
}

// serve runs the reader and the writer until either fails or ctx ends.
func (w *wsAttachment) serve(ctx context.Context) error {
	if w.superseded {
		w.ws.Close()
		return errSuperseded
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w.readEnd = make(chan error, 1)
	if w.wait != nil {
		c := w.c
		c.mu.Lock()
		w.startReading(ctx)
		c.mu.Unlock()
	} else {
		go func() { w.readEnd <- w.read(ctx) }()
	}
	wrote := make(chan error, 1)
	go func() { wrote <- w.write(ctx) }()
	if w.prompt {
		c := w.c
		c.mu.Lock()
		c.promptWS = w
		c.mu.Unlock()
		defer func() {
			c.mu.Lock()
			if c.promptWS == w {
				c.promptWS = nil
			}
			c.mu.Unlock()
		}()
	}
	var first error
	readDone, writeDone := false, false
	select {
	case first = <-w.readEnd:
		readDone = true
	case first = <-wrote:
		writeDone = true
	}
	cancel()
	w.goodbye()
	// The close ends the read in progress, if any.
	if !readDone && (w.wait == nil || w.stopReading()) {
		<-w.readEnd
	}
	if !writeDone {
		<-wrote
	}
	return first
}

// promptGap is how long after a write began Send may write the next
// itself (see claimLocked): closer messages come from a sender in a loop,
// and go to the writer goroutine, which batches what piles up while it
// writes.
const promptGap = 10 * time.Microsecond

// claimLocked makes the caller this attachment's writer, if no goroutine
// writes here now and the last write began promptGap ago or more, and
// reports whether it did; the caller then calls writeNow once it has let
// go of c.mu.
func (w *wsAttachment) claimLocked() bool {
	if w.busy {
		return false
	}
	now := clock.Now()
	if now.Sub(w.lastWrite) < promptGap {
		return false
	}
	w.busy = true
	w.claimed = now
	return true
}

// writeNow writes what is due from the calling goroutine, as the writer
// goroutine would, until nothing is: Send's message goes from Send,
// with no hand-off. A failed write closes the connection, which ends the
// reader and so the attachment, as a failed write of the writer's does.
//
// It reads no clock: its batches, written in the microseconds after the
// claim, go under the time claimLocked read, and an ack that falls due
// meanwhile waits for the ack alarm, as it would between two Sends.
func (w *wsAttachment) writeNow() {
	c := w.c
	b := &w.nowBatch
	b.Raw = c.binary
	c.mu.Lock()
	now := w.claimed
	for {
		last, ok := w.collectLocked(b, now, false)
		if !ok {
			w.busy = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		err := w.writeBatch(b, now)
		c.mu.Lock()
		if err != nil {
			w.busy = false
			c.mu.Unlock()
			w.ws.Close()
			return
		}
		w.sent = last
		c.wroteLocked(last)
	}
}

// collectLocked resets b to what is due: the messages not yet written
// here and an ack, if the cadence of PROTOCOL.md section 6 or beat asks
// for one or it can ride on the messages. It reports the last sequence
// number b carries, and whether b holds anything: if it does, its write
// begins now.
func (w *wsAttachment) collectLocked(b *transport.Batch, now time.Time, beat bool) (last uint64, ok bool) {
	c := w.c
	b.Reset()
	last = c.out.AppendTo(b, w.sent, c.lim.maxBatch)
	due, _ := c.in.ackDue(now, c.lim.ack)
	// An ack rides on what is written anyway (a lazy one from half its
	// thresholds: see rides), except on raw binary messages alone, where
	// it would be a text message of its own: it then waits for the
	// cadence's deadline, like an ack with nothing to ride on.
	if due || beat || b.Len() > 0 && c.in.n > c.in.acked && !b.RawOnly() && c.in.rides(now, c.lim.ack) {
		b.Append(&transport.Frame{Type: transport.TypeAck, Ack: c.in.n})
		c.in.ackSent(c.in.n)
	}
	if b.Len() == 0 {
		return last, false
	}
	w.lastWrite = now
	return last, true
}

// writeBatch writes b as WebSocket messages, bounded by the interval and
// the attach timeout.
func (w *wsAttachment) writeBatch(b *transport.Batch, now time.Time) error {
	switch {
	case !w.prompt:
		w.ws.SetWriteDeadline(now.Add(w.writeTimeout()))
	case !w.deflate:
		// The socket never waits and takes each write whole, beside
		// gorilla's control frames.
		return wswrite.Direct(w.ws, w.ws.NetConn(), b, true)
	}
	return wswrite.Batch(w.ws, b, w.deflate)
}

// writeTimeout bounds a write: the server hears from us within an
// interval, or gives up on the attachment an attach timeout later.
func (w *wsAttachment) writeTimeout() time.Duration {
	return w.interval + w.c.lim.attachTimeout
}

// goodbye closes the connection, which unblocks the reader and the
// writer, saying so with a close frame if the session ended gracefully.
func (w *wsAttachment) goodbye() {
	c := w.c
	c.mu.Lock()
	graceful := c.ctx.Err() != nil && !c.abrupt
	c.mu.Unlock()
	if graceful {
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		w.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(goodbyeTimeout))
	}
	w.ws.Close()
}

// read applies downstream batches until the connection fails, goes silent
// for its interval plus the attach timeout (PROTOCOL.md section 7), or is
// superseded. While Recv's buffer is full it stops reading, and TCP
// pushes back on the server. It is the reader goroutine of a WebSocket
// that cannot be read from Recv (reading.go).
func (w *wsAttachment) read(ctx context.Context) error {
	c := w.c
	for {
		if err := c.waitUntil(ctx, c.roomLocked); err != nil {
			return err
		}
		if err := w.readOne(); err != nil {
			return err
		}
	}
}

// readOne reads and applies one downstream message. It returns why
// reading ends, or nil.
func (w *wsAttachment) readOne() error {
	c := w.c
	silence := w.interval + c.lim.attachTimeout
	// The deadline moves at most every eighth of the silence, not on
	// every message (a timer operation each): a silence is noticed
	// within an eighth of it late.
	if now := clock.Now(); w.until.Sub(now) < silence {
		w.until = now.Add(silence + silence/8)
		if w.wait != nil {
			w.wait.SetReadDeadline(w.until)
		} else {
			w.ws.SetReadDeadline(w.until)
		}
	}
	if w.br != nil {
		if typ, p, n, ok := wsread.Buffered(w.br, false, c.wsReadLimit()); ok {
			err := w.apply(typ, p)
			w.br.Discard(n)
			return err
		}
	}
	typ, b, err := wsread.Next(w.ws, c.wsReadLimit())
	switch {
	case err != nil && isTimeout(err):
		return fmt.Errorf("%w for %v", errSilent, silence)
	case err != nil:
		return err
	}
	err = w.apply(typ, b.Bytes())
	wsread.Put(b)
	return err
}

// apply applies a downstream message read, keeping nothing of msg, and
// returns why reading ends, or nil.
func (w *wsAttachment) apply(typ int, msg []byte) error {
	c := w.c
	if typ != websocket.TextMessage && !c.binary {
		c.fail(transport.CloseProtocolError, "binary WebSocket message")
		return nil
	}
	frames, err := decodeWS(w.frames[:0], typ, msg)
	if err != nil {
		c.failDecode(err)
		return nil
	}
	superseded := c.receive(frames)
	// The frames' payloads are their own: the slice serves the next
	// batch.
	clear(frames)
	w.frames = frames[:0]
	if superseded {
		return errSuperseded
	}
	return nil
}

// decodeWS decodes a downstream WebSocket message: a text message is a
// batch, a binary one a raw binary message, whose payload is copied out
// of msg (the reader reuses it).
func decodeWS(dst []transport.Frame, typ int, msg []byte) ([]transport.Frame, error) {
	if typ == websocket.TextMessage {
		return transport.AppendBatch(dst, msg)
	}
	f := append(dst, transport.Frame{})
	if err := transport.DecodeRaw(msg, &f[0]); err != nil {
		return nil, err
	}
	f[0].Payload = append([]byte{}, f[0].Payload...)
	return f, nil
}

// write sends what is due — messages not yet written here, and acks by
// the cadence of PROTOCOL.md section 6 — one batch per WebSocket message.
// After an interval with nothing to write it sends an ack anyway, so that
// the server hears from the client even while the reader is held back by
// a full Recv buffer.
func (w *wsAttachment) write(ctx context.Context) error {
	c := w.c
	b := transport.Batch{Raw: c.binary}
	ackTimer := time.NewTimer(time.Hour)
	ackTimer.Stop()
	defer ackTimer.Stop()
	idle := time.NewTimer(w.interval)
	defer idle.Stop()
	beat := false
	for {
		c.mu.Lock()
		now := time.Now()
		var last uint64
		ok := false
		if !w.busy {
			// Otherwise Send writes, and writes all that is due before
			// it lets go; what falls due after wakes this goroutine.
			last, ok = w.collectLocked(&b, now, beat)
		}
		if !ok {
			_, wait := c.in.ackDue(now, c.lim.ack)
			ch := c.control.Wait()
			c.mu.Unlock()
			if wait > 0 {
				ackTimer.Reset(wait)
			}
			select {
			case <-ch:
			case <-ackTimer.C:
			case <-idle.C:
				beat = true
			case <-ctx.Done():
				return ctx.Err()
			}
			ackTimer.Stop()
			continue
		}
		w.busy = true
		c.mu.Unlock()

		err := w.writeBatch(&b, now)
		c.mu.Lock()
		w.busy = false
		if err != nil {
			c.mu.Unlock()
			return err
		}
		w.sent = last
		c.wroteLocked(last)
		c.mu.Unlock()
		beat = false
		idle.Reset(w.interval)
	}
}
