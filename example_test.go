package comet_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// An echo server and a client talking to it.
func ExampleNewHandler() {
	h := comet.NewHandler(&session.Options{
		Prefix: "/comet",
		Serve: func(s *session.Session) {
			ctx := s.Context()
			for {
				typ, p, err := s.Recv(ctx)
				if err != nil {
					return
				}
				s.Send(ctx, typ, p)
			}
		},
	})
	mux := http.NewServeMux()
	mux.Handle("/comet/", h)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer h.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, srv.URL+"/comet", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(transport.CloseNormal, "done")
	c.Send(ctx, transport.Text, []byte("hello"))
	_, p, _ := c.Recv(ctx)
	fmt.Println(string(p), "over", c.Transport())
	// Output: hello over websocket
}
