package session

import "sync/atomic"

// stripes is how many cache lines a stripedCounter spreads over.
const stripes = 16

// stripedCounter is a sum that many goroutines add to at once, as the
// sessions a broadcast offers a message to on several goroutines do (see
// Broadcast): each session adds to a stripe of its own, on a cache line of
// its own, so that adds on different CPUs do not fight over one line.
// Load sums the stripes; it sees each add once it is done, not all the
// adds of a moment together.
type stripedCounter struct {
	s [stripes]struct {
		v atomic.Int64
		_ [56]byte // the rest of the cache line
	}
}

// Add adds d to the stripe numbered stripe (modulo stripes).
func (c *stripedCounter) Add(stripe uint32, d int64) { c.s[stripe%stripes].v.Add(d) }

// Load returns the sum of the stripes.
func (c *stripedCounter) Load() int64 {
	var n int64
	for i := range c.s {
		n += c.s[i].v.Load()
	}
	return n
}
