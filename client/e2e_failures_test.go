package client_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// TestFallback refuses the WebSocket upgrade: the client falls back to
// SSE, the next transport, and says why.
func TestFallback(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	srv := newServer(t, session.Options{Serve: echo}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/comet/websocket" {
				transport.WriteError(w, http.StatusServiceUnavailable, transport.ErrorBody{Code: "blocked", Message: "no WebSocket here"}, 0)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	changes := make(chan [3]string, 4)
	c, err := client.Dial(ctx, srv.url, &client.Options{OnTransport: func(from, to, reason string) {
		changes <- [3]string{from, to, reason}
	}})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close(transport.CloseNormal, "")
	if got, want := <-changes, [3]string{transport.WebSocket, transport.SSE, "ws_refused"}; got != want {
		t.Fatalf("OnTransport(%q), want %q", got, want)
	}
	if c.Transport() != transport.SSE {
		t.Fatalf("Transport() = %q, want sse", c.Transport())
	}
	exchange(t, ctx, c, numbered(3), 0, 3)
}

// TestForcedNoFallback forces WebSocket on a server that refuses it: Dial
// fails with 3004 instead of falling back.
func TestForcedNoFallback(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	// The session never attaches: a short grace lets the server forget it.
	srv := newServer(t, session.Options{Serve: echo, Grace: 100 * time.Millisecond}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/comet/websocket" {
				http.Error(w, "no", http.StatusForbidden)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	_, err := client.Dial(ctx, srv.url, &client.Options{Transports: []string{transport.WebSocket}})
	if transport.CloseStatus(err) != transport.CloseUnreachable {
		t.Fatalf("Dial = %v, want a CloseError 3004", err)
	}
}

// TestExpired takes the network down for longer than the grace period: the
// session ends with 3000.
func TestExpired(t *testing.T) {
	runTransports(t, func(t *testing.T, name string) {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		srv := newServer(t, session.Options{Serve: echo, Grace: 300 * time.Millisecond}, nil)
		net := &cutter{}
		c := dial(t, ctx, srv.url, name, &client.Options{NetDialContext: net.dial})
		exchange(t, ctx, c, []string{"before"}, 0, 1)
		net.cut(true)
		_, _, err := c.Recv(ctx)
		if transport.CloseStatus(err) != transport.CloseSessionExpired {
			t.Fatalf("Recv = %v, want a CloseError 3000", err)
		}
	})
}

// TestUnauthorized refuses the negotiate: Dial returns the HTTPError.
func TestUnauthorized(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	srv := newServer(t, session.Options{Serve: echo, Authorize: func(*http.Request) (any, error) {
		return nil, &session.AuthError{Status: http.StatusUnauthorized, Message: "who are you?"}
	}}, nil)
	_, err := client.Dial(ctx, srv.url, nil)
	var he *transport.HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusUnauthorized || he.Body.Code != transport.CodeUnauthorized {
		t.Fatalf("Dial = %v, want HTTPError 401 unauthorized", err)
	}
}

// TestShutdown stops the server: the client gets 3001 with a retry hint.
func TestShutdown(t *testing.T) {
	runTransports(t, func(t *testing.T, name string) {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		srv := newServer(t, session.Options{Serve: echo}, nil)
		c := dial(t, ctx, srv.url, name, nil)
		exchange(t, ctx, c, []string{"x"}, 0, 1)
		if err := srv.h.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		_, _, err := c.Recv(ctx)
		var ce *transport.CloseError
		if !errors.As(err, &ce) || ce.Code != transport.CloseServerShutdown || !ce.Remote {
			t.Fatalf("Recv = %v, want the server's CloseError 3001", err)
		}
	})
}
