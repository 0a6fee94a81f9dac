package session

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// shutdownReattach is how long, during Shutdown, a session without a
// transport waits for its client to attach again and take its close. A
// client that is there does so within a poll or a resume; a page that has
// gone without saying so must not hold Shutdown for its whole ctx.
const shutdownReattach = time.Second

// shortenLingerLocked makes a closing session that has no transport wait
// at most shutdownReattach for its client, instead of the grace period.
func (s *Session) shortenLingerLocked() {
	if s.closeTimer != nil {
		s.closeTimer.Reset(min(shutdownReattach, s.opts.Grace))
	}
}

// Shutdown stops the handler gracefully. First Ready fails, and for
// Options.DrainDelay nothing else changes, for the load balancer to stop
// sending the node requests. Then negotiates are refused with 503.
// With Options.Failover, every session is handed over to the other nodes:
// its log is released, and its transports cut without a close, so that
// its client resumes through another node, which takes it over at once
// and runs Serve again (Session.Resumed). Otherwise
// every session is closed with 3001 (server shutdown) and a random
// reconnect hint up to Options.ShutdownRetry, so that clients do not all
// return at once, and Shutdown waits for the closes to be delivered: to an
// attached client, until it acknowledges; to one without a transport now,
// for a second, for it to attach again, since a page that has gone never
// will. When ctx ends first, the remaining sessions are cut and ctx's error
// returned.
//
// Call it before, or from, http.Server.Shutdown: hijacked WebSockets and
// streams are not idle connections, and http.Server does not wait for
// them. Shutdown then waits, within ctx, for every Options.Serve to return.
func (h *Handler) Shutdown(ctx context.Context) error {
	h.draining.Store(true)
	if d := h.opts.DrainDelay; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	h.closing.Store(true)
	if h.cluster != nil && h.cluster.store != nil {
		// With failover the sessions go on, on other nodes.
		h.cluster.handOverAll(ctx)
	}
	h.sessions.each(func(s *Session) bool {
		retry := rand.N(h.opts.ShutdownRetry + time.Millisecond)
		s.mu.Lock()
		s.closeLocked(transport.CloseServerShutdown, "server shutting down", uint64(retry.Milliseconds()))
		if s.deliverer == nil {
			s.shortenLingerLocked()
		}
		s.mu.Unlock()
		return true
	})
	var err error
	for h.sessions.len() > 0 && err == nil {
		select {
		case <-h.finished:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	if err != nil {
		h.sessions.each(func(s *Session) bool {
			s.CloseNow()
			return true
		})
	}
	if h.cluster != nil {
		// Requests this node forwards for other nodes' sessions end last,
		// so that a cluster shutting down as a whole delivers its closes
		// through them; their clients attach again, through another node.
		h.cluster.endFronts()
	}
	h.cancelAll()
	h.shares.endAll()
	served := make(chan struct{})
	go func() {
		h.serving.Wait()
		close(served)
	}()
	select {
	case <-served:
	case <-ctx.Done():
		err = ctx.Err()
	}
	return err
}

// ErrDraining is what Ready returns once Shutdown has begun.
var ErrDraining = errors.New("comet: the handler is shutting down")

// Ready returns nil while the handler should get requests: it is not
// shutting down and, in a cluster, its broker is reachable (a node that
// cannot reach it can neither negotiate nor forward). A load balancer's
// health check should answer 503 when it returns an error, as
// examples/cluster's /healthz does.
func (h *Handler) Ready() error {
	if h.draining.Load() {
		return ErrDraining
	}
	if h.cluster != nil {
		return h.cluster.available()
	}
	return nil
}
