package client_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// TestWebSocketHoldsOneConnection checks that a session on WebSocket
// leaves no idle HTTP connection behind its negotiate: the server would
// hold two connections per session until the client's idle timeout.
func TestWebSocketHoldsOneConnection(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var mu sync.Mutex
	open := map[net.Conn]bool{} // HTTP connections not hijacked or closed
	changed := make(chan struct{}, 1)
	h := comet.NewHandler(&session.Options{Prefix: "/comet", Serve: echo})
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ConnState = func(c net.Conn, s http.ConnState) {
		mu.Lock()
		switch s {
		case http.StateNew:
			open[c] = true
		case http.StateHijacked, http.StateClosed:
			delete(open, c)
		}
		mu.Unlock()
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	ts.Start()
	defer ts.Close()
	defer h.Shutdown(ctx)

	c := dial(t, ctx, ts.URL+"/comet", transport.WebSocket, &client.Options{})
	exchange(t, ctx, c, []string{"one"}, 0, 1)
	for {
		mu.Lock()
		n := len(open)
		mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("%d HTTP connection(s) still open beside the WebSocket", n)
		}
	}
}
