package conformance

import (
	"errors"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// wantClose checks that err is a close with the code, reason and side.
func wantClose(t *testing.T, err error, code transport.CloseCode, reason string, remote bool) *transport.CloseError {
	t.Helper()
	var ce *transport.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a close %d", err, code)
	}
	if ce.Code != code || ce.Reason != reason || ce.Remote != remote {
		t.Fatalf("close = %+v, want code %d reason %q remote %v", ce, code, reason, remote)
	}
	return ce
}

func (su suite) testServerClose(t *testing.T, name string) {
	e := su.newEnv(t, name, &session.Options{Serve: func(s *session.Session) {
		if _, _, err := s.Recv(s.Context()); err == nil {
			s.Send(s.Context(), transport.Text, []byte("last"))
			s.Close(4001, "server says bye")
		}
	}})
	ctx := testContext(t, 20*time.Second)
	c := e.dial(ctx, nil)
	c.Send(ctx, transport.Text, []byte("go"))
	if _, p, err := c.Recv(ctx); err != nil || string(p) != "last" {
		t.Fatalf("Recv = %q, %v; want the message sent before the close", p, err)
	}
	_, _, err := c.Recv(ctx)
	wantClose(t, err, 4001, "server says bye", true)
	wantClose(t, c.Send(ctx, transport.Text, []byte("late")), 4001, "server says bye", true)
}

func (su suite) testClientClose(t *testing.T, name string) {
	got := make(chan error, 1)
	e := su.newEnv(t, name, &session.Options{Serve: func(s *session.Session) {
		for {
			if _, _, err := s.Recv(s.Context()); err != nil {
				got <- err
				return
			}
		}
	}})
	ctx := testContext(t, 20*time.Second)
	c := e.dial(ctx, nil)
	s := e.session(ctx)
	if err := c.Send(ctx, transport.Text, []byte("before")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(4002, "client says bye"); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-got:
		wantClose(t, err, 4002, "client says bye", true)
	case <-ctx.Done():
		t.Fatal("server never saw the close")
	}
	select {
	case <-s.Done():
	case <-ctx.Done():
		t.Fatal("server kept the closed session")
	}
}

// testCloseWhileDetached closes a session while its client is cut off: the
// close waits in sequence and reaches the client when it attaches again.
func (su suite) testCloseWhileDetached(t *testing.T, name string) {
	e := su.newEnv(t, name, nil)
	ctx := testContext(t, 20*time.Second)
	c := e.dial(ctx, nil)
	s := e.session(ctx)
	c.Send(ctx, transport.Text, []byte("ping"))
	if _, _, err := c.Recv(ctx); err != nil {
		t.Fatal(err)
	}

	// The client cannot reach the server until release: whether or not
	// the server has noticed yet, the close can only reach the client on
	// a later attachment.
	e.net.hold()
	e.net.cut()
	s.Send(ctx, transport.Text, []byte("while away"))
	s.Close(4003, "closed while you were away")
	e.net.release()

	if _, p, err := c.Recv(ctx); err != nil || string(p) != "while away" {
		t.Fatalf("Recv = %q, %v", p, err)
	}
	_, _, err := c.Recv(ctx)
	wantClose(t, err, 4003, "closed while you were away", true)
}
