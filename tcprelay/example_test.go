package tcprelay_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"time"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/tcprelay"
)

// A relay to one back-end, an echo server on loopback, which the allowlist
// names exactly; the cloud metadata address, not listed, is refused.
func Example() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c) // until the relay's FIN
				c.Close()
			}()
		}
	}()
	backend := ln.Addr().String()

	quiet := slog.New(slog.DiscardHandler)
	relay := tcprelay.New(&tcprelay.Options{Allow: []string{backend}, Logger: quiet})
	h := comet.NewHandler(&comet.Options{Serve: relay.Serve, Logger: quiet})
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := client.Dial(ctx, srv.URL+"/comet", &client.Options{Target: backend})
	if err != nil {
		fmt.Println(err)
		return
	}
	_, open, _ := c.Recv(ctx)
	c.Send(ctx, comet.Text, []byte("PING"))
	_, echo, _ := c.Recv(ctx)
	fmt.Printf("%s then %s\n", open, echo)
	c.Close(comet.CloseNormal, "")

	c, err = client.Dial(ctx, srv.URL+"/comet", &client.Options{Target: "169.254.169.254:80"})
	if err != nil {
		fmt.Println(err)
		return
	}
	_, _, err = c.Recv(ctx)
	fmt.Println(comet.CloseStatus(err))
	// Output:
	// {"open":true} then PING
	// 3100 (relay target not allowed)
}
