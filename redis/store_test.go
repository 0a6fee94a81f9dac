package redis

import (
	"context"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/internal/storetest"
)

// TestStore runs the SessionStore suite on brokers of one real Redis.
func TestStore(t *testing.T) {
	r := startRedis(t)
	storetest.Run(t, func(t *testing.T) (a, b storetest.Node) {
		bs, _ := startN(t, r, 2, Options{})
		return storetest.Node{Store: bs[0], ID: bs[0].Node()}, storetest.Node{Store: bs[1], ID: bs[1].Node()}
	})
}

// TestStoreGeneration restarts Redis empty: each broker reports the store
// lost, once, within a refresh of its return.
func TestStoreGeneration(t *testing.T) {
	r := startRedis(t)
	bs, recs := startN(t, r, 2, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin(t, r).FlushAll(ctx)
	for i := range bs {
		waitUntil(t, "the store reported lost", func() bool { return recs[i].storeLost.Load() == 1 })
	}
	before := bs[0].refreshes.Load()
	waitUntil(t, "two more refreshes", func() bool { return bs[0].refreshes.Load() >= before+2 })
	for i := range bs {
		if n := recs[i].storeLost.Load(); n != 1 {
			t.Fatalf("broker %d reported the store lost %d times, want 1", i, n)
		}
	}
}
