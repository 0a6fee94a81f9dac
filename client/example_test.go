package client_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"time"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

func ExampleDial() {
	// An echo server on loopback.
	h := comet.NewHandler(&session.Options{
		Prefix: "/comet",
		Serve: func(s *session.Session) {
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

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, srv.URL+"/comet", nil)
	if err != nil {
		fmt.Println("dial:", err)
		return
	}
	if err := c.Send(ctx, transport.Text, []byte("hello")); err != nil {
		fmt.Println("send:", err)
		return
	}
	_, p, err := c.Recv(ctx)
	if err != nil {
		fmt.Println("recv:", err)
		return
	}
	fmt.Printf("%s over %s\n", p, c.Transport())
	if err := c.Close(transport.CloseNormal, "bye"); err != nil {
		fmt.Println("close:", err)
	}
	// Output: hello over websocket
}
