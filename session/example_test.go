package session_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// Shutting down: sessions first, since http.Server.Shutdown does not wait
// for WebSockets and streams, then the server.
func ExampleHandler_Shutdown() {
	h := comet.NewHandler(nil)
	mux := http.NewServeMux()
	mux.Handle("/comet/", h)
	srv := &http.Server{Addr: "127.0.0.1:0", Handler: mux}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fmt.Println(h.Shutdown(ctx), srv.Shutdown(ctx))
	// Output: <nil> <nil>
}

// A message fanned out to every session is encoded once.
func ExampleHandler_Broadcast() {
	h := comet.NewHandler(nil)
	m, err := h.NewPreparedMessage(transport.Text, []byte("market open"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("delivered to", h.Broadcast(m), "sessions")
	// Output: delivered to 0 sessions
}

// Authorize runs at negotiate; what it returns stays with the session.
func ExampleOptions_authorize() {
	opts := &session.Options{
		Authorize: func(r *http.Request) (any, error) {
			user := r.Header.Get("Authorization") // check a real token here
			if user == "" {
				return nil, &session.AuthError{Status: http.StatusUnauthorized, Message: "sign in first"}
			}
			return user, nil
		},
		Serve: func(s *session.Session) {
			fmt.Println("hello,", s.Request().Auth)
		},
		AllowedOrigins: []string{"https://app.example.com"},
	}
	_ = comet.NewHandler(opts)
}
