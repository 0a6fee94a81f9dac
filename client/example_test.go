package client_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"time"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/client"
)

// A client application needs this package, and package comet for the
// names both ends share.
func ExampleDial() {
	// An echo server on loopback.
	h := comet.NewHandler(&comet.Options{
		Serve: func(s *comet.Session) {
			for {
				typ, p, err := s.Recv(s.Context())
				if err != nil {
					return
				}
				s.Send(s.Context(), typ, p)
			}
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, srv.URL+"/comet", nil)
	if err != nil {
		fmt.Println("dial:", err)
		return
	}
	if err := c.Send(ctx, comet.Text, []byte("hello")); err != nil {
		fmt.Println("send:", err)
		return
	}
	_, p, err := c.Recv(ctx)
	if err != nil {
		fmt.Println("recv:", err)
		return
	}
	fmt.Printf("%s over %s\n", p, c.Transport())
	if err := c.Close(comet.CloseNormal, "bye"); err != nil {
		fmt.Println("close:", err)
	}
	// Output: hello over websocket
}

// A forced transport, and a bound on the closing handshake.
func ExampleOptions() {
	h := comet.NewHandler(&comet.Options{
		Serve: func(s *comet.Session) {
			s.Send(s.Context(), comet.Text, []byte("welcome"))
			<-s.Context().Done()
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, srv.URL+"/comet", &client.Options{
		Transports:   []string{comet.LongPoll}, // never falls back from it
		CloseTimeout: time.Second,              // Close waits at most this for the server
	})
	if err != nil {
		fmt.Println("dial:", err)
		return
	}
	_, p, err := c.Recv(ctx)
	fmt.Printf("%s over %s, %v\n", p, c.Transport(), err)
	fmt.Println("close:", c.Close(comet.CloseNormal, ""))
	// Output:
	// welcome over longpoll, <nil>
	// close: <nil>
}
