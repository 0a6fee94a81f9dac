package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/js"
	"github.com/seed-544bbf9f/comet/transport"
)

// TestEcho runs the example as a user would: it serves the page and
// echoes messages over every transport, then shuts down on cancel.
func TestEcho(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()

	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Comet echo") ||
		!strings.Contains(string(body), `<script src="/comet/comet.js">`) {
		t.Fatalf("page: %d %q", resp.StatusCode, body)
	}

	// The script the page loads: the shim, from the Comet handler.
	resp, err = http.Get(base + "/comet/comet.js")
	if err != nil {
		t.Fatal(err)
	}
	shim, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want, _, _ := js.File("comet.js")
	if resp.StatusCode != http.StatusOK || !bytes.Equal(shim, want) ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/javascript") {
		t.Fatalf("/comet/comet.js: %d %s, %d bytes; want 200, the shim's %d bytes",
			resp.StatusCode, resp.Header.Get("Content-Type"), len(shim), len(want))
	}

	for _, name := range []string{transport.WebSocket, transport.LongPoll} {
		t.Run(name, func(t *testing.T) {
			dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer dcancel()
			c, err := client.Dial(dctx, base+"/comet", &client.Options{Transports: []string{name}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			if err := c.Send(dctx, transport.Text, []byte("hello")); err != nil {
				t.Fatal(err)
			}
			typ, p, err := c.Recv(dctx)
			if err != nil || typ != transport.Text || string(p) != "hello" {
				t.Fatalf("Recv = %v %q %v", typ, p, err)
			}
			if got := c.Transport(); got != name {
				t.Fatalf("transport %q, want %q", got, name)
			}
			if err := c.Close(transport.CloseNormal, "done"); err != nil {
				t.Fatal(err)
			}
		})
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	http.DefaultClient.CloseIdleConnections()
}
