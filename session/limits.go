package session

import (
	"math"
	"net/netip"
	"sync"
	"time"
)

// addrKey names the client at a for the per-address limits: its IPv4
// address, or the IPv6 network of Options.IPv6Prefix bits around it, since
// one IPv6 host usually owns a whole /64 and could otherwise take a fresh
// bucket per address. An invalid address (RemoteAddr not an IP, as on a
// Unix socket) is the zero key, shared.
func (h *Handler) addrKey(a netip.Addr) netip.Prefix {
	if !a.IsValid() {
		return netip.Prefix{}
	}
	bits := 32
	if a.Is6() {
		bits = h.opts.IPv6Prefix
	}
	p, _ := a.Prefix(bits)
	return p
}

// addrLimits are the limits kept per client address: a token bucket of
// negotiates, and the count of open sessions. Buckets idle long enough to
// be full again are swept, and counts are dropped at zero, so the maps
// stay bounded by the addresses active now. Safe for concurrent use.
type addrLimits struct {
	rate     float64 // negotiate tokens per second; negative: no limit
	burst    float64
	sessions int // most sessions per address; negative: no cap

	mu        sync.Mutex
	buckets   map[netip.Prefix]*bucket
	open      map[netip.Prefix]int
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newAddrLimits(rate float64, burst, sessions int) *addrLimits {
	return &addrLimits{rate: rate, burst: float64(burst), sessions: sessions,
		buckets: make(map[netip.Prefix]*bucket), open: make(map[netip.Prefix]int)}
}

// allowNegotiate takes a negotiate token for key, or returns how long
// until one is due.
func (l *addrLimits) allowNegotiate(key netip.Prefix) (ok bool, retry time.Duration) {
	if l.rate < 0 {
		return true, 0
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	return b.take(now, l.rate, l.burst)
}

// take refills b for the time since its last use and takes a token, or
// returns how long until one is due.
func (b *bucket) take(now time.Time, rate, burst float64) (ok bool, retry time.Duration) {
	b.tokens = math.Min(burst, b.tokens+now.Sub(b.last).Seconds()*rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / rate * float64(time.Second))
}

func (l *addrLimits) sweep(now time.Time) {
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	if now.Sub(l.lastSweep) < full {
		return
	}
	l.lastSweep = now
	for key, b := range l.buckets {
		if now.Sub(b.last) >= full {
			delete(l.buckets, key)
		}
	}
}

// addSession counts a new session of key, unless key holds the most
// allowed already.
func (l *addrLimits) addSession(key netip.Prefix) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sessions >= 0 && l.open[key] >= l.sessions {
		return false
	}
	l.open[key]++
	return true
}

// removeSession uncounts a session of key.
func (l *addrLimits) removeSession(key netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := l.open[key] - 1; n > 0 {
		l.open[key] = n
	} else {
		delete(l.open, key)
	}
}
