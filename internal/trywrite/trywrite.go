// Package trywrite wraps a TCP connection so that Write never waits on
// the peer: what the kernel takes at once is sent, the rest is kept, in
// order, and sent by a goroutine that exists only until it is. A writer
// can then write from whatever goroutine has something to say (the one
// that called Send, the one broadcasting to ten thousand sessions)
// without a slow reader holding it up, and without a goroutine per
// connection waiting for something to write.
//
// Write may be called from several goroutines, as net.Conn's may: each
// call's bytes go out whole, in the order the calls came, so that frames
// written by different goroutines (a session's batches, gorilla's pongs
// and closes) never interleave. No lock is held across the write to the
// socket: a Write that comes while another tries the socket keeps its
// bytes, and the flusher sends them after the other's. Close may be
// called concurrently with Write. An error of a write
// kept for later is returned by the next Write, or by Close. What is kept
// is bounded by what the writer writes: a session bounds it by its
// window.
package trywrite

import (
	"cmp"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"
)

// closeLinger bounds how long Close waits for kept bytes to go.
const closeLinger = time.Second

// Conn is a net.Conn whose Write does not wait on the peer; see the
// package doc. Reads, deadlines and addresses are the wrapped
// connection's.
type Conn struct {
	net.Conn
	rc      syscall.RawConn
	writeFn func(fd uintptr) bool // c.writeFD, bound once: passing it allocates nothing

	// The one try in progress's (see trying), for writeFD.
	p    []byte
	n    int
	perr error

	mu       sync.Mutex
	deadline time.Time     // the write deadline, applied to the socket only while the flusher writes
	timeout  time.Duration // bounds a write that waits when no deadline is set (SetWriteTimeout)
	kept     []byte        // accepted, not yet taken by the kernel, in order
	spare    []byte        // the flusher's previous buffer, reused once
	flushing bool          // a goroutine sends kept; Write only appends
	trying   bool          // a Write is trying the socket: another one appends to kept, which goes after it
	flushed  chan struct{} // closed when the flusher goes; nil if none runs
	err      error         // the first write error: every later Write returns it
}

// Wrap returns c wrapped, and true, when c is a connection whose socket
// can be written without waiting (a TCP or Unix connection); otherwise
// c itself, and false.
func Wrap(c net.Conn) (net.Conn, bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c, false
	}
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		return c, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c, false
	}
	w := &Conn{Conn: c, rc: rc}
	w.writeFn = w.writeFD
	return w, true
}

// Write sends what the kernel takes of p at once and keeps the rest for
// the flusher; it returns len(p) unless an earlier write failed, or this
// one did at once.
func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return 0, err
	}
	if c.flushing || c.trying {
		// After what is kept, or after the write in progress, which
		// sends what it finds kept once it is done.
		c.kept = append(c.kept, p...)
		if c.flushing && c.deadline.IsZero() && c.timeout > 0 {
			// The timeout counts from the last write that had to wait.
			c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
		}
		c.mu.Unlock()
		return len(p), nil
	}
	c.trying = true
	c.mu.Unlock()

	n, err := c.try(p)

	c.mu.Lock()
	defer c.mu.Unlock()
	c.trying = false
	if err != nil {
		c.err = cmp.Or(c.err, err)
		c.kept = nil
		return n, err
	}
	if n < len(p) {
		// The rest of p goes before what other Writes kept meanwhile.
		c.kept = slices.Concat(p[n:], c.kept)
	}
	if len(c.kept) > 0 {
		c.flushing = true
		c.flushed = make(chan struct{})
		c.Conn.SetWriteDeadline(c.waitDeadlineLocked())
		go c.flush()
	}
	return len(p), nil
}

// try writes what the socket takes of p without waiting, whatever the
// write deadline: it is for the writes that wait.
func (c *Conn) try(p []byte) (int, error) {
	c.p, c.n, c.perr = p, 0, nil
	err := c.rc.Write(c.writeFn)
	n, werr := c.n, c.perr
	c.p, c.perr = nil, nil
	return n, cmp.Or(werr, err)
}

// writeFD writes c.p from c.n on until the socket takes no more; it is
// called by the poller with the socket's descriptor.
func (c *Conn) writeFD(fd uintptr) bool {
	for c.n < len(c.p) {
		m, err := syscall.Write(int(fd), c.p[c.n:])
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return true // full: the rest waits for the flusher
		case err != nil:
			c.perr = &net.OpError{Op: "write", Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
			return true
		case m == 0:
			return true
		}
		c.n += m
	}
	return true
}

// flush sends what is kept, with the wrapped connection's blocking Write
// (its write deadline applies), until nothing is, then goes and lets the
// buffers go with it: an idle connection keeps none.
func (c *Conn) flush() {
	for {
		c.mu.Lock()
		p := c.kept
		if len(p) == 0 || c.err != nil {
			c.kept, c.spare = nil, nil
			c.flushing = false
			// The socket's deadline was the flush's: a write that waits
			// for nothing must not fail on it once it has passed.
			c.Conn.SetWriteDeadline(time.Time{})
			close(c.flushed)
			c.flushed = nil
			c.mu.Unlock()
			return
		}
		c.kept = c.spare[:0]
		c.mu.Unlock()

		_, err := c.Conn.Write(p)

		c.mu.Lock()
		c.spare = p[:0]
		if err != nil {
			c.err = cmp.Or(c.err, err)
		}
		c.mu.Unlock()
	}
}

// waitDeadlineLocked is the deadline of a write that must wait now: the
// one set, or else the timeout's from now, if there is one.
func (c *Conn) waitDeadlineLocked() time.Time {
	if c.deadline.IsZero() && c.timeout > 0 {
		return time.Now().Add(c.timeout)
	}
	return c.deadline
}

// SetWriteDeadline sets the deadline of the writes kept for later: only
// they wait, so it reaches the socket only while the flusher sends them,
// and a write that waits for nothing costs no timer (gorilla/websocket
// sets the deadline before every frame it writes).
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	if c.flushing && (!t.IsZero() || c.timeout == 0) {
		// A zero deadline under a timeout leaves the flush the
		// timeout's deadline, which each write kept moves on.
		return c.Conn.SetWriteDeadline(t)
	}
	return nil
}

// SetWriteTimeout bounds every write that waits while no write deadline
// is set: the flusher's writes fail once d has passed since the last
// Write that had to keep bytes. A writer that would set a deadline of
// now plus d before each write gets the same bound without reading the
// clock when nothing waits. Zero, the default, means no bound.
func (c *Conn) SetWriteTimeout(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timeout = d
}

// SetDeadline sets the read deadline, and the write deadline as
// SetWriteDeadline does.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// Close waits, at most closeLinger, for kept bytes to go (a close frame
// among them), then closes the connection.
func (c *Conn) Close() error {
	c.mu.Lock()
	flushed := c.flushed
	c.mu.Unlock()
	if flushed != nil {
		c.SetWriteDeadline(time.Now().Add(closeLinger))
		<-flushed
	}
	return c.Conn.Close()
}

// Pending reports how many bytes are kept, waiting for the peer.
func (c *Conn) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.kept)
}

// ReadsSocket marks c as a connection whose reads and read deadline are
// its socket's, unchanged (internal/readwait).
func (*Conn) ReadsSocket() {}
