package session

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/seed-544bbf9f/comet/internal/logid"
	"github.com/seed-544bbf9f/comet/internal/signal"
	"github.com/seed-544bbf9f/comet/internal/window"
	"github.com/seed-544bbf9f/comet/transport"
)

// Failover (Options.Failover): a session outlives its node.
//
// The session lives on its owner as it always does (cluster.go): its
// windows, its attachments and its Serve are in the owner's memory, and
// every other node forwards its requests there. What the owner would lose
// with its process it also writes to a SessionStore, the session's log,
// before anyone may rely on it:
//
//   - a message the application sends is held back from the client until
//     the log keeps it, and Send returns only then;
//   - a message the client sends is acknowledged only once the log keeps
//     it;
//   - acks and commits trim the log, written along with the next entries.
//
// The log is written by one goroutine per session at a time, which takes
// whatever piled up while the previous write was in flight: a burst costs
// one store call, not one a message.
//
// When the owner is lost (its lease lapsed), the next node that serves a
// request of the session, or the sweep that follows the loss, claims it:
// the epoch goes up by one, the session is rebuilt from its log, and a new
// Serve starts, marked resumed. Its client, which lost a transport, resumes
// as after any cut: from its ack downstream, and by resending what was not
// acknowledged upstream. The old owner, if it was only paused, writes
// under its old epoch, which the store refuses: its copy of the session
// ends without a word to the client (fence).

// durable is a session's part in failover; nil for a session without it.
// Its fields are guarded by the session's mu, except store and epoch,
// which never change.
type durable struct {
	store   SessionStore
	epoch   uint64
	resumed bool

	flushing bool       // a flush goroutine runs
	up       []LogEntry // upstream entries accepted and not yet written
	upKept   uint64     // the newest upstream entry the log keeps
	downKept uint64     // the newest downstream entry the log keeps
	// commit is the newest upstream message the application committed;
	// wroteAcked and wroteCommit what the log was last told.
	commit, wroteAcked, wroteCommit uint64
	kept                            signal.Signal // woken when a write ends
	fenced                          bool          // another node owns the session now
	lost                            bool          // the store has no log of it
	unsaved                         bool          // its Auth could not be saved: it cannot be taken over
}

// errTakenOver is what a session fenced off by its new owner ends with on
// its old one; the client never sees it.
var errTakenOver = &transport.CloseError{Code: transport.CloseGoingAway, Reason: "session taken over by another node"}

// Resumed reports whether this Serve continues a session another node
// ran until it was lost (Options.Failover). The application's state of
// the earlier Serve is gone; the messages it had taken from Recv and not
// committed are received again (see Received).
func (s *Session) Resumed() bool { return s.dur != nil && s.dur.resumed }

// Received returns the sequence number of the message the last Recv
// returned, 0 before the first. The client numbers its messages from 1,
// and a session taken over delivers again, with their numbers, the
// messages after the last one committed: an application that keeps what
// it did with each message's number can skip one it has seen.
func (s *Session) Received() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastRecv
}

// Commit tells the session that the application is done with every
// message Recv has returned, and, with Options.Failover, waits until the
// log keeps that: a node that takes the session over delivers none of
// them again. Recv commits the messages before the one it returns by
// itself; Commit is for the last one. Without failover it does nothing.
func (s *Session) Commit(ctx context.Context) error {
	d := s.dur
	if d == nil {
		return nil
	}
	s.mu.Lock()
	d.commit = s.lastRecv
	s.kickLocked()
	for d.wroteCommit < d.commit && !d.fenced && !d.lost && !s.finished {
		ch := d.kept.Wait()
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		s.mu.Lock()
	}
	err := s.logErrLocked()
	s.mu.Unlock()
	return err
}

// logErrLocked returns why the log cannot be written, or nil.
func (s *Session) logErrLocked() error {
	d := s.dur
	switch {
	case d.fenced:
		return errTakenOver
	case d.lost && s.closeErr != nil:
		return s.closeErr
	case d.lost:
		return ErrSessionLost
	}
	return nil
}

// ackSeq returns the upstream ack the client may be given: the newest
// message accepted, or with failover the newest the log keeps.
func (s *Session) ackSeq() uint64 {
	if s.dur != nil && !s.dur.lost {
		return s.dur.upKept
	}
	return s.inSeq
}

// pushOut queues e in the outbound window and returns its number. With
// failover it is held back until the log keeps it. Called with s.mu held.
func (s *Session) pushOut(e window.Entry) uint64 {
	d := s.dur
	if d == nil || d.lost {
		return s.out.Push(e)
	}
	seq := s.out.PushHeld(e)
	s.kickLocked()
	return seq
}

// keepUp records upstream entry seq for the log. Called with s.mu held.
func (s *Session) keepUp(seq uint64, data []byte) {
	if d := s.dur; d != nil && !d.lost {
		d.up = append(d.up, LogEntry{Seq: seq, Data: data})
	}
}

// kickLocked starts a flush unless one runs. Called with s.mu held.
func (s *Session) kickLocked() {
	if d := s.dur; d != nil && !d.flushing && !d.fenced && !d.lost && !s.finished {
		d.flushing = true
		go s.flush()
	}
}

// awaitKept waits until the log keeps the outbound entry seq, or the
// session can no longer wait for it, or ctx ends. Only the log's word
// counts: a session that ends drops its window, entries held included.
func (s *Session) awaitKept(ctx context.Context, seq uint64) error {
	d := s.dur
	s.mu.Lock()
	for d.downKept < seq {
		if err := s.logErrLocked(); err != nil {
			s.mu.Unlock()
			return err
		}
		if s.finished {
			err := s.closeErr
			s.mu.Unlock()
			return err
		}
		ch := d.kept.Wait()
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		s.mu.Lock()
	}
	s.mu.Unlock()
	return nil
}

// awaitUpKept waits until the log keeps the upstream entries up to seq,
// or the session can no longer wait for them. A POST's answer waits so,
// for it holds the ack.
func (s *Session) awaitUpKeptLocked(seq uint64) {
	d := s.dur
	for d != nil && d.upKept < seq && !d.fenced && !d.lost && !s.finished {
		ch := d.kept.Wait()
		s.mu.Unlock()
		<-ch
		s.mu.Lock()
	}
}

// flushRetry is how long a flush waits before writing again after the
// store failed.
const flushRetry = 100 * time.Millisecond

// flush writes what the log lacks until nothing is left: the held
// outbound entries, the accepted upstream ones, the acks and commits. It
// runs on a goroutine of its own, one a session at a time.
func (s *Session) flush() {
	d := s.dur
	var gone *LogLostError
	for {
		s.mu.Lock()
		if s.finished || d.fenced || d.lost {
			d.flushing = false
			d.kept.Wake()
			s.mu.Unlock()
			return
		}
		w := LogWrite{Session: s.id, Epoch: d.epoch}
		to := s.out.Last()
		for seq := s.out.Ready() + 1; seq <= to; seq++ {
			w.Down = append(w.Down, LogEntry{Seq: seq, Data: encodeEntry(s.out.Entry(seq))})
		}
		w.Up = d.up
		d.up = nil
		if a := s.out.Acked(); a > d.wroteAcked {
			w.Acked = a
		}
		if d.commit > d.wroteCommit {
			w.Committed = d.commit
		}
		if len(w.Down) == 0 && len(w.Up) == 0 && w.Acked == 0 && w.Committed == 0 {
			d.flushing = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()

		ctx, cancel := context.WithTimeout(s.h.baseCtx, s.opts.BrokerTimeout)
		errs, err := d.store.WriteLog(ctx, []LogWrite{w})
		cancel()
		if err == nil && len(errs) != 1 {
			err = fmt.Errorf("comet: the store answered %d results for 1 write", len(errs))
		}
		if err == nil {
			err = errs[0]
		}

		s.mu.Lock()
		switch {
		case err == nil:
			s.out.Release(to)
			d.downKept = max(d.downKept, to)
			if n := len(w.Up); n > 0 {
				d.upKept = max(d.upKept, w.Up[n-1].Seq)
				if a := s.deliverer; a != nil {
					a.ackDue = true // the ack it may now give
				}
			}
			d.wroteAcked = max(d.wroteAcked, w.Acked)
			d.wroteCommit = max(d.wroteCommit, w.Committed)
			// The released messages go as a Send's do: to a POST that
			// waits for a reply, or else to the delivering attachment.
			s.replyReady.Wake()
			if a := s.deliverer; a != nil && s.replyWaiting == 0 {
				a.wake()
			}
			d.kept.Wake()
			s.mu.Unlock()
		case errors.Is(err, ErrFenced):
			s.mu.Unlock()
			s.fence()
		case errors.Is(err, ErrSessionLost):
			s.loseLocked("session state lost")
			s.mu.Unlock()
		case errors.As(err, &gone):
			s.loseLocked(lostRange(gone, d.downKept, d.upKept))
			s.mu.Unlock()
		default:
			// The store is away: write again, whatever piled up
			// meanwhile, until it returns or the broker's watch gives the
			// session up.
			d.up = append(w.Up, d.up...)
			if s.h.closing.Load() {
				// A node shutting down hands the session over with what
				// the log has; it does not wait for the store.
				d.flushing = false
				d.kept.Wake()
				s.mu.Unlock()
				return
			}
			s.mu.Unlock()
			s.h.logger.Debug("comet: session log not written", "session", logid.Short(s.id), "err", err)
			t := time.NewTimer(flushRetry)
			select {
			case <-t.C:
			case <-s.done:
				t.Stop()
			}
		}
	}
}

// lostRange is the close reason of a session whose log lost entries: the
// numbers it lost, downstream up to down and upstream up to up, which
// were kept and are no more.
func lostRange(e *LogLostError, down, up uint64) string {
	r := "session state lost:"
	if down > e.DownTop {
		r += fmt.Sprintf(" downstream %d-%d", e.DownTop+1, down)
	}
	if up > e.UpTop {
		r += fmt.Sprintf(" upstream %d-%d", e.UpTop+1, up)
	}
	return r
}

// loseLocked ends a session whose log the store no longer has, or has
// lost entries of (a Redis restarted without persistence, or from an
// older copy): no node could take it over with what it lacks. It closes
// with 3009 and reason, delivered from memory, so that the client knows
// and nothing is lost silently. Called with s.mu held.
func (s *Session) loseLocked(reason string) {
	d := s.dur
	if d.lost {
		return
	}
	d.lost = true
	s.out.Release(s.out.Last())
	d.kept.Wake()
	s.h.logger.Warn("comet: session log lost", "session", logid.Short(s.id), "reason", reason)
	s.closeLostLocked(reason)
	if a := s.deliverer; a != nil {
		a.wake()
	}
}

// fence ends the session on this node, which no longer owns it: another
// took it over, or this node gives it up. Its attachments end without a
// close, as a dropped transport does, and its client resumes through the
// new owner; its Serve sees the session end; its log stays.
func (s *Session) fence() {
	d := s.dur
	s.mu.Lock()
	if d.fenced || s.finished {
		s.mu.Unlock()
		return
	}
	d.fenced = true
	if s.closeErr == nil {
		s.closeErr = errTakenOver
	}
	d.kept.Wake()
	s.mu.Unlock()
	s.h.logger.Debug("comet: session fenced", "session", logid.Short(s.id), "epoch", d.epoch)
	s.finish()
}

// Entry encodings in the log. A downstream entry: its frame type, flags,
// size, payload and suffix; a close's code, retry hint and reason. An
// upstream entry: a letter (m text, b binary, c close, x discarded) and
// the payload, or a close's code and reason.

const (
	entryRaw    = 1 << 0
	entrySuffix = 1 << 1
)

// encodeEntry encodes an outbound window entry.
func encodeEntry(e *window.Entry) []byte {
	if e.Type == transport.TypeClose {
		b := []byte{byte(transport.TypeClose), 0}
		b = binary.AppendUvarint(b, uint64(e.Close.Code))
		b = binary.AppendUvarint(b, e.Close.Retry)
		return append(b, e.Close.Reason...)
	}
	flags := byte(0)
	if e.Raw {
		flags |= entryRaw
	}
	if e.Suffix != nil {
		flags |= entrySuffix
	}
	b := make([]byte, 0, 2+3*binary.MaxVarintLen64+len(e.Payload)+len(e.Suffix))
	b = append(b, byte(e.Type), flags)
	b = binary.AppendUvarint(b, uint64(e.Size))
	b = binary.AppendUvarint(b, uint64(len(e.Payload)))
	b = append(b, e.Payload...)
	if e.Suffix != nil {
		b = append(b, e.Suffix...)
	}
	return b
}

// errBadEntry refuses a log entry that this release did not write.
var errBadEntry = errors.New("comet: malformed session log entry")

// decodeEntry decodes what encodeEntry encoded, and nothing else: every
// entry has one encoding.
func decodeEntry(b []byte) (window.Entry, error) {
	if len(b) < 2 {
		return window.Entry{}, errBadEntry
	}
	typ, flags, b := transport.Type(b[0]), b[1], b[2:]
	if typ == transport.TypeClose {
		code, n := uvarint(b)
		if n <= 0 || flags != 0 || code > 0xffff {
			return window.Entry{}, errBadEntry
		}
		retry, m := uvarint(b[n:])
		if m <= 0 {
			return window.Entry{}, errBadEntry
		}
		return window.Entry{Type: typ, Close: &transport.CloseError{Code: transport.CloseCode(code), Retry: retry,
			Reason: string(b[n+m:])}}, nil
	}
	if !typ.Sequenced() || flags&^(entryRaw|entrySuffix) != 0 {
		return window.Entry{}, errBadEntry
	}
	size, n := uvarint(b)
	if n <= 0 || size > maxEntrySize {
		return window.Entry{}, errBadEntry
	}
	b = b[n:]
	plen, n := uvarint(b)
	if n <= 0 || plen > uint64(len(b)-n) {
		return window.Entry{}, errBadEntry
	}
	b = b[n:]
	e := window.Entry{Type: typ, Size: int(size), Raw: flags&entryRaw != 0, Payload: b[:plen:plen]}
	if flags&entrySuffix != 0 {
		e.Suffix = b[plen:]
	} else if int(plen) != len(b) {
		return window.Entry{}, errBadEntry
	}
	return e, nil
}

// maxEntrySize bounds an entry's size as decodeEntry reads it: far above
// any message a session takes.
const maxEntrySize = 1 << 40

// uvarint is binary.Uvarint refusing (n <= 0) a number not in its
// shortest encoding.
func uvarint(b []byte) (uint64, int) {
	v, n := binary.Uvarint(b)
	if n > 1 && b[n-1] == 0 {
		return 0, -1
	}
	return v, n
}

// Upstream entry letters.
const (
	upText      = 'm'
	upBinary    = 'b'
	upClose     = 'c'
	upDiscarded = 'x'
)

// encodeUp encodes an upstream message.
func encodeUp(typ transport.MessageType, p []byte) []byte {
	b := make([]byte, 1, 1+len(p))
	b[0] = upText
	if typ == transport.Binary {
		b[0] = upBinary
	}
	return append(b, p...)
}

// encodeUpClose encodes the client's close.
func encodeUpClose(code transport.CloseCode, reason string) []byte {
	b := binary.AppendUvarint([]byte{upClose}, uint64(code))
	return append(b, reason...)
}
