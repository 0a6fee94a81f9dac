// Package readwait waits until a connection has something to read, in a
// wait another goroutine can cut short. A goroutine that must also answer
// to something else (an application's, waiting in Recv for a message or
// for its session to close) can then wait on the connection itself, with
// no goroutine parked in a read on its behalf and no hand-off when a
// message comes.
//
// The wait fills the buffered reader the connection's reads go through,
// so that it costs no system call a read would not make anyway, and is
// cut short by moving the connection's read deadline into the past. A
// read that times out leaves a TCP or Unix connection as it was, and
// bufio.Reader returns the error once and forgets it; the deadline is put
// back before Wait returns. A reader of frames (gorilla/websocket) never
// sees the timeout, which it would take as the connection's failure.
package readwait

import (
	"bufio"
	"net"
	"sync"
	"time"
)

// aLongTimeAgo is a read deadline that has passed.
var aLongTimeAgo = time.Unix(1, 0)

// Waiter waits for one connection to have something to read. Wait is for
// one goroutine at a time, and only while nothing else reads; Interrupt
// and SetReadDeadline may be called from any goroutine.
type Waiter struct {
	conn net.Conn
	br   *bufio.Reader // reads conn; the frames' reader reads it

	mu          sync.Mutex
	deadline    time.Time // the read deadline the connection's owner set
	waiting     bool      // a Wait fills br
	interrupted bool      // the Wait in progress, or the next, returns false
}

// New returns a Waiter for conn, whose reads all go through br, or nil
// when conn's reads would not survive a timeout unharmed (only TCP and
// Unix connections are known to, and wrappers that say they read one
// unchanged).
func New(conn net.Conn, br *bufio.Reader) *Waiter {
	switch conn.(type) {
	case *net.TCPConn, *net.UnixConn, Wrapper:
	default:
		return nil
	}
	return &Waiter{conn: conn, br: br}
}

// Wrapper is a connection whose reads are those of the TCP or Unix
// connection it wraps, deadlines included (internal/trywrite's Conn).
type Wrapper interface {
	net.Conn
	ReadsSocket()
}

// SetReadDeadline sets the connection's read deadline, which an
// interrupted Wait puts back.
func (w *Waiter) SetReadDeadline(t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.deadline = t
	if w.interrupted && w.waiting {
		return nil // put back as the Wait ends
	}
	return w.conn.SetReadDeadline(t)
}

// Wait blocks until the reader has bytes to read, the connection has
// reached its end or failed, or its read deadline has passed, and
// reports true: the next read finds what ended the wait. Or it blocks
// until Interrupt, and reports false.
func (w *Waiter) Wait() bool {
	w.mu.Lock()
	if w.interrupted {
		w.interrupted = false
		w.mu.Unlock()
		return false
	}
	if w.br.Buffered() > 0 {
		w.mu.Unlock()
		return true
	}
	w.waiting = true
	w.mu.Unlock()

	// An error is forgotten by br once returned; the next read meets it
	// again, from the connection.
	w.br.Peek(1)

	w.mu.Lock()
	defer w.mu.Unlock()
	w.waiting = false
	if !w.interrupted {
		return true
	}
	w.interrupted = false
	w.conn.SetReadDeadline(w.deadline)
	return false
}

// Interrupt makes the Wait in progress return false, or else the next
// one.
func (w *Waiter) Interrupt() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.interrupted {
		return
	}
	w.interrupted = true
	if w.waiting {
		w.conn.SetReadDeadline(aLongTimeAgo)
	}
}
