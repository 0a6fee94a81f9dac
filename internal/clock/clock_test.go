package clock

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestNowKeepsTimeNowsOrder checks Now against time.Now: read in turn,
// each is at or after the one before, and the wall clock agrees to well
// within a second (nothing steps the clock during a test).
func TestNowKeepsTimeNowsOrder(t *testing.T) {
	prev := time.Now()
	for range 1000 {
		n := Now()
		if n.Before(prev) {
			t.Fatalf("Now %v is before the time.Now read before it, %v", n, prev)
		}
		after := time.Now()
		if after.Before(n) {
			t.Fatalf("time.Now %v is before the Now read before it, %v", after, n)
		}
		prev = after
	}
	if d := time.Until(Now().Round(0)); d > time.Second || d < -time.Second {
		t.Fatalf("Now's wall clock is %v away from time.Now's", d)
	}
}

// TestNowInBubble checks that Now follows a synctest bubble's fake
// clock, so that code using it can be tested with synctest.
func TestNowInBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		before := Now()
		time.Sleep(time.Hour)
		if d := Now().Sub(before); d != time.Hour {
			t.Fatalf("an hour's sleep in the bubble moved Now by %v", d)
		}
		if !Now().Equal(time.Now()) {
			t.Fatalf("Now %v differs from the bubble's time.Now %v", Now(), time.Now())
		}
	})
}

func BenchmarkNow(b *testing.B) {
	b.Run("clock", func(b *testing.B) {
		for b.Loop() {
			Now()
		}
	})
	b.Run("time", func(b *testing.B) {
		for b.Loop() {
			time.Now()
		}
	})
}
