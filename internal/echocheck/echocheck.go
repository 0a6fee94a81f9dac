// Package echocheck checks a session against an echo application: it
// sends numbered messages, a bounded number ahead of their echoes, and
// checks that every echo comes back in order, counting those that come
// twice. The failover tests and the benchmark's failover metric share it.
package echocheck

import (
	"context"
	"fmt"

	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/transport"
)

// Lead bounds how far Run's sender runs ahead of the echoes, so that
// traffic goes on both ways for the whole exchange, whatever is done at
// one point of it.
const Lead = 32

// Run sends n messages on c, "m0" to "m<n-1>", at most Lead ahead of their
// echoes, and reads the echoes, calling at(k) after the kth distinct one.
// It returns how many echoes came twice, and the first thing that went
// wrong: a Send or Recv error, or an echo out of order (a message lost).
// An echo may come again only after its successors, as a session taken
// over redelivers it.
func Run(ctx context.Context, c *client.Conn, n int, at func(k int)) (dups int, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	credits := make(chan struct{}, Lead)
	for range Lead {
		credits <- struct{}{}
	}
	sendErr := make(chan error, 1)
	go func() {
		for i := range n {
			select {
			case <-credits:
			case <-ctx.Done():
				return
			}
			if err := c.Send(ctx, transport.Text, fmt.Appendf(nil, "m%d", i)); err != nil {
				sendErr <- fmt.Errorf("Send %d: %w", i, err)
				return
			}
		}
	}()
	next := 0
	for next < n {
		_, p, err := c.Recv(ctx)
		if err != nil {
			select {
			case serr := <-sendErr:
				return dups, serr
			default:
			}
			return dups, fmt.Errorf("Recv after %d echoes: %w", next, err)
		}
		var k int
		if _, err := fmt.Sscanf(string(p), "m%d", &k); err != nil {
			return dups, fmt.Errorf("echo %q: %w", p, err)
		}
		switch {
		case k == next:
			next++
			credits <- struct{}{}
			at(next)
		case k < next:
			dups++
		default:
			return dups, fmt.Errorf("echo of m%d before m%d: a message was lost", k, next)
		}
	}
	return dups, nil
}
