package client_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// The client reads its WebSocket from the goroutine waiting in Recv.
// These tests pin what must hold for it: Recv answers to its ctx and to
// the session's close, and what comes while the application is away from
// Recv is read all the same.

// TestRecvContextEndsRead: a Recv whose ctx ends while it waits on the
// WebSocket returns the ctx's error, and the next Recv gets the messages
// that came after, in order.
func TestRecvContextEndsRead(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	release := make(chan struct{})
	srv := newServer(t, session.Options{Serve: func(s *session.Session) {
		select {
		case <-release:
		case <-s.Done():
			return
		}
		s.Send(s.Context(), transport.Text, []byte("one"))
		s.Send(s.Context(), transport.Text, []byte("two"))
		<-s.Done()
	}}, nil)
	c := dial(t, ctx, srv.url, transport.WebSocket, nil)
	short, stop := context.WithTimeout(ctx, 20*time.Millisecond)
	_, _, err := c.Recv(short)
	stop()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Recv = %v, want its ctx's deadline", err)
	}
	close(release)
	for _, want := range []string{"one", "two"} {
		_, p, err := c.Recv(ctx)
		if err != nil || string(p) != want {
			t.Fatalf("Recv = %q, %v; want %q", p, err, want)
		}
	}
}

// TestCloseEndsReadingRecv: Close from another goroutine ends a Recv
// waiting on the WebSocket with the close.
func TestCloseEndsReadingRecv(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	srv := newServer(t, session.Options{Serve: func(s *session.Session) {
		for {
			if _, _, err := s.Recv(s.Context()); err != nil {
				return
			}
		}
	}}, nil)
	c := dial(t, ctx, srv.url, transport.WebSocket, nil)
	got := make(chan error, 1)
	go func() {
		_, _, err := c.Recv(ctx)
		got <- err
	}()
	if err := c.Close(4002, "done"); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-got:
		var ce *transport.CloseError
		if !errors.As(err, &ce) || ce.Code != 4002 {
			t.Fatalf("Recv = %v, want the close 4002", err)
		}
	case <-ctx.Done():
		t.Fatal("Recv did not return after Close")
	}
}

// TestServerCloseSeenAwayFromRecv: an application that read a message
// from the WebSocket itself, in Recv, and then waits for the session's
// end away from Recv, sees the server's close: once it is away, the
// client reads for it.
func TestServerCloseSeenAwayFromRecv(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	hello, took := make(chan struct{}), make(chan struct{})
	srv := newServer(t, session.Options{Serve: func(s *session.Session) {
		for _, step := range []chan struct{}{hello, took} {
			select {
			case <-step:
			case <-s.Done():
				return
			}
			if step == hello {
				s.Send(s.Context(), transport.Text, []byte("hello"))
			}
		}
		s.Close(4003, "bye")
		<-s.Done()
	}}, nil)
	c := dial(t, ctx, srv.url, transport.WebSocket, nil)
	got := make(chan string, 1)
	go func() {
		_, p, err := c.Recv(ctx)
		got <- fmt.Sprintf("%s %v", p, err)
	}()
	// Recv waits on the WebSocket itself before the message is sent.
	for !testutil.StacksMention("client.(*Conn).RecvMessage", "readwait.(*Waiter).Wait") {
		if ctx.Err() != nil {
			t.Fatal("Recv never waited on the WebSocket")
		}
		runtime.Gosched()
	}
	close(hello)
	if p := <-got; p != "hello <nil>" {
		t.Fatalf("Recv = %s, want hello", p)
	}
	close(took)
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("the server's close went unread while the application was away from Recv")
	}
	var ce *transport.CloseError
	if _, _, err := c.Recv(ctx); !errors.As(err, &ce) || ce.Code != 4003 {
		t.Fatalf("Recv after the end = %v, want the server's close 4003", err)
	}
}
