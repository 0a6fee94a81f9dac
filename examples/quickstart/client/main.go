// Command client is the README's quickstart client: it sends its
// arguments to the quickstart server, one message each, and prints what
// comes back.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"time"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/client"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8080/comet", "the server's Comet endpoint")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := client.Dial(ctx, *url, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(comet.CloseNormal, "bye")
	for _, msg := range flag.Args() {
		if err := c.Send(ctx, comet.Text, []byte(msg)); err != nil {
			log.Fatal(err)
		}
		_, p, err := c.Recv(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s (over %s)\n", p, c.Transport())
	}
}
