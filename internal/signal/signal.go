// Package signal is a broadcast condition that, unlike sync.Cond, a
// waiter can select on together with a context or a timer. The server's
// Session and the Go client's Conn wake their waiters with it.
package signal

// Signal wakes every goroutine waiting for a change. It is guarded by its
// owner's mutex: Wait and Wake are called with that mutex held, and the
// channel Wait returns is received from after releasing it. It allocates
// a channel only when somebody waits, so a path that only wakes stays
// allocation-free. The zero Signal is ready.
type Signal struct{ ch chan struct{} }

// Wait returns a channel closed at the next Wake.
func (s *Signal) Wait() <-chan struct{} {
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

// Wake wakes every waiter.
func (s *Signal) Wake() {
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}
