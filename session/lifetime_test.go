package session

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// keyOnly is a POST body with the key frame alone, as a client keeping a
// session alive sends.
func keyOnly(s *Session) []byte {
	return fmt.Appendf(nil, "[\"k\",%q,0,0]\n", s.secret)
}

// TestPostsDoNotExtendFirstAttach: a session that never attached ends at
// its first-attach deadline, however often its client POSTs; once an
// attachment (a probe counts) has been served, POSTs from the detached
// client restart the grace period (PROTOCOL.md section 9).
func TestPostsDoNotExtendFirstAttach(t *testing.T) {
	t.Parallel()
	const attachTimeout, grace = 10 * time.Second, 30 * time.Second
	t.Run("never attached", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			s := newTestSession(t, newTestHandler(t, &Options{AttachTimeout: attachTimeout, Grace: grace}))
			for range 9 {
				time.Sleep(time.Second)
				if _, err := s.post(keyOnly(s), 0); err != nil {
					t.Fatal(err)
				}
			}
			happensAt(t, time.Second, "the session ended", func() bool { return isDone(s.Done()) })
			_, _, err := s.Recv(context.Background())
			if transport.CloseStatus(err) != transport.CloseSessionExpired {
				t.Errorf("Recv = %v, want close 3000", err)
			}
		})
	})
	t.Run("probed, then detached", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			s := newTestSession(t, newTestHandler(t, &Options{AttachTimeout: attachTimeout, Grace: grace}))
			p := attachPoll(t, s, probe(1))
			synctest.Wait()
			p.ds.expect(t, `["o",1,0,"T",25000]`)
			p.wait(t)
			time.Sleep(attachTimeout - time.Second)
			if _, err := s.post(keyOnly(s), 0); err != nil {
				t.Fatal(err)
			}
			// The POST restarted the grace period: the first-attach
			// deadline passes without ending the session.
			happensAt(t, grace, "the session ended", func() bool { return isDone(s.Done()) })
		})
	})
}

// TestFinishedSessionReleasesMemory: an ended session holds neither its
// window nor a timer, whatever closes it afterwards: the application's
// return closes a session that has expired, and that close must not hold
// the session for another grace period.
func TestFinishedSessionReleasesMemory(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := newTestSession(t, newTestHandler(t, &Options{AttachTimeout: time.Second}))
		payload := strings.Repeat("x", 60<<10)
		for range 16 {
			if err := s.Send(context.Background(), transport.Text, []byte(payload)); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if !isDone(s.Done()) {
			t.Fatal("the session did not expire")
		}
		s.closeInternal(transport.CloseNormal, "") // as runApplication does when Serve returns
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.out.Len() != 0 || s.out.Bytes() != 0 {
			t.Errorf("the ended session holds %d messages (%d bytes)", s.out.Len(), s.out.Bytes())
		}
		if s.closeTimer != nil || s.timer != nil {
			t.Error("the ended session holds a timer, which holds the session")
		}
		if s.sentClose != 0 {
			t.Error("a close was queued on an ended session")
		}
	})
}

// TestChurnReleasesHeap pushes 500 sessions 128 KiB each, ends them
// (expiry, then the application's return) and checks that the heap
// returns to about where it started: before the fix, every ended session
// kept its window for another grace period.
func TestChurnReleasesHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 64 MiB")
	}
	const sessions, perSession = 500, 128 << 10
	h := newTestHandler(t, &Options{Grace: time.Hour, AttachTimeout: time.Hour})
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	payload := []byte(strings.Repeat("y", 32<<10))
	all := make([]*Session, sessions)
	for i := range all {
		s := newTestSession(t, h)
		for range perSession / len(payload) {
			if err := s.Send(context.Background(), transport.Text, payload); err != nil {
				t.Fatal(err)
			}
		}
		all[i] = s
	}
	full := heap()
	for _, s := range all {
		s.expire()
		s.closeInternal(transport.CloseNormal, "")
	}
	after := heap()
	runtime.KeepAlive(all) // the application may still hold its sessions
	t.Logf("heap: %d MiB before, %d MiB with %d sessions of %d KiB, %d MiB after they ended",
		before>>20, full>>20, sessions, perSession>>10, after>>20)
	if grown := int64(after) - int64(before); grown > 16<<20 {
		t.Errorf("the heap is %d MiB above where it started after every session ended", grown>>20)
	}
}

// TestGoingAwayEndsAtOnce: a client's close with 1001 (going away: a
// page's unload beacon) ends the session at once, with no answering close
// queued, after the application has received what came before it.
func TestGoingAwayEndsAtOnce(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := newTestSession(t, newTestHandler(t, nil))
		a := attachStream(t, s, deliver(1, 0))
		synctest.Wait()
		a.End(errors.New("page unloaded"))
		synctest.Wait()
		mustUpstream(t, s, `["m",1,"last"]`, `["c",2,1001,"page hidden",0]`)
		synctest.Wait()
		if !isDone(s.Done()) {
			t.Fatal("the session outlived its client's going away")
		}
		s.mu.Lock()
		queued := s.sentClose
		s.mu.Unlock()
		if queued != 0 {
			t.Error("an answering close was queued for a client that has left")
		}
		if _, p, err := s.Recv(context.Background()); err != nil || string(p) != "last" {
			t.Fatalf("Recv = %q, %v; want the message before the close", p, err)
		}
		_, _, err := s.Recv(context.Background())
		if ce := closeError(t, err); ce.Code != transport.CloseGoingAway || !ce.Remote || ce.Reason != "page hidden" {
			t.Errorf("Recv = %v, want the client's 1001", err)
		}
	})
}
