package client

import (
	"context"
	"time"
)

// Fixed timings of the client.
const (
	// backoffBase and backoffMax bound the wait between resume attempts.
	backoffBase = 100 * time.Millisecond
	backoffMax  = 5 * time.Second
	// stableAttach is how long an attachment must live for its drop to be
	// resumed at once; shorter ones back off, so that a server that cuts
	// every connection right after its open frame is not hammered.
	stableAttach = 10 * time.Second
	// renewBase and renewMax bound the wait before opening a fresh
	// session (Options.Reconnect), as the shim's reconnectDelay and
	// reconnectMaxDelay do by default.
	renewBase = time.Second
	renewMax  = 30 * time.Second
	// maxPause caps the pause before resending what a full server inbound
	// refused (PROTOCOL.md section 6).
	maxPause = time.Second
)

// attachTimeout derives the attach timeout from the negotiate round trip:
// minTimeout + 4×RTT, capped at maxTimeout (PROTOCOL.md section 8). The
// floor pays for the TCP, TLS and upgrade of a cold WebSocket, where
// negotiate was timed on a warm connection.
func attachTimeout(rtt, minTimeout, maxTimeout time.Duration) time.Duration {
	return min(minTimeout+4*rtt, maxTimeout)
}

// backoff returns the wait before resume attempt n (from 0): doubling from
// backoffBase, capped at backoffMax, with "equal jitter" — half of it
// fixed, half drawn from r in [0, 1) — so that clients cut by one outage do
// not all return at once, and none retries in a tight loop.
func backoff(n int, r float64) time.Duration {
	return backoffBetween(n, r, backoffBase, backoffMax)
}

// backoffBetween is backoff doubling from lo, capped at hi.
func backoffBetween(n int, r float64, lo, hi time.Duration) time.Duration {
	d := hi
	if n < 16 {
		d = min(lo<<n, hi)
	}
	return equalJitter(d, r)
}

// equalJitter returns d with "equal jitter": half of it fixed, half drawn
// from r in [0, 1).
func equalJitter(d time.Duration, r float64) time.Duration {
	return d/2 + time.Duration(r*float64(d/2))
}

// nextPause returns the pause after p before resending what the server
// did not accept: base (the server's ackDelay) at first, then doubling to
// maxPause.
func nextPause(p, base time.Duration) time.Duration {
	if p == 0 {
		return min(base, maxPause)
	}
	return min(2*p, maxPause)
}

// clampInterval returns the heartbeat interval (or poll hold) the server
// applies when asked for asked: the server's own, hi, when asked is 0,
// otherwise asked clamped to [lo, hi] (PROTOCOL.md section 5).
func clampInterval(asked, lo, hi time.Duration) time.Duration {
	if asked <= 0 {
		return hi
	}
	return min(max(asked, lo), hi)
}

// sleep waits for d or ctx and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
