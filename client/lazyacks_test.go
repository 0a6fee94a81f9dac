package client_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// TestLazyAcks: a client granted lazy acks (PROTOCOL.md section 6) writes
// nothing for the messages it holds below the threshold, while a client
// without them, on the same server, acks within the server's ackDelay; at
// the threshold it acks at once. Both are on WebSocket, where a client
// that only listens writes nothing but acks, and each write to their
// connections once they are open is reported.
func TestLazyAcks(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	sessions := make(chan *session.Session, 2)
	srv := newServer(t, session.Options{
		AckDelay: time.Millisecond, LazyAckDelay: time.Hour, LazyAckMessages: 3,
		Serve: func(s *session.Session) {
			sessions <- s
			<-s.Context().Done()
		},
	}, nil)
	dial := func(noLazy bool) (*client.Conn, *session.Session, *writeWatch) {
		w := &writeWatch{writes: make(chan struct{}, 16)}
		c, err := client.Dial(ctx, srv.url, &client.Options{Transports: []string{transport.WebSocket}, NoLazyAcks: noLazy,
			NetDialContext: w.dial})
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		t.Cleanup(func() { c.CloseNow() })
		w.armed.Store(true)
		return c, testutil.Receive(t, sessions, "the session"), w
	}
	relay := func(c *client.Conn, s *session.Session, msg string) {
		t.Helper()
		if err := s.Send(ctx, transport.Text, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if _, p, err := c.Recv(ctx); err != nil || string(p) != msg {
			t.Fatalf("Recv = %q, %v; want %q", p, err, msg)
		}
	}

	lazy, lazyS, lazyW := dial(false)
	eager, eagerS, eagerW := dial(true)
	relay(lazy, lazyS, "one")
	relay(lazy, lazyS, "two")
	// The eager client's ack of a message it received after the lazy one
	// got two is due a millisecond after it, as the lazy client's would
	// be without lazy acks.
	relay(eager, eagerS, "clock")
	testutil.Receive(t, eagerW.writes, "the eager client's ack")
	select {
	case <-lazyW.writes:
		t.Fatal("the lazy client wrote for two messages below its threshold of three")
	default:
	}
	relay(lazy, lazyS, "three")
	testutil.Receive(t, lazyW.writes, "the lazy client's ack at its threshold")
}

// writeWatch dials connections that report each write once armed.
type writeWatch struct {
	armed  atomic.Bool
	writes chan struct{}
}

func (w *writeWatch) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &watchedConn{Conn: c, w: w}, nil
}

type watchedConn struct {
	net.Conn
	w *writeWatch
}

func (c *watchedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if c.w.armed.Load() {
		testutil.Offer(c.w.writes, struct{}{})
	}
	return n, err
}

// TestLazyAcksFullWindow: a message that does not fit beside those a
// client holds its lazy acks for is not held up for the client's delay:
// the server asks for the ack with a heartbeat, which the client answers
// at once (PROTOCOL.md section 6). The delay here is an hour.
func TestLazyAcksFullWindow(t *testing.T) {
	t.Parallel()
	sessions := make(chan *session.Session, 1)
	srv := newServer(t, session.Options{
		MaxMessage: 1 << 20, WindowBytes: 1 << 20, LazyAckDelay: time.Hour,
		Serve: func(s *session.Session) {
			sessions <- s
			<-s.Context().Done()
		},
	}, nil)
	for _, name := range []string{transport.WebSocket, transport.SSE, transport.LongPoll} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			c, err := client.Dial(ctx, srv.url, &client.Options{Transports: []string{name}})
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer c.CloseNow()
			s := testutil.Receive(t, sessions, "the session")
			big := make([]byte, 1<<20)
			for i, msg := range [][]byte{[]byte("small"), big} {
				// The small message's ack is held: the big one fits only
				// once the client gives it.
				if err := s.Send(ctx, transport.Binary, msg); err != nil {
					t.Fatalf("Send of message %d: %v", i, err)
				}
				if _, p, err := c.Recv(ctx); err != nil || len(p) != len(msg) {
					t.Fatalf("Recv of message %d = %d bytes, %v; want %d bytes", i, len(p), err, len(msg))
				}
			}
		})
	}
}
