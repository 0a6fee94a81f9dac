package session

import (
	"testing"
	"testing/synctest"
	"time"
)

// The limiter reads time.Now; inside a synctest bubble the clock is fake and
// moves only when the test sleeps, so refill is exact and instant.

func TestRateLimiterBurstThenRefusal(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		l := newRateLimiter(2, 3) // 2 per second, bursts of 3
		for i := range 3 {
			if ok, _ := l.allow("192.0.2.1:1000"); !ok {
				t.Fatalf("negotiate %d of a burst of 3 refused", i+1)
			}
		}
		ok, retry := l.allow("192.0.2.1:1000")
		if ok || retry != 500*time.Millisecond {
			t.Fatalf("4th negotiate: allowed %v, retry %v; want refused, retry 500ms", ok, retry)
		}

		time.Sleep(retry)
		if ok, _ := l.allow("192.0.2.1:1000"); !ok {
			t.Fatal("refused after waiting the retry hint")
		}
		if ok, retry := l.allow("192.0.2.1:1000"); ok || retry != 500*time.Millisecond {
			t.Fatalf("allowed %v, retry %v; want one token per 500ms", ok, retry)
		}
	})
}

func TestRateLimiterRefillCapsAtBurst(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		l := newRateLimiter(10, 2)
		l.allow("192.0.2.1:1")
		time.Sleep(time.Hour)
		allowed := 0
		for range 10 {
			if ok, _ := l.allow("192.0.2.1:1"); ok {
				allowed++
			}
		}
		if allowed != 2 {
			t.Errorf("after an idle hour %d negotiates allowed at once, want the burst, 2", allowed)
		}
	})
}

func TestRateLimiterKeysByIP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		a, b     string
		separate bool
	}{
		{"other IP", "192.0.2.1:1000", "192.0.2.2:1000", true},
		{"same IP, other port", "192.0.2.1:1000", "192.0.2.1:2000", false},
		{"IPv6, other port", "[2001:db8::1]:1000", "[2001:db8::1]:2000", false},
		{"IPv6, other IP", "[2001:db8::1]:1000", "[2001:db8::2]:1000", true},
		{"no port", "192.0.2.1", "192.0.2.1:2000", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				l := newRateLimiter(1, 1)
				if ok, _ := l.allow(tc.a); !ok {
					t.Fatalf("first negotiate from %s refused", tc.a)
				}
				if ok, _ := l.allow(tc.b); ok != tc.separate {
					t.Errorf("%s after %s: allowed %v, want %v", tc.b, tc.a, ok, tc.separate)
				}
			})
		})
	}
}

func TestRateLimiterDisabled(t *testing.T) {
	t.Parallel()
	l := newRateLimiter(-1, 1)
	for range 1000 {
		if ok, _ := l.allow("192.0.2.1:1"); !ok {
			t.Fatal("a disabled limiter refused a negotiate")
		}
	}
}

func TestRateLimiterForgetsIdleAddresses(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		l := newRateLimiter(1, 4) // a bucket is full again after 4s
		for _, addr := range []string{"192.0.2.1:1", "192.0.2.2:1", "192.0.2.3:1"} {
			l.allow(addr)
		}
		time.Sleep(4 * time.Second)
		l.allow("192.0.2.4:1")
		l.mu.Lock()
		n := len(l.buckets)
		l.mu.Unlock()
		if n != 1 {
			t.Errorf("limiter holds %d buckets after the others idled until full, want 1", n)
		}
	})
}
