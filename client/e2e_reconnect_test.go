package client_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// echoOrDie echoes every message but "die", on which it forgets the
// session without a word to the client: the client's next attach finds
// it gone (404) and reports 3000.
func echoOrDie(s *session.Session) {
	for {
		typ, p, err := s.Recv(s.Context())
		if err != nil {
			return
		}
		if string(p) == "die" {
			s.CloseNow()
			return
		}
		if err := s.Send(s.Context(), typ, p); err != nil {
			return
		}
	}
}

// TestReconnect loses the session on every transport: with
// Options.Reconnect the client opens a fresh session on the same Conn,
// Recv returns the echoes of the old session, then a *GapError naming the
// close and the fresh session, then the fresh session's echoes.
func TestReconnect(t *testing.T) {
	runTransports(t, func(t *testing.T, name string) {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		srv := newServer(t, session.Options{Serve: echoOrDie}, nil)
		c := dial(t, ctx, srv.url, name, &client.Options{Reconnect: true})
		old := c.SessionID()
		exchange(t, ctx, c, []string{"a", "b"}, 0, 2)
		if err := c.Send(ctx, transport.Text, []byte("die")); err != nil {
			t.Fatalf("Send: %v", err)
		}
		_, _, err := c.Recv(ctx)
		var gap *client.GapError
		if !errors.As(err, &gap) {
			t.Fatalf("Recv = %v, want a *GapError", err)
		}
		if transport.CloseStatus(gap.Close) != transport.CloseSessionExpired || gap.SessionID == old ||
			gap.SessionID != c.SessionID() || gap.Dropped > 1 {
			t.Fatalf("gap %+v (close %v), want 3000, the fresh session %s, at most 1 dropped", gap, gap.Close, c.SessionID())
		}
		exchange(t, ctx, c, []string{"c", "d"}, 0, 2)
		if got := c.Transport(); got != name {
			t.Fatalf("Transport() = %q, want %q", got, name)
		}
		t.Logf("%s: %v", name, gap)
	})
}

// TestReconnectOff loses the session without Options.Reconnect: Recv
// reports 3000, the end of the Conn.
func TestReconnectOff(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	srv := newServer(t, session.Options{Serve: echoOrDie}, nil)
	c := dial(t, ctx, srv.url, transport.WebSocket, nil)
	if err := c.Send(ctx, transport.Text, []byte("die")); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if _, _, err := c.Recv(ctx); transport.CloseStatus(err) != transport.CloseSessionExpired {
		t.Fatalf("Recv = %v, want a CloseError 3000", err)
	}
	<-c.Done()
}

// TestReconnectClose closes the Conn while it tries to open a fresh
// session that the server keeps refusing (503): Close returns at once,
// and Recv reports the application's close.
func TestReconnectClose(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var refusing atomic.Bool
	refused := make(chan struct{}, 1)
	srv := newServer(t, session.Options{Serve: echoOrDie}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/comet/negotiate" && refusing.Load() {
				select {
				case refused <- struct{}{}:
				default:
				}
				transport.WriteError(w, http.StatusServiceUnavailable, transport.ErrorBody{Code: "overloaded", Message: "busy"}, 0)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	c := dial(t, ctx, srv.url, transport.LongPoll, &client.Options{Reconnect: true})
	refusing.Store(true)
	if err := c.Send(ctx, transport.Text, []byte("die")); err != nil {
		t.Fatalf("Send: %v", err)
	}
	select {
	case <-refused:
	case <-ctx.Done():
		t.Fatal("no fresh negotiate")
	}
	if err := c.Close(transport.CloseNormal, "bye"); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, _, err := c.Recv(ctx); transport.CloseStatus(err) != transport.CloseNormal {
		t.Fatalf("Recv = %v, want a CloseError 1000", err)
	}
	if err := c.Send(ctx, transport.Text, []byte("x")); transport.CloseStatus(err) != transport.CloseNormal {
		t.Fatalf("Send = %v, want a CloseError 1000", err)
	}
}

// TestReconnectOtherProtocol loses the session, and the server selects
// another subprotocol for the fresh one: the Conn, which reported the
// first at Dial, ends with 1006 after one try instead of changing it.
func TestReconnectOtherProtocol(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var negotiates atomic.Int32
	srv := newServer(t, session.Options{
		Serve:     echoOrDie,
		Protocols: []string{"v1", "v2"},
		Negotiate: func(n *session.Negotiation) (session.Decision, error) {
			if negotiates.Add(1) == 1 {
				return session.Decision{Protocol: "v1"}, nil
			}
			return session.Decision{Protocol: "v2"}, nil
		},
	}, nil)
	c := dial(t, ctx, srv.url, transport.WebSocket, &client.Options{Reconnect: true, Protocols: []string{"v1", "v2"}})
	if c.Protocol() != "v1" {
		t.Fatalf("Protocol() = %q, want v1", c.Protocol())
	}
	if err := c.Send(ctx, transport.Text, []byte("die")); err != nil {
		t.Fatalf("Send: %v", err)
	}
	_, _, err := c.Recv(ctx)
	if code := transport.CloseStatus(err); code != 1006 {
		t.Fatalf("Recv = %v, want a CloseError 1006", err)
	}
	<-c.Done()
	if n := negotiates.Load(); n != 2 {
		t.Fatalf("%d negotiates, want 2: one fresh session tried, not more", n)
	}
	if c.Protocol() != "v1" {
		t.Fatalf("Protocol() = %q after the failed renewal, want v1 still", c.Protocol())
	}
}
