package conformance

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// testReplies: in a session that agreed to replies in POST answers (the
// Go client asks by default) the application's echo travels in the
// answer to the POST that carried the message, on every transport that
// POSTs; with the client's NoPostReplies, or the server's negative
// ReplyWait, no POST answer holds a message, and the echo is the same.
// ReplyWait is long here so that the reply always makes it, however busy
// the machine: the bound is the session tests' to check.
func (su suite) testReplies(t *testing.T, name string) {
	if name == transport.WebSocket {
		t.Skip("WebSocket carries its upstream itself, without POSTs")
	}
	for _, tc := range []struct {
		name      string
		noReplies bool
		wait      time.Duration
		want      bool
	}{
		{"agreed", false, time.Minute, true},
		{"client does not ask", true, time.Minute, false},
		{"server does not agree", false, -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var answers, replies atomic.Int64 // POST answers, and those that held a message
			tap := func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if !strings.HasSuffix(r.URL.Path, "/send") {
						h.ServeHTTP(w, r)
						return
					}
					bw := &bodyTap{ResponseWriter: w}
					h.ServeHTTP(bw, r)
					answers.Add(1)
					if bytes.Contains(bw.body.Bytes(), []byte(`["m",`)) {
						replies.Add(1)
					}
				})
			}
			e := su.newEnvWith(t, name, &session.Options{ReplyWait: tc.wait}, EnvOptions{Wrap: tap})
			ctx := testContext(t, 20*time.Second)
			c := e.dial(ctx, &client.Options{NoPostReplies: tc.noReplies})
			for i := range 20 {
				msg := fmt.Appendf(nil, "echo %d", i)
				if err := c.Send(ctx, transport.Text, msg); err != nil {
					t.Fatal(err)
				}
				_, p, err := c.Recv(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(p, msg) {
					t.Fatalf("echo %d = %q", i, p)
				}
			}
			n, got := answers.Load(), replies.Load()
			t.Logf("%d of %d POST answers held a message", got, n)
			switch {
			case tc.want && got == 0:
				t.Fatal("no POST answer held a reply")
			case !tc.want && got > 0:
				t.Fatalf("%d POST answers held a message in a session that did not agree to it", got)
			}
		})
	}
}

// bodyTap keeps a copy of what a handler writes.
type bodyTap struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (b *bodyTap) Write(p []byte) (int, error) {
	b.body.Write(p)
	return b.ResponseWriter.Write(p)
}

func (b *bodyTap) Unwrap() http.ResponseWriter { return b.ResponseWriter }
