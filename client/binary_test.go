package client_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/internal/wirecount"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// countedServer is newServer on a listener that counts WebSocket
// messages by type, so that a test sees what crossed the wire.
func countedServer(t *testing.T, opts session.Options) (string, *wirecount.Counts) {
	t.Helper()
	opts.Prefix = "/comet"
	logs := &testLog{t: t}
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := comet.NewHandler(&opts)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wl := wirecount.Wrap(l)
	ts := httptest.NewUnstartedServer(h)
	ts.Listener = wl
	ts.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Logf("server shutdown: %v", err)
		}
		ts.Close()
		logs.stop()
	})
	return ts.URL + "/comet", &wl.Counts
}

// TestBinaryFrames echoes binary messages, all 256 byte values among
// them, on every transport, with raw binary WebSocket messages asked for
// (the default) or not, against a server that agrees or not. Raw
// messages must cross the wire on WebSocket, when both agree, and only
// then; the echoes must be exact everywhere.
func TestBinaryFrames(t *testing.T) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	payloads := [][]byte{all, {}, []byte("\n[\"r\",1]\n"), bytes.Repeat(all, 200)}
	for _, tc := range []struct {
		name             string
		server, clientNo bool // NoBinaryFrames on each side
	}{
		{"agreed", false, false},
		{"server refuses", true, false},
		{"client does not ask", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runTransports(t, func(t *testing.T, name string) {
				ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
				defer cancel()
				url, counts := countedServer(t, session.Options{Serve: echo, NoBinaryFrames: tc.server})
				c := dial(t, ctx, url, name, &client.Options{NoBinaryFrames: tc.clientNo})
				for _, p := range payloads {
					if err := c.Send(ctx, transport.Binary, p); err != nil {
						t.Fatal(err)
					}
					if err := c.Send(ctx, transport.Text, []byte("between")); err != nil {
						t.Fatal(err)
					}
				}
				for _, p := range payloads {
					for _, want := range []struct {
						typ transport.MessageType
						p   []byte
					}{{transport.Binary, p}, {transport.Text, []byte("between")}} {
						typ, got, err := c.Recv(ctx)
						if err != nil || typ != want.typ || !bytes.Equal(got, want.p) {
							t.Fatalf("Recv = %v, %d bytes, %v; want %v, %d bytes", typ, len(got), err, want.typ, len(want.p))
						}
					}
				}
				wantRaw := int64(0)
				if name == transport.WebSocket && !tc.server && !tc.clientNo {
					wantRaw = int64(len(payloads))
				}
				in, out := counts.BinaryIn.Load(), counts.BinaryOut.Load()
				t.Logf("%s: binary WebSocket messages in %d, out %d; text in %d, out %d",
					name, in, out, counts.TextIn.Load(), counts.TextOut.Load())
				if in != wantRaw || out != wantRaw {
					t.Fatalf("binary WebSocket messages in %d, out %d; want %d each way", in, out, wantRaw)
				}
			})
		})
	}
}
