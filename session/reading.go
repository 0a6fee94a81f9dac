package session

import (
	"context"
	"time"

	"github.com/seed-544bbf9f/comet/internal/sweep"
	"github.com/seed-544bbf9f/comet/transport"
)

// readState says who reads an attachment's connection, for an adapter
// that hands its reading to the session (transport.ReadingAttachment).
type readState uint8

const (
	readNone       readState = iota // the adapter reads, or nothing does
	readIdle                        // nobody: the application is expected back in Recv
	readInline                      // the application's goroutine, in Recv
	readBackground                  // a goroutine of the session's (readOn)
	readOver                        // the connection has failed or the attachment ended
)

// recvAway is how long an application may stay away from Recv, while no
// goroutine reads its connection, before one does: its client's close,
// acks and heartbeats are seen at most this much later than they would
// be with a reader of their own.
const recvAway = 50 * time.Millisecond

// Read implements transport.ReadingAttachment. An application already
// waiting in Recv reads at once; otherwise a goroutine does, until one
// comes.
func (a *attachment) Read(r transport.Reader) {
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	a.rd = r
	a.rdState = readIdle
	if a.ended {
		a.rdState = readOver // its connection is closed
		return
	}
	if a == s.deliverer && s.recvWaiting && s.closeErr == nil {
		s.inReady.Wake() // Recv reads from now on
		return
	}
	a.keepReadingLocked()
}

// readInline reads a's connection from Recv's goroutine, until a message
// or anything else has been read, or ctx ends, or the wait is
// interrupted. Called with s.mu held, a's reading idle; it lets go of
// s.mu while it reads. The session's close interrupts the wait itself,
// so a ctx that ends only with the session needs no watch.
func (s *Session) readInline(ctx context.Context, a *attachment) {
	a.rdState = readInline
	s.mu.Unlock()
	var stop func() bool
	if done := ctx.Done(); done != nil && done != s.ctx.Done() {
		stop = context.AfterFunc(ctx, a.rd.Interrupt)
	}
	more := true
	if a.rd.Wait() {
		more = a.rd.ReadOne()
	}
	if stop != nil {
		stop()
	}
	s.mu.Lock()
	switch {
	case !more:
		a.rdState = readOver
	case a.rdState == readInline:
		a.rdState = readIdle
		if a != s.deliverer || s.closeErr != nil {
			// Superseded, or the session closing: Recv will not read it
			// again, and its close or the client's ack must be seen.
			a.keepReadingLocked()
		}
	}
}

// recvLeavingLocked is called as Recv returns. If nobody reads the
// delivering connection now, a goroutine reads it unless the application
// comes back to Recv within recvAway (awaySweep checks). Called with s.mu
// held.
func (s *Session) recvLeavingLocked() {
	a := s.deliverer
	if a == nil || a.rdState != readIdle {
		return
	}
	if s.closeErr != nil {
		a.keepReadingLocked()
		return
	}
	awaySweep.Wait(&s.away, s)
}

// awaySweep checks the sessions whose application left Recv with nobody
// reading their connection, every recvAway, for all the sessions of the
// process: a timer of each session's own would be set, and fire, once
// per message.
var awaySweep = sweep.New(recvAway, (*Session).awayCheck)

// awayCheck is awaySweep's check at epoch: once the application has been
// away from Recv for recvAway, a goroutine reads its connection. It
// reports whether s stays listed: its application left, and not long
// enough ago.
func (s *Session) awayCheck(epoch uint64) (keep bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.deliverer
	switch {
	case a == nil || a.rdState != readIdle:
	case !s.away.Over(epoch):
		return true
	default:
		a.keepReadingLocked()
	}
	s.away.Unlist()
	return false
}

// keepReadingLocked makes sure somebody reads a's connection: if nobody
// does, a goroutine of the session's reads it. Called with s.mu held.
func (a *attachment) keepReadingLocked() {
	if a.rdState != readIdle {
		return
	}
	a.rdState = readBackground
	go a.readOn(nil)
}

// readOn reads a's connection from a goroutine of the session's: first
// it applies rest, what an inline read left over when the inbound buffer
// filled, waiting for room as a reader does. It hands reading back to
// Recv when an application that may read waits there (which interrupts
// its wait), and goes.
func (a *attachment) readOn(rest []transport.Frame) {
	s := a.s
	if rest != nil && a.receiveFrames(rest) == errFinished {
		s.mu.Lock()
		a.rdState = readOver
		s.mu.Unlock()
		return
	}
	for {
		if a.rd.Wait() {
			if !a.rd.ReadOne() {
				s.mu.Lock()
				a.rdState = readOver
				s.mu.Unlock()
				return
			}
		}
		s.mu.Lock()
		if a.rdState == readBackground && s.recvWaiting && a == s.deliverer && s.closeErr == nil {
			a.rdState = readIdle
			s.inReady.Wake() // Recv reads from now on
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
	}
}
