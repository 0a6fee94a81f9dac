package conformance

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/internal/echocheck"
	"github.com/seed-544bbf9f/comet/session"
)

// EchoApp is an echo application whose state outlives its nodes, as an
// application's database does: the newest message number it echoed for
// each session. A session taken over (Options.Failover) delivers again
// the messages its last Serve did not commit; the application skips those
// it has done, by Session.Received, as the package doc tells applications
// to.
type EchoApp struct {
	mu      sync.Mutex
	done    map[string]uint64
	skipped int
	resumed atomic.Int64
	// Ends receives how each Serve ended, the first 16 of them.
	Ends chan error
}

// NewEchoApp returns an EchoApp with no session yet.
func NewEchoApp() *EchoApp {
	return &EchoApp{done: make(map[string]uint64), Ends: make(chan error, 16)}
}

// Resumed returns how many Serves ran resumed.
func (a *EchoApp) Resumed() int64 { return a.resumed.Load() }

// Skipped returns how many redelivered messages the application skipped.
func (a *EchoApp) Skipped() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.skipped
}

// Serve is the application's Serve.
func (a *EchoApp) Serve(s *session.Session) {
	if s.Resumed() {
		a.resumed.Add(1)
	}
	ctx := s.Context()
	for {
		typ, p, err := s.Recv(ctx)
		if err != nil {
			a.ended(err)
			return
		}
		seq := s.Received()
		a.mu.Lock()
		seen := seq <= a.done[s.ID()]
		if seen {
			a.skipped++
		}
		a.mu.Unlock()
		if seen {
			continue
		}
		if err := s.Send(ctx, typ, p); err != nil {
			a.ended(err)
			return
		}
		a.mu.Lock()
		a.done[s.ID()] = seq
		a.mu.Unlock()
	}
}

// ended reports how a Serve ended, unless Ends is full.
func (a *EchoApp) ended(err error) {
	select {
	case a.Ends <- err:
	default:
	}
}

// EchoLead bounds how far EchoThrough's sender runs ahead of the echoes
// (echocheck.Lead).
const EchoLead = echocheck.Lead

// EchoThrough sends n messages on c, at most EchoLead ahead of their
// echoes, and reads the echoes, calling at(k) after the kth distinct
// one. It returns how many echoes came twice. Every message must be
// echoed, in order; one may come again only right after its first echo's
// successors, which a takeover redelivers.
func EchoThrough(t *testing.T, ctx context.Context, c *client.Conn, n int, at func(k int)) (dups int) {
	t.Helper()
	dups, err := Echo(ctx, c, n, at)
	if err != nil {
		t.Fatal(err)
	}
	return dups
}

// Echo is EchoThrough returning what went wrong instead of failing a
// test, for a goroutine of its own.
func Echo(ctx context.Context, c *client.Conn, n int, at func(k int)) (dups int, err error) {
	return echocheck.Run(ctx, c, n, at)
}
