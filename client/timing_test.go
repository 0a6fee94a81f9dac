package client

import (
	"context"
	"github.com/seed-544bbf9f/comet/transport"
	"testing"
	"testing/synctest"
	"time"
)

func TestAttachTimeout(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name              string
		rtt, lo, hi, want time.Duration
	}{
		{"loopback", 0, 300 * ms, 10 * time.Second, 300 * ms},
		{"floor plus four round trips", 50 * ms, 300 * ms, 10 * time.Second, 500 * ms},
		{"capped", 5 * time.Second, 300 * ms, 10 * time.Second, 10 * time.Second},
		{"exactly at the cap", 2425 * ms, 300 * ms, 10 * time.Second, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := attachTimeout(tc.rtt, tc.lo, tc.hi); got != tc.want {
				t.Errorf("attachTimeout(%v, %v, %v) = %v, want %v", tc.rtt, tc.lo, tc.hi, got, tc.want)
			}
		})
	}
}

func TestNewLimits(t *testing.T) {
	n := testNegotiate()
	n.MinTimeout, n.MaxTimeout, n.AckDelay, n.MinHeartbeat = 0, 0, 0, 0 // left out: the defaults apply
	l := newLimits(n, 100*time.Millisecond, 5*time.Second)
	if want := 700 * time.Millisecond; l.attachTimeout != want {
		t.Errorf("attachTimeout = %v, want %v", l.attachTimeout, want)
	}
	if l.ackDelay != 200*time.Millisecond || l.minHeartbeat != time.Second {
		t.Errorf("ackDelay, minHeartbeat = %v, %v, want the defaults 200ms, 1s", l.ackDelay, l.minHeartbeat)
	}
	if l.hb != 5000 {
		t.Errorf("hb = %d, want 5000", l.hb)
	}
	if l.ack.messages != 4 || l.ack.bytes != 512 {
		t.Errorf("ack policy = %+v, want half the server's window (4, 512)", l.ack)
	}
}

// TestNewLimitsLazyAcks: granted lazy acks lower the thresholds to the
// server's and lengthen the delay to its, held to the heartbeat interval
// the client asked for; each Conn holds its acks for between half and all
// of that delay, drawn once, so that the clients of one broadcast do not
// all ack at once.
func TestNewLimitsLazyAcks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		lazy   *transport.LazyAcks
		asked  time.Duration
		policy ackPolicy
	}{
		{"not granted", nil, 0, ackPolicy{messages: 4, bytes: 512, delay: 200 * time.Millisecond}},
		{"granted", &transport.LazyAcks{Delay: 5000, Messages: 2, Bytes: 100}, 0, ackPolicy{messages: 2, bytes: 100, delay: 5 * time.Second}},
		{"thresholds above half the window", &transport.LazyAcks{Delay: 5000, Messages: 64, Bytes: 65536}, 0,
			ackPolicy{messages: 4, bytes: 512, delay: 5 * time.Second}},
		{"shorter heartbeat asked", &transport.LazyAcks{Delay: 5000, Messages: 2, Bytes: 100}, 2 * time.Second,
			ackPolicy{messages: 2, bytes: 100, delay: 2 * time.Second}},
		{"heartbeat below the minimum", &transport.LazyAcks{Delay: 5000, Messages: 2, Bytes: 100}, time.Millisecond,
			ackPolicy{messages: 2, bytes: 100, delay: time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := testNegotiate()
			n.LazyAcks = tc.lazy
			delays := map[time.Duration]bool{}
			for range 20 {
				got := newLimits(n, 0, tc.asked).ack
				if tc.lazy == nil {
					if got != tc.policy {
						t.Fatalf("ack policy %+v, want %+v", got, tc.policy)
					}
					continue
				}
				if got.messages != tc.policy.messages || got.bytes != tc.policy.bytes ||
					got.delay < tc.policy.delay/2 || got.delay > tc.policy.delay {
					t.Fatalf("ack policy %+v, want %+v with a delay between half and all of it", got, tc.policy)
				}
				delays[got.delay] = true
			}
			if tc.lazy != nil && len(delays) < 2 {
				t.Errorf("20 Conns all hold their acks for %v: the delay is not spread", tc.policy.delay)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	for n := range 40 {
		lo, hi := backoff(n, 0), backoff(n, 0.999999)
		full := min(backoffBase<<min(n, 16), backoffMax)
		if lo != full/2 {
			t.Errorf("backoff(%d, 0) = %v, want %v: half is fixed", n, lo, full/2)
		}
		if hi > full || hi < lo {
			t.Errorf("backoff(%d, ~1) = %v, want within [%v, %v]", n, hi, lo, full)
		}
		if hi > backoffMax {
			t.Errorf("backoff(%d) = %v exceeds the cap %v", n, hi, backoffMax)
		}
	}
	if backoff(0, 0) <= 0 {
		t.Error("the first retry waits no time: a flapping server would be hammered")
	}
	if a, b := backoff(3, 0.1), backoff(3, 0.9); a == b {
		t.Errorf("backoff ignores its jitter: %v for 0.1 and 0.9", a)
	}
}

func TestNextPause(t *testing.T) {
	var got []time.Duration
	p := time.Duration(0)
	for range 6 {
		p = nextPause(p, 200*time.Millisecond)
		got = append(got, p)
	}
	ms := time.Millisecond
	want := []time.Duration{200 * ms, 400 * ms, 800 * ms, time.Second, time.Second, time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("pauses = %v, want %v", got, want)
		}
	}
	if p := nextPause(0, 3*time.Second); p != maxPause {
		t.Errorf("nextPause(0, 3s) = %v, want the cap %v", p, maxPause)
	}
}

func TestClampInterval(t *testing.T) {
	s := time.Second
	for _, tc := range []struct{ asked, want time.Duration }{
		{0, 25 * s},
		{100 * time.Millisecond, s},
		{10 * s, 10 * s},
		{60 * s, 25 * s},
	} {
		if got := clampInterval(tc.asked, s, 25*s); got != tc.want {
			t.Errorf("clampInterval(%v) = %v, want %v", tc.asked, got, tc.want)
		}
	}
}

func TestSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if !sleep(context.Background(), time.Minute) {
			t.Fatal("sleep reported a cancel")
		}
		if d := time.Since(start); d != time.Minute {
			t.Fatalf("slept %v, want 1m", d)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if sleep(ctx, time.Hour) {
			t.Fatal("sleep outlived its context")
		}
		if d := time.Since(start); d != time.Minute+time.Second {
			t.Fatalf("sleep returned after %v, want 1m1s", d)
		}
	})
}
