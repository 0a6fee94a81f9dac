package client

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// testNegotiate returns a negotiate response with the protocol's default
// limits.
func testNegotiate() *transport.NegotiateResponse {
	return &transport.NegotiateResponse{
		Version: transport.Version, SessionID: "6f1c0a7e-8a0b-4a51-9c1b-3c6f1f1c2b7d", Secret: "secret",
		Tickets: []string{"t1", "t2"}, Transports: []string{transport.WebSocket, transport.LongPoll},
		Heartbeat: 25000, MinHeartbeat: 1000, Hold: 25000, Grace: 30000, AckDelay: 200,
		MinTimeout: 300, MaxTimeout: 10000, MaxMessage: 64, MaxBatch: 6*64 + 64,
		WindowMessages: 8, WindowBytes: 1024,
	}
}

// newTestConn returns a Conn for base with no supervisor running: the
// tests drive its state directly. opts may be nil.
func newTestConn(t *testing.T, base string, opts *Options) *Conn {
	t.Helper()
	o, err := opts.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	c := newConn(o, &http.Client{}, nil, u, testNegotiate(), 10*time.Millisecond, o.Transports)
	t.Cleanup(func() {
		c.mu.Lock()
		if c.closeTimer != nil {
			c.closeTimer.Stop()
		}
		c.mu.Unlock()
		c.cancel()
	})
	return c
}
