package conformance

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/internal/chatjson"
	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/internal/wirecount"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// echoCase is a message to echo.
type echoCase struct {
	name string
	typ  transport.MessageType
	p    []byte
}

// compressionMessages are what the compression tests echo: below and
// above DeflateMinSize, text and binary, up to 1 MiB.
func compressionMessages() []echoCase {
	var big []byte
	for i := 0; len(big) < 1<<20; i++ {
		big = append(big, chatjson.Doc(i)...)
	}
	big = big[:1<<20]
	noise := make([]byte, 64<<10)
	for i := range noise {
		noise[i] = byte(i*i>>3 ^ i>>7)
	}
	return []echoCase{
		{"short text", transport.Text, []byte("hi")},
		{"JSON document", transport.Text, chatjson.Doc(0)},
		{"1 MiB of JSON", transport.Text, big},
		{"empty binary", transport.Binary, nil},
		{"binary JSON", transport.Binary, chatjson.Doc(1)},
		{"1 MiB binary", transport.Binary, big},
		{"binary noise", transport.Binary, noise},
	}
}

// testCompression echoes text and binary messages, up to 1 MiB, on
// WebSocket with permessage-deflate asked for by both ends, by one, or by
// neither, and reads the wire: messages are compressed both ways when
// both ends ask, and in neither direction otherwise, and the echo is the
// same either way.
func (su suite) testCompression(t *testing.T) {
	tests := []struct {
		name           string
		server, client *transport.Compression
	}{
		{"both", &transport.Compression{}, &transport.Compression{}},
		{"both, level 9", &transport.Compression{Level: 9}, &transport.Compression{Level: 9}},
		{"server only", &transport.Compression{}, nil},
		{"client only", nil, &transport.Compression{}},
		{"neither", nil, nil},
	}
	msgs := compressionMessages()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var wl *wirecount.Listener
			var mu sync.Mutex
			var plain []int    // sizes of the messages sent uncompressed, each way
			var leaks []string // compressed server messages holding a credential
			e := su.newEnvWith(t, transport.WebSocket, &session.Options{MaxMessage: 1 << 20, Compression: tc.server},
				EnvOptions{Listener: func(l net.Listener) net.Listener {
					wl = wirecount.Wrap(l)
					wl.Record = func(m wirecount.Message) {
						mu.Lock()
						defer mu.Unlock()
						if !m.Deflated {
							plain = append(plain, len(m.Payload))
							return
						}
						if m.Out && !m.Binary {
							p, err := m.Inflated()
							frames, _ := transport.DecodeBatch(p)
							for _, f := range frames {
								if err != nil || f.Type.CarriesCredential() {
									leaks = append(leaks, fmt.Sprintf("%.80q (%v)", p, err))
								}
							}
						}
					}
					return wl
				}})
			// Compressing a mebibyte of JSON at level 9 both ways takes
			// seconds under -race: alone this case takes half of
			// testutil.Wait, so a loaded machine gets three times that.
			ctx := testContext(t, 3*testutil.Wait)
			c := e.dial(ctx, &client.Options{Compression: tc.client})
			echoEach(ctx, t, c, msgs)
			in, out := wl.Counts.DeflatedIn.Load(), wl.Counts.DeflatedOut.Load()
			agreed := tc.server != nil && tc.client != nil
			if agreed != (in > 0) || agreed != (out > 0) {
				t.Fatalf("compressed messages: %d in, %d out; want some each way: %v", in, out, agreed)
			}
			// Agreed, only the small messages (acks, heartbeats, the open
			// frame, the short text) go as they are, and the open frame
			// never in a compressed message. With a single transport the
			// client negotiates in its upgrade, so this is also the path
			// that makes the session.
			mu.Lock()
			defer mu.Unlock()
			if len(leaks) > 0 {
				t.Errorf("compressed messages holding a credential: %q", leaks)
			}
			for _, n := range plain {
				if agreed && n >= transport.DeflateMinSize {
					t.Errorf("a message of %d bytes went uncompressed", n)
				}
			}
		})
	}
}

// testCompressionElsewhere checks that the option changes nothing on the
// transports it does not apply to: with both ends asking for compression,
// every transport echoes the same messages.
func (su suite) testCompressionElsewhere(t *testing.T) {
	msgs := compressionMessages()
	su.runTransports(t, func(t *testing.T, name string) {
		e := su.newEnv(t, name, &session.Options{MaxMessage: 1 << 20, Compression: &transport.Compression{}})
		ctx := testContext(t, testutil.Wait)
		c := e.dial(ctx, &client.Options{Compression: &transport.Compression{}})
		echoEach(ctx, t, c, msgs)
	})
}

// echoEach sends each message in turn and checks its echo.
func echoEach(ctx context.Context, t *testing.T, c *client.Conn, msgs []echoCase) {
	t.Helper()
	for _, m := range msgs {
		if err := c.Send(ctx, m.typ, m.p); err != nil {
			t.Fatalf("%s: Send: %v", m.name, err)
		}
		typ, p, err := c.Recv(ctx)
		if err != nil || typ != m.typ || !bytes.Equal(p, m.p) {
			t.Fatalf("%s: echo is %v, %d bytes, %v; want %v, %d bytes", m.name, typ, len(p), err, m.typ, len(m.p))
		}
	}
}
