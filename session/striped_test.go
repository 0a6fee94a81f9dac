package session

import (
	"sync"
	"testing"
)

// TestStripedCounter: adds on many goroutines, each to stripes of its
// own and to shared ones, past the number of stripes, sum to what they
// added; taking back what was added leaves zero.
func TestStripedCounter(t *testing.T) {
	t.Parallel()
	var c stripedCounter
	var wg sync.WaitGroup
	for g := range 40 {
		wg.Go(func() {
			for i := range 1000 {
				c.Add(uint32(g+i), int64(g+1))
			}
		})
	}
	wg.Wait()
	want := int64(0)
	for g := range 40 {
		want += 1000 * int64(g+1)
	}
	if got := c.Load(); got != want {
		t.Fatalf("Load = %d, want %d", got, want)
	}
	for g := range 40 {
		c.Add(uint32(3*g), -1000*int64(g+1))
	}
	if got := c.Load(); got != 0 {
		t.Fatalf("Load after taking everything back = %d, want 0", got)
	}
}
