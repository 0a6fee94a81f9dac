package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// TestShutdownDelivers checks that Shutdown closes every session with 3001
// and a retry hint within ShutdownRetry, and returns once every client has
// acknowledged its close.
func TestShutdownDelivers(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const retry = 2 * time.Second
		h := newTestHandler(t, &Options{ShutdownRetry: retry})
		var sessions []*Session
		var attached []*served
		for i := range 3 {
			s := newTestSession(t, h)
			sessions = append(sessions, s)
			attached = append(attached, attachStream(t, s, deliver(1, 0)))
			mustSend(t, s, fmt.Sprint(i))
		}
		synctest.Wait()
		for _, a := range attached {
			a.ds.drain(t)
		}

		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- h.Shutdown(ctx) }()
		synctest.Wait()
		for i, a := range attached {
			got := a.ds.drain(t)
			if len(got) != 1 || len(got[0]) != 1 {
				t.Fatalf("session %d got %q, want one close", i, got)
			}
			var f transport.Frame
			if err := transport.DecodeFrame([]byte(got[0][0]), &f); err != nil {
				t.Fatal(err)
			}
			if f.Type != transport.TypeClose || f.Seq != 2 || f.Code != int(transport.CloseServerShutdown) ||
				f.Retry > uint64(retry.Milliseconds()) {
				t.Errorf("session %d got %s, want a close with 3001 and a retry hint of at most %v", i, got[0][0], retry)
			}
		}
		for i, s := range sessions {
			if isDone(done) {
				t.Fatalf("Shutdown returned with %d sessions unacknowledged", len(sessions)-i)
			}
			mustUpstream(t, s, `["a",2]`)
			synctest.Wait()
		}
		if !isDone(done) {
			t.Fatal("Shutdown did not return when every close was acknowledged")
		}
		if n := h.Sessions(); n != 0 {
			t.Errorf("%d sessions remain", n)
		}
	})
}

// TestShutdownDeadline checks that Shutdown cuts the sessions whose
// clients do not acknowledge by the time its ctx ends, and says so.
func TestShutdownDeadline(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newTestHandler(t, nil)
		detached := newTestSession(t, h)
		silent := newTestSession(t, h)
		a := attachStream(t, silent, deliver(1, 0))

		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- h.Shutdown(ctx) }()
		var err error
		happensAt(t, 5*time.Second, "Shutdown returned", func() bool {
			select {
			case err = <-done:
				return true
			default:
				return false
			}
		})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown = %v, want context.DeadlineExceeded", err)
		}
		if n := h.Sessions(); n != 0 {
			t.Errorf("%d sessions remain", n)
		}
		for _, s := range []*Session{detached, silent} {
			if !isDone(s.Done()) {
				t.Errorf("session not finished")
			}
			if _, _, err := s.Recv(context.Background()); transport.CloseStatus(err) != transport.CloseServerShutdown {
				t.Errorf("Recv = %v, want close 3001", err)
			}
		}
		if !a.returned() {
			t.Error("a cut session's attachment is still served")
		}
	})
}

func TestShutdownWithoutSessions(t *testing.T) {
	t.Parallel()
	h := newTestHandler(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
}

// TestShutdownDoesNotWaitForGoneClients: a session whose transport has
// gone gets a second to attach again and take its close, not Shutdown's
// whole ctx: a page closed before the server stops must not hold it.
func TestShutdownDoesNotWaitForGoneClients(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newTestHandler(t, nil)
		gone := newTestSession(t, h)
		a := attachStream(t, gone, deliver(1, 0))
		synctest.Wait()
		a.End(errors.New("connection reset"))
		synctest.Wait()
		// One that loses its transport during Shutdown gets the same.
		leaving := newTestSession(t, h)
		b := attachStream(t, leaving, deliver(1, 0))
		synctest.Wait()

		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		done := make(chan struct{})
		var err error
		go func() {
			err = h.Shutdown(ctx)
			close(done)
		}()
		time.Sleep(500 * time.Millisecond)
		b.End(errors.New("connection reset"))
		happensAt(t, shutdownReattach, "Shutdown returned", func() bool { return isDone(done) })
		if err != nil {
			t.Fatalf("Shutdown = %v", err)
		}
		for _, s := range []*Session{gone, leaving} {
			_, _, err := s.Recv(context.Background())
			if transport.CloseStatus(err) != transport.CloseServerShutdown {
				t.Errorf("Recv = %v, want close 3001", err)
			}
		}
	})
}

// TestShutdownWaitsForReturningClient: a detached client that attaches
// again within the second gets its 3001.
func TestShutdownWaitsForReturningClient(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newTestHandler(t, nil)
		s := newTestSession(t, h)
		a := attachPoll(t, s, deliver(1, 0))
		synctest.Wait()
		a.End(nil) // between two polls
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- h.Shutdown(ctx) }()
		time.Sleep(shutdownReattach / 2)
		p := attachPoll(t, s, deliver(2, 0))
		synctest.Wait()
		got := p.ds.drain(t)
		if len(got) != 1 || len(got[0]) != 2 || !strings.HasPrefix(got[0][1], `["c",1,3001,`) {
			t.Fatalf("the returning poll got %q, want its open frame and the close 3001", got)
		}
		mustUpstream(t, s, `["a",1]`)
		synctest.Wait()
		if !isDone(done) {
			t.Fatal("Shutdown did not return once the close was acknowledged")
		}
	})
}
