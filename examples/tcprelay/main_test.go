package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/transport"
)

// TestConsole runs the example beside a real redis-server: the page names
// the Redis address, a session on every transport is relayed to Redis and
// gets its PONG, a session asking for another target is refused with
// 3100, and the server shuts down on cancel.
func TestConsole(t *testing.T) {
	rd := testutil.StartRedis(t)
	target := netip.MustParseAddrPort(rd.Addr)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, target, testutil.Logger(t)) }()
	base := "http://" + ln.Addr().String()

	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"<code>" + rd.Addr + "</code>", `<script src="/comet/comet-tcp.js">`,
		`data-host="` + target.Addr().String() + `" data-port="` + strconv.Itoa(int(target.Port())) + `"`} {
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Fatalf("page: %d, lacks %q:\n%s", resp.StatusCode, want, body)
		}
	}

	for _, name := range transport.Order() {
		t.Run(name, func(t *testing.T) {
			c := dial(t, base, rd.Addr, name)
			if err := c.Send(t.Context(), comet.Binary, []byte("PING\r\n")); err != nil {
				t.Fatal(err)
			}
			var got []byte
			for len(got) < len("+PONG\r\n") {
				_, p, err := c.Recv(t.Context())
				if err != nil {
					t.Fatalf("after %q: %v", got, err)
				}
				got = append(got, p...)
			}
			if string(got) != "+PONG\r\n" {
				t.Fatalf("PING answered %q", got)
			}
			c.Close(comet.CloseNormal, "")
		})
	}

	t.Run("other target", func(t *testing.T) {
		c, err := client.Dial(t.Context(), base+"/comet", &client.Options{Target: "127.0.0.1:22"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(comet.CloseNormal, "")
		_, _, err = c.Recv(t.Context())
		if code := comet.CloseStatus(err); code != comet.CloseRelayNotAllowed {
			t.Fatalf("a session to 127.0.0.1:22 ended with %v (code %d), want %d", err, code, comet.CloseRelayNotAllowed)
		}
	})

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(testutil.Wait):
		t.Fatal("the server did not stop")
	}
}

// dial opens a relayed session to target on the one transport name and
// waits for the relay's open message.
func dial(t *testing.T, base, target, name string) *client.Conn {
	t.Helper()
	c, err := client.Dial(t.Context(), base+"/comet", &client.Options{Target: target, Transports: []string{name}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(comet.CloseNormal, "") })
	typ, p, err := c.Recv(t.Context())
	if err != nil || typ != comet.Text || string(p) != `{"open":true}` {
		t.Fatalf("first message %v %q, %v; want the relay's open", typ, p, err)
	}
	if got := c.Transport(); got != name {
		t.Fatalf("relayed over %s, want %s", got, name)
	}
	return c
}
