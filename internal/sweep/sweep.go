// Package sweep checks a changing set of items on one shared timer, for
// work that each item would otherwise need a timer of its own for: one
// that would be set and fired once per message, a timer operation and a
// goroutine each time, where the sweep costs an append to a list.
//
// An item keeps a Mark, which Wait updates whenever the time it is
// waiting on starts again: it records the epoch and lists the item
// unless it is listed already. Every period the sweep moves the epoch on
// and checks each item with the new epoch: an item that recorded epoch e
// and still waits at epoch e+2 has waited at least one whole period, and
// at most two (Mark.Over). A check that lets the item go says so on its
// Mark (Unlist).
package sweep

import (
	"sync"
	"sync/atomic"
	"time"
)

// List is a set of items checked every period while it is not empty.
type List[T any] struct {
	period time.Duration
	check  func(item T, epoch uint64) (keep bool)
	epoch  atomic.Uint64

	mu    sync.Mutex
	items []T
	spare []T // the list a sweep works through, reused
	timer *time.Timer
	armed bool // the timer runs: items is not empty
}

// New returns a List that calls check on every item each period, with the
// epoch that period began; check reports whether the item stays listed.
// check runs on the timer's goroutine, one item at a time, with no lock
// of the List's held.
func New[T any](period time.Duration, check func(item T, epoch uint64) (keep bool)) *List[T] {
	return &List[T]{period: period, check: check}
}

// Mark is an item's record on a List: whether it is listed, and the epoch
// its wait last started. The item's owner guards it with the lock its
// check takes.
type Mark struct {
	listed bool
	since  uint64
}

// Wait records that item's wait starts now, and lists it unless m says it
// is listed.
func (l *List[T]) Wait(m *Mark, item T) {
	m.since = l.epoch.Load()
	if !m.listed {
		m.listed = true
		l.add(item)
	}
}

// Over reports whether the wait m records has lasted at least a period
// when checked at epoch now.
func (m *Mark) Over(now uint64) bool { return m.since+2 <= now }

// Unlist records that a check let the item go: the next Wait lists it
// again.
func (m *Mark) Unlist() { m.listed = false }

// add lists item. The caller makes sure it is not listed already.
func (l *List[T]) add(item T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.items = append(l.items, item)
	if !l.armed {
		l.armed = true
		if l.timer == nil {
			l.timer = time.AfterFunc(l.period, l.sweep)
		} else {
			l.timer.Reset(l.period)
		}
	}
}

func (l *List[T]) sweep() {
	now := l.epoch.Add(1)
	l.mu.Lock()
	work := l.items
	l.items = l.spare[:0]
	l.mu.Unlock()

	keep := work[:0]
	for _, item := range work {
		if l.check(item, now) {
			keep = append(keep, item)
		}
	}
	clear(work[len(keep):])

	l.mu.Lock()
	defer l.mu.Unlock()
	l.items = append(l.items, keep...)
	clear(keep)
	l.spare = keep[:0]
	if len(l.items) == 0 {
		l.armed = false
		return
	}
	l.timer.Reset(l.period)
}
