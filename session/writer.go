package session

import (
	"cmp"
	"errors"
	"sync"
	"time"

	"github.com/seed-544bbf9f/comet/internal/clock"
	"github.com/seed-544bbf9f/comet/transport"
)

var batchPool = sync.Pool{New: func() any { return new(transport.Batch) }}

// writerLinger is how long a writer goroutine started by wake waits for
// more to write before it goes. Request/response traffic then finds it
// parked, as a goroutine of the connection's own would be, and pays for no
// new goroutine per message; a session quiet for longer is idle, and
// costs none.
const writerLinger = 50 * time.Millisecond

// wake sets the attachment's writer going unless it runs: something may
// be due. Called with s.mu held. Only the writer writes to ds. Under Serve
// it is Serve's goroutine, which the request holds anyway; under Start it
// is a goroutine that exists only while there is something to write, and
// writerLinger after, so that an idle attachment costs no goroutine, nor
// the batch the writer holds.
func (a *attachment) wake() {
	if a.writing || a.ended || a.writer == nil {
		return
	}
	a.writing = true
	if a.prompt && !a.writerUp {
		// Its writes never wait: a goroutine for one drain, no linger,
		// so that the next write far enough from this one is made in
		// place again (see wakeNow).
		go a.writeNow()
		return
	}
	if a.writerUp {
		a.wakeCh <- struct{}{} // never full: writing admits one wake-up at a time
		return
	}
	a.writerUp = true
	go a.writer()
}

// promptGap is how long after a write began the next may be written by
// the goroutine that has it to send (see wakeNow). Closer writes come
// from a sender in a loop: they go to a goroutine of their own, which
// batches what piles up while it writes, one syscall for many messages;
// messages sent in reply, or to many sessions in turn, are further
// apart.
const promptGap = 10 * time.Microsecond

// wakeNow is wake for a caller that may write itself. When a's
// downstream writes promptly (transport.PromptDownstream), no writer
// runs and the last write began at least promptGap ago, the caller
// becomes the writer: wakeNow reports true, and the caller calls writeNow
// once it has let go of s.mu. A message sent then reaches the socket
// from the goroutine that sent it, with no hand-off, and a broadcast
// writes to every idle session in turn, as a hub loop does, without
// waiting on any. Otherwise it wakes a as wake does. Called with s.mu
// held.
func (a *attachment) wakeNow() bool {
	if !a.prompt || a.writerUp || a.writing || a.ended || a.writer == nil {
		a.wake()
		return false
	}
	now := clock.Now()
	if now.Sub(a.lastWrite) < promptGap {
		a.wake()
		return false
	}
	a.writing = true
	a.claimed = now // the write begins now: drain reads no clock again
	return true
}

// writeNow writes what is due, from the calling goroutine, until nothing
// is; the caller has made itself the writer (wakeNow).
func (a *attachment) writeNow() {
	b := batchPool.Get().(*transport.Batch)
	a.drain(b)
	batchPool.Put(b)
}

// write is the writer goroutine wake starts under Start. It goes, and its
// batch back to the pool, once it has had nothing to write for
// writerLinger.
func (a *attachment) write() {
	s := a.s
	b := batchPool.Get().(*transport.Batch)
	defer batchPool.Put(b)
	linger := time.NewTimer(writerLinger)
	defer linger.Stop()
	for {
		a.drain(b)
		linger.Reset(writerLinger)
		select {
		case <-a.wakeCh:
		case <-a.doneCh:
			return
		case <-linger.C:
			s.mu.Lock()
			if a.writing {
				// Woken as the linger ended: the wake-up is in wakeCh.
				s.mu.Unlock()
				<-a.wakeCh
				continue
			}
			a.writerUp = false
			s.mu.Unlock()
			return
		}
	}
}

// drain gathers what is due into one batch per write, in b, until nothing
// is, then lets the writer go. It decides so under s.mu, which wake holds
// too, so that no wake-up is lost between the two.
func (a *attachment) drain(b *transport.Batch) {
	s := a.s
	d := a.delivery
	b.Raw = a.raw
	for {
		s.mu.Lock()
		claimed := a.claimed // the first time round, if wakeNow claimed
		a.claimed = time.Time{}
		if a.ended {
			s.mu.Unlock()
			return
		}
		b.Reset()
		beat := a.beat
		final := a.collect(b, d, a.every, beat)
		if d == transport.Stream && a.opened && !a.flushAck && holdRawAck(b) {
			a.ackDue = true // held as an ack alone is, below
		}
		// A delivering poll holds its open frame back until there is
		// something to deliver or the hold expires.
		idle := d == transport.Poll && b.Len() == 1 && !a.opened && a.delivering && !beat
		held := d == transport.Stream && a.opened && !a.flushAck && b.Len() == 1 && b.Frames[0].Type == transport.TypeAck
		if held {
			a.ackDue = true // still due, collected again with what comes next
			a.holdAck()
		}
		if a.opened && b.Len() == 0 || idle || held {
			a.writing = false
			s.mu.Unlock()
			return
		}
		a.opened = true
		a.beat = false
		a.holding = false // the ack goes now; a tick takes a off the list
		a.flushAck = false
		a.lastWrite = cmp.Or(claimed, clock.Now())
		s.mu.Unlock()

		err := a.ds.WriteBatch(b)
		if err == nil || errors.Is(err, transport.ErrDone) {
			a.countOut(b)
		}
		if errors.Is(err, transport.ErrDone) || err == nil && (final || d == transport.Poll) {
			a.end(nil)
			return
		}
		if err != nil {
			a.end(err)
			return
		}
	}
}

// heartbeatDue runs when the downstream may have been silent for an
// interval. It checks rather than trusts: the writer does not reset the
// timer on every write (a timer operation per message), it notes the time
// of each, and a timer that fires early is set again for the rest.
func (a *attachment) heartbeatDue() {
	s := a.s
	s.mu.Lock()
	if a.ended {
		s.mu.Unlock()
		return
	}
	if a.writing {
		// A write in flight, or about to be: its end restarts the silence.
		a.heartbeat.Reset(a.every)
		s.mu.Unlock()
		return
	}
	if wait := a.every - time.Since(a.lastWrite); wait > 0 {
		a.heartbeat.Reset(wait)
		s.mu.Unlock()
		return
	}
	if a.delivery == transport.Stream && time.Since(s.lastSeen) >= 2*a.every {
		s.mu.Unlock()
		a.end(errPeerSilent)
		return
	}
	a.beat = true
	a.heartbeat.Reset(a.every)
	now := a.wakeNow()
	s.mu.Unlock()
	if now {
		a.writeNow()
	}
}

// askAckLocked asks the client for its ack now, with a heartbeat, which a
// client answers with its ack whatever its cadence (PROTOCOL.md section
// 6): a message waits for room in the window, which a client holding
// lazy acks would otherwise give only at the end of its delay. It asks
// once on each attachment until an ack comes (one that replaces an
// attachment asked may deliver again what the client never got), and
// reports whether the caller is to write (wakeNow). Called with s.mu
// held.
func (a *attachment) askAckLocked() bool {
	s := a.s
	if s.ackAsked == a || a.ended {
		return false
	}
	s.ackAsked = a
	a.beat = true
	return a.wakeNow()
}

// ackAloneLocked reports whether a writer woken now would find only the
// ack due to write, on a stream that holds such an ack (see drain): what
// a message received asks of the writer, most often, when the
// application's reply is to carry the ack. The receiver then holds the
// ack itself, and a round trip costs no drain that writes nothing.
// Called with s.mu held.
func (a *attachment) ackAloneLocked() bool {
	s := a.s
	return a.delivery == transport.Stream && a.opened && !a.flushAck && !a.writing && !a.ended &&
		!a.beat && !a.superseded && len(a.echoes) == 0 &&
		(!a.delivering || s.replyWaiting > 0 || !s.out.PendingAfter(a.cursor))
}

// holdRawAck takes a trailing ack off a batch otherwise made of raw
// binary messages, where it would cost a WebSocket message of its own
// (a text one) beside each binary one, and reports whether it did. The
// ack then waits as an ack alone does (ackHold): for a text frame to ride
// on, or to go after the hold, once for every message read meanwhile.
func holdRawAck(b *transport.Batch) bool {
	n := b.Len()
	if n < 2 || b.Frames[n-1].Type != transport.TypeAck {
		return false
	}
	for _, sp := range b.Frames[:n-1] {
		if !sp.Raw {
			return false
		}
	}
	b.Bytes = b.Bytes[:b.Frames[n-1].Start]
	b.Frames = b.Frames[:n-1]
	return true
}

// countOut counts the messages and bytes of a batch written.
func (a *attachment) countOut(b *transport.Batch) {
	n := 0
	for i := range b.Frames {
		if b.Frames[i].Type.IsMessage() {
			n++
		}
	}
	c := a.s.h.counters.traffic.at(a.s.stripe, a.tidx)
	if n > 0 {
		c.msgsOut.Add(uint64(n))
	}
	c.bytesOut.Add(uint64(len(b.Bytes)))
}
