package tcprelay

import (
	"context"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"testing"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/internal/testutil"
)

var quiet = slog.New(slog.DiscardHandler)

// BenchmarkRelayThroughput measures bytes relayed through an echo
// back-end over WebSocket on loopback, with the Go client: each operation
// is 32 KiB up and the same 32 KiB back, so MB/s counts one direction.
func BenchmarkRelayThroughput(b *testing.B) {
	const chunk = 32 << 10
	addr := backend(b, echo)
	hs := startRelay(b, Options{Allow: []string{addr}, Logger: quiet}, &comet.Options{Logger: quiet})
	c := hs.dial(b, addr, comet.WebSocket, nil)
	wantOpen(b, c)
	msg := make([]byte, chunk)
	b.SetBytes(chunk)
	b.ResetTimer()
	sent := make(chan error, 1)
	go func() {
		for range b.N {
			if err := c.Send(context.Background(), comet.Binary, msg); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	for got := 0; got < b.N*chunk; {
		_, p, err := recv(b, c)
		if err != nil {
			b.Fatal(err)
		}
		got += len(p)
	}
	if err := <-sent; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkIdleRelayMemory measures the live heap one idle relayed
// connection costs, all in this process: the client's Conn, the server's
// session and relay, and the back-end's side of the socket. It opens 200
// relays over WebSocket per operation and reports the heap grown per
// relay while they are all open.
func BenchmarkIdleRelayMemory(b *testing.B) {
	const n = 200
	addr := backend(b, func(c *net.TCPConn) { c.Read(make([]byte, 1)) })
	hs := startRelay(b, Options{Allow: []string{addr}, MaxConnsPerClient: n, Logger: quiet},
		&comet.Options{Logger: quiet})
	var ms runtime.MemStats
	var perConn float64
	for b.Loop() {
		before := liveHeap(&ms)
		conns := make([]*client.Conn, n)
		for i := range conns {
			ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
			c, err := client.Dial(ctx, hs.url, &client.Options{Target: addr, Transports: []string{comet.WebSocket}})
			cancel()
			if err != nil {
				b.Fatal(err)
			}
			wantOpen(b, c)
			conns[i] = c
		}
		after := liveHeap(&ms)
		perConn += (float64(after) - float64(before)) / n
		var wg sync.WaitGroup
		for _, c := range conns {
			wg.Go(func() { c.Close(comet.CloseNormal, "") })
		}
		wg.Wait()
	}
	b.ReportMetric(perConn/float64(b.N), "bytes/conn")
}
