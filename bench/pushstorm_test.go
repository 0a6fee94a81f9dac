package main

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestRunStorm checks the storm's round robin: each sender keeps to its
// own share of the targets, goes round it until a push waits (a full
// window) and the storm's time is up, and stops early once every target
// of its share has failed in a row.
func TestRunStorm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Five targets, two senders: shares {0, 2, 4} and {1, 3}. Each
		// target takes three pushes, then is full until the storm ends.
		const accepts = 3
		var mu sync.Mutex
		calls := make([]int, 5)
		targets := make([]func(context.Context) error, len(calls))
		for i := range targets {
			targets[i] = func(ctx context.Context) error {
				mu.Lock()
				calls[i]++
				n := calls[i]
				mu.Unlock()
				if n <= accepts {
					return nil
				}
				<-ctx.Done()
				return ctx.Err()
			}
		}
		rep := runStorm(targets, 2, time.Second)
		if rep.Targets != 5 || rep.Sent != 5*accepts || rep.Failed != 0 {
			t.Errorf("report %+v, want 5 targets, %d sent, none failed", rep, 5*accepts)
		}
		// The pushes that waited are the ones after three: one for the
		// target each sender was stuck on, none for the others.
		stuck := 0
		for i, n := range calls {
			if n < accepts || n > accepts+1 {
				t.Errorf("target %d pushed %d times, want %d or %d", i, n, accepts, accepts+1)
			}
			if n == accepts+1 {
				stuck++
			}
		}
		if stuck != 2 {
			t.Errorf("%d targets waited, want 2 (one per sender): %v", stuck, calls)
		}
	})
}

func TestRunStormAllGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gone := errors.New("gone")
		targets := make([]func(context.Context) error, 7)
		for i := range targets {
			targets[i] = func(context.Context) error { return gone }
		}
		// Every sender gives up after one failed round, long before the
		// storm's minute is up.
		start := time.Now()
		rep := runStorm(targets, 3, time.Minute)
		if rep.Sent != 0 || rep.Failed != 7 {
			t.Errorf("report %+v, want 0 sent, 7 failed", rep)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("the storm lasted %v of its fake clock, want 0: its senders did not stop", d)
		}
	})
	if rep := runStorm(nil, 20, time.Minute); rep.Targets != 0 || rep.Sent != 0 {
		t.Errorf("a storm without targets: %+v", rep)
	}
}

func TestStormResultMS(t *testing.T) {
	// Three round trips are too few for latencies.ms(99); the storm
	// reports the nearest rank anyway.
	res := stormResult{lat: latencies{10 * time.Millisecond, 20 * time.Millisecond, 3 * time.Second}}
	for _, tc := range []struct{ p, want float64 }{{50, 20}, {99, 3000}, {100, 3000}} {
		if got := res.ms(tc.p); got != tc.want {
			t.Errorf("ms(%g) = %v, want %v", tc.p, got, tc.want)
		}
	}
}

func TestWhilePushing(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	rounds := []stormRound{
		{at(0), 900 * time.Millisecond}, // started with the storm, held up by it
		{at(900), time.Millisecond},
		{at(1000), 2 * time.Millisecond}, // started at the last push: counted
		{at(1002), time.Millisecond},     // after it: the storm is over
	}
	got := whilePushing(rounds, at(1000))
	want := latencies{time.Millisecond, 2 * time.Millisecond, 900 * time.Millisecond}
	if !slices.Equal(got, want) {
		t.Errorf("whilePushing = %v, want %v", got, want)
	}
}
