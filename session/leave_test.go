package session

import (
	"errors"
	"testing"

	"github.com/seed-544bbf9f/comet/transport"
)

// leavingFake is a poll fake whose adapter may ask Serve for its
// goroutine back (transport.LeavingDownstream), as a long-poll parked
// long enough to be taken over does.
type leavingFake struct {
	*fakeDownstream
	leave chan struct{}
}

func (f leavingFake) Leave() <-chan struct{} { return f.leave }

// serveLeaving serves a delivering poll of a new session on a leavingFake
// until it has started; exited receives Serve's result.
func serveLeaving(t *testing.T) (*Session, leavingFake, *attachment, <-chan error) {
	s := newTestSession(t, newTestHandler(t, nil))
	ds := leavingFake{newFakePoll(t), make(chan struct{})}
	a := s.newAttachment(transport.LongPoll, deliver(1, 0))
	exited := make(chan error, 1)
	go func() { exited <- a.Serve(ds, transport.Poll) }()
	waitFor(t, a.Started(), "the poll's start")
	return s, ds, a, exited
}

// TestServeLeaves parks a poll, asks Serve for its goroutine back, and
// sends: Serve returns transport.ErrLeft with the attachment still
// delivering, and the message goes out on a writer of the session's own,
// as under Start, ending the poll.
func TestServeLeaves(t *testing.T) {
	t.Parallel()
	s, ds, a, exited := serveLeaving(t)
	close(ds.leave)
	if err := waitFor(t, exited, "Serve's return"); !errors.Is(err, transport.ErrLeft) {
		t.Fatalf("Serve = %v, want ErrLeft", err)
	}
	if isDone(a.Done()) {
		t.Fatal("the attachment ended when Serve left")
	}
	mustSend(t, s, "after")
	ds.expect(t, `["o",1,0,"T",25000]`, `["m",1,"after"]`)
	waitFor(t, a.Done(), "the poll's end after its answer")
}

// TestServeLeavesOnlyIfAlive: an attachment that has ended by the time
// its adapter asks for the goroutine back is not left behind: Serve
// returns the end's outcome.
func TestServeLeavesOnlyIfAlive(t *testing.T) {
	t.Parallel()
	s, ds, _, exited := serveLeaving(t)
	mustSend(t, s, "before")
	ds.expect(t, `["o",1,0,"T",25000]`, `["m",1,"before"]`)
	close(ds.leave)
	if err := waitFor(t, exited, "Serve's return"); err != nil {
		t.Fatalf("Serve = %v, want nil: the poll was answered", err)
	}
}
