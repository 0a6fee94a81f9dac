package session

import (
	"sync"
	"time"
)

// ackHolds ends the holds of a handler's acks (see ackHold) with one timer
// for every attachment. A timer of each attachment's own, set when an ack
// is held and stopped when a reply carries it, costs two timer operations
// per message; one that moves the earliest timer of the process wakes the
// network poller of an idle thread, which on request/response traffic
// measured as tens of microseconds a round trip. The shared timer runs
// every ackHold while some ack is held: an attachment joins its list when
// it holds an ack and stays on it, holding again without a timer
// operation, until a tick finds it has held nothing since the tick
// before: an attachment whose replies carry its acks, one a round trip,
// is not put on the list, under the list's lock, at every other tick.
//
// A tick flushes the acks held for ackHold or longer, so an ack goes
// alone between ackHold and twice that after it was held; exactly at
// ackHold when no other ack was held before it.
type ackHolds struct {
	mu    sync.Mutex
	held  []*attachment // attachments with inHolds set
	spare []*attachment // the list a tick works through, reused
	timer *time.Timer
	armed bool // timer runs: held is not empty
}

// add puts a on the list. Called with a.s.mu held, a.inHolds just set.
func (h *ackHolds) add(a *attachment) {
	h.mu.Lock()
	h.held = append(h.held, a)
	if !h.armed {
		h.armed = true
		if h.timer == nil {
			h.timer = time.AfterFunc(ackHold, h.tick)
		} else {
			h.timer.Reset(ackHold)
		}
	}
	h.mu.Unlock()
}

// tick flushes the holds that are over and keeps the rest on the list.
func (h *ackHolds) tick() {
	h.mu.Lock()
	work := h.held
	h.held = h.spare[:0]
	h.mu.Unlock()

	now := time.Now()
	keep := work[:0]
	for _, a := range work {
		if a.holdTick(now) {
			keep = append(keep, a)
		}
	}
	clear(work[len(keep):])

	h.mu.Lock()
	h.held = append(h.held, keep...)
	clear(keep)
	h.spare = keep[:0]
	if len(h.held) == 0 {
		h.armed = false
	} else {
		h.timer.Reset(ackHold)
	}
	h.mu.Unlock()
}

// holdAck holds an ack that would go alone, unless one is held. Called
// with s.mu held.
func (a *attachment) holdAck() {
	if a.holding {
		return
	}
	a.holding = true
	a.heldSinceTick = true
	// What is acked came with the last upstream traffic, or before: the
	// hold counts from then, which saves reading the clock per message.
	a.holdSince = a.s.lastSeen
	if !a.inHolds {
		a.inHolds = true
		a.s.h.ackHolds.add(a)
	}
}

// holdTick is a tick of the handler's ack timer: it sends a's ack alone
// if it has been held for ackHold, and reports whether a stays on the
// list: holding an ack not yet due, or having held one since the last
// tick.
func (a *attachment) holdTick(now time.Time) (keep bool) {
	s := a.s
	s.mu.Lock()
	switch {
	case !a.ended && !a.holding && a.heldSinceTick:
		a.heldSinceTick = false // stays one more tick, likely to hold again
		s.mu.Unlock()
		return true
	case a.ended || !a.holding:
		a.inHolds = false
		s.mu.Unlock()
		return false
	case now.Sub(a.holdSince) < ackHold:
		s.mu.Unlock()
		return true
	}
	a.holding, a.flushAck, a.inHolds = false, true, false
	write := a.wakeNow()
	s.mu.Unlock()
	if write {
		a.writeNow()
	}
	return false
}
