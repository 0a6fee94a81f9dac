package session

import (
	"sync/atomic"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// counters are the handler's metrics, read by Stats. Every one is an
// atomic in a fixed array or field, so that the paths that count (a
// message written or received, a session opened or closed) take no lock
// and allocate nothing; the maps of Stats are built only at snapshot time.
// Keys that come from clients (a close code, a transport change's why) are
// mapped onto a fixed set, so a client cannot grow them.
type counters struct {
	open    [numTransports]atomic.Int64 // sessions by transport index
	opened  atomic.Uint64
	closed  closeCounts
	changes [numReasons]atomic.Uint64
	traffic traffic

	sendWaits    atomic.Uint64
	sendsSkipped atomic.Uint64
	slowCloses   atomic.Uint64
	// broadcastsDropped counts broadcasts that did not reach the other
	// nodes of a cluster: the queue to the broker was full, or it failed.
	broadcastsDropped atomic.Uint64
	rateLimited       atomic.Uint64
	refusals          [numRefusals]atomic.Uint64
	// carriers counts the carriers open (share.go): polls [0], streams [1].
	carriers    [2]atomic.Int64
	subRequests atomic.Uint64
	attach      histogram
}

// traffic counts the messages and bytes sessions move, by transport, in a
// stripe per session (Session.stripe, as stripedCounter): every message
// adds to it, and one set of counters for every session would move its
// cache lines between CPUs at each add, which measured as a third of the
// writer's own time in a 64-session echo.
type traffic struct {
	s [stripes]struct {
		t [numTransports]trafficCounts
		_ [64]byte // keeps the next stripe's first counters off this one's last line
	}
}

// trafficCounts are one transport's in one stripe.
type trafficCounts struct {
	msgsIn, msgsOut, bytesIn, bytesOut atomic.Uint64
}

// at returns the counts of transport t in stripe (modulo stripes).
func (c *traffic) at(stripe uint32, t uint8) *trafficCounts { return &c.s[stripe%stripes].t[t] }

// sum returns transport t's counts, summed over the stripes.
func (c *traffic) sum(t uint8) (msgsIn, msgsOut, bytesIn, bytesOut uint64) {
	for i := range c.s {
		x := &c.s[i].t[t]
		msgsIn += x.msgsIn.Load()
		msgsOut += x.msgsOut.Load()
		bytesIn += x.bytesIn.Load()
		bytesOut += x.bytesOut.Load()
	}
	return msgsIn, msgsOut, bytesIn, bytesOut
}

// Transport indexes: the transports of this module, "other" for an
// adapter of another name, and none for a session not yet attached.
const (
	tNone uint8 = iota
	tWebSocket
	tSSE
	tStreaming
	tLongPoll
	tOther
	numTransports
)

var transportNames = [numTransports]string{"", transport.WebSocket, transport.SSE, transport.Streaming, transport.LongPoll, "other"}

func transportIndex(name string) uint8 {
	switch name {
	case "":
		return tNone
	case transport.WebSocket:
		return tWebSocket
	case transport.SSE:
		return tSSE
	case transport.Streaming:
		return tStreaming
	case transport.LongPoll:
		return tLongPoll
	}
	return tOther
}

// reasons are the whys the clients of this module send (PROTOCOL.md
// section 5); any other is counted as "other".
var reasons = [...]string{"", "ws_refused", "ws_hung", "ws_silent", "stream_buffered", "idle_cut", "early_death", "upgraded", "other"}

const numReasons = len(reasons)

func reasonIndex(why string) int {
	for i, r := range reasons[:numReasons-1] {
		if r == why {
			return i
		}
	}
	return numReasons - 1
}

// refusals are the error codes with which negotiate refuses a session;
// any other is counted as "other".
var refusals = [...]string{
	transport.CodeRateLimited, transport.CodeOverloaded, transport.CodeShuttingDown,
	transport.CodeUnauthorized, transport.CodeForbidden, transport.CodeOriginRefused,
	transport.CodeUnsupportedVersion, transport.CodeBadRequest, transport.CodeNoProtocol, "other",
}

const numRefusals = len(refusals)

func (c *counters) refused(code string) {
	i := numRefusals - 1
	for j, r := range refusals[:numRefusals-1] {
		if r == code {
			i = j
			break
		}
	}
	c.refusals[i].Add(1)
	if code == transport.CodeRateLimited {
		c.rateLimited.Add(1)
	}
}

// closeCounts counts closes by code: the protocol's (1000–1015), this
// library's (3000–3099) and the application's (4000–4999), each in an
// array, so that any code a client may send has its own counter without
// a map. Anything else (none) is counted under code 0.
type closeCounts struct {
	protocol [16]atomic.Uint64
	comet    [100]atomic.Uint64
	app      [1000]atomic.Uint64
	other    atomic.Uint64
}

func (c *closeCounts) add(code transport.CloseCode) {
	switch {
	case code >= 1000 && code < 1016:
		c.protocol[code-1000].Add(1)
	case code >= 3000 && code < 3100:
		c.comet[code-3000].Add(1)
	case code >= 4000 && code < 5000:
		c.app[code-4000].Add(1)
	default:
		c.other.Add(1)
	}
}

func (c *closeCounts) snapshot() map[transport.CloseCode]uint64 {
	m := make(map[transport.CloseCode]uint64)
	for base, arr := range map[transport.CloseCode][]atomic.Uint64{1000: c.protocol[:], 3000: c.comet[:], 4000: c.app[:]} {
		for i := range arr {
			if n := arr[i].Load(); n > 0 {
				m[base+transport.CloseCode(i)] = n
			}
		}
	}
	if n := c.other.Load(); n > 0 {
		m[0] = n
	}
	return m
}

// attachBuckets are the upper bounds of the attach latency histogram: a
// negotiate round trip and an attach on a good network take a few
// milliseconds, a WebSocket refused by a proxy costs the client a timeout
// before it falls back, and a first-attach timeout ends the session.
var attachBuckets = [...]time.Duration{
	5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// histogram counts observations per bucket (not cumulative; the last is
// +Inf) and their sum.
type histogram struct {
	counts [len(attachBuckets) + 1]atomic.Uint64
	sum    atomic.Int64 // nanoseconds
}

func (h *histogram) observe(d time.Duration) {
	i := 0
	for i < len(attachBuckets) && d > attachBuckets[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

func (h *histogram) snapshot() Histogram {
	var s Histogram
	s.Buckets = make([]Bucket, len(attachBuckets))
	for i := range h.counts {
		s.Count += h.counts[i].Load()
		if i < len(attachBuckets) {
			s.Buckets[i] = Bucket{UpperBound: attachBuckets[i], Count: s.Count}
		}
	}
	s.Sum = time.Duration(h.sum.Load())
	return s
}
