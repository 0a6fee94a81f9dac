package session

import (
	"net/netip"
	"testing"
	"testing/synctest"
	"time"
)

// The limiter reads time.Now; inside a synctest bubble the clock is fake and
// moves only when the test sleeps, so refill is exact and instant.

var testKey = netip.MustParsePrefix("192.0.2.1/32")

func TestRateLimiterBurstThenRefusal(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		l := newAddrLimits(2, 3, -1) // 2 per second, bursts of 3
		for i := range 3 {
			if ok, _ := l.allowNegotiate(testKey); !ok {
				t.Fatalf("negotiate %d of a burst of 3 refused", i+1)
			}
		}
		ok, retry := l.allowNegotiate(testKey)
		if ok || retry != 500*time.Millisecond {
			t.Fatalf("4th negotiate: allowed %v, retry %v; want refused, retry 500ms", ok, retry)
		}

		time.Sleep(retry)
		if ok, _ := l.allowNegotiate(testKey); !ok {
			t.Fatal("refused after waiting the retry hint")
		}
		if ok, retry := l.allowNegotiate(testKey); ok || retry != 500*time.Millisecond {
			t.Fatalf("allowed %v, retry %v; want one token per 500ms", ok, retry)
		}
	})
}

func TestRateLimiterRefillCapsAtBurst(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		l := newAddrLimits(10, 2, -1)
		l.allowNegotiate(testKey)
		time.Sleep(time.Hour)
		allowed := 0
		for range 10 {
			if ok, _ := l.allowNegotiate(testKey); ok {
				allowed++
			}
		}
		if allowed != 2 {
			t.Errorf("after an idle hour %d negotiates allowed at once, want the burst, 2", allowed)
		}
	})
}

// TestAddrKey checks who counts as one client: an IPv4 address, or an
// IPv6 network of IPv6Prefix bits.
func TestAddrKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		prefix   int
		a, b     string
		separate bool
	}{
		{"other IPv4", 0, "192.0.2.1:1000", "192.0.2.2:1000", true},
		{"same IPv4, other port", 0, "192.0.2.1:1000", "192.0.2.1:2000", false},
		{"IPv6, other port", 0, "[2001:db8::1]:1000", "[2001:db8::1]:2000", false},
		{"IPv6, same /64", 0, "[2001:db8::1]:1000", "[2001:db8::ffff:2]:1000", false},
		{"IPv6, other /64", 0, "[2001:db8::1]:1000", "[2001:db8:0:1::1]:1000", true},
		{"IPv6 by /128", 128, "[2001:db8::1]:1000", "[2001:db8::2]:1000", true},
		{"IPv6 by /48", 48, "[2001:db8::1]:1000", "[2001:db8:0:ffff::1]:1000", false},
		{"IPv4-mapped IPv6 is IPv4", 0, "[::ffff:192.0.2.1]:1000", "192.0.2.1:2000", false},
		{"no port", 0, "192.0.2.1", "192.0.2.1:2000", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newTestHandler(t, &Options{IPv6Prefix: tc.prefix})
			ka, kb := h.addrKey(parseHop(tc.a)), h.addrKey(parseHop(tc.b))
			if !ka.IsValid() || !kb.IsValid() {
				t.Fatalf("keys %v and %v: want both valid", ka, kb)
			}
			if (ka != kb) != tc.separate {
				t.Errorf("%s → %v and %s → %v: separate %v, want %v", tc.a, ka, tc.b, kb, ka != kb, tc.separate)
			}
		})
	}
}

func TestRateLimiterDisabled(t *testing.T) {
	t.Parallel()
	l := newAddrLimits(-1, 1, -1)
	for range 1000 {
		if ok, _ := l.allowNegotiate(testKey); !ok {
			t.Fatal("a disabled limiter refused a negotiate")
		}
	}
}

func TestRateLimiterForgetsIdleAddresses(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		l := newAddrLimits(1, 4, -1) // a bucket is full again after 4s
		for _, addr := range []string{"192.0.2.1/32", "192.0.2.2/32", "192.0.2.3/32"} {
			l.allowNegotiate(netip.MustParsePrefix(addr))
		}
		time.Sleep(4 * time.Second)
		l.allowNegotiate(netip.MustParsePrefix("192.0.2.4/32"))
		l.mu.Lock()
		n := len(l.buckets)
		l.mu.Unlock()
		if n != 1 {
			t.Errorf("limiter holds %d buckets after the others idled until full, want 1", n)
		}
	})
}

func TestSessionsPerAddress(t *testing.T) {
	t.Parallel()
	l := newAddrLimits(-1, 1, 2)
	other := netip.MustParsePrefix("192.0.2.9/32")
	if !l.addSession(testKey) || !l.addSession(testKey) {
		t.Fatal("the first two sessions of a cap of 2 were refused")
	}
	if l.addSession(testKey) {
		t.Fatal("a third session of a cap of 2 was admitted")
	}
	if !l.addSession(other) {
		t.Fatal("another address was refused")
	}
	l.removeSession(testKey)
	if !l.addSession(testKey) {
		t.Fatal("a session was refused after one of the two ended")
	}
	l.removeSession(testKey)
	l.removeSession(testKey)
	l.removeSession(other)
	if len(l.open) != 0 {
		t.Errorf("counts left after every session ended: %v", l.open)
	}
}
