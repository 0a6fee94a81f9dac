package client_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// TestLostReplyAnswer: a POST answer that held replies and never reached
// the client (its connection cut after the server answered) loses
// nothing: the client attaches again, and the new attachment resends
// after its ack what the answer held, before what followed it on the
// path that delivers. The hold is longer than the test's deadline, so
// that no poll's end comes to the rescue.
func TestLostReplyAnswer(t *testing.T) { runTransports(t, testLostReplyAnswer) }

func testLostReplyAnswer(t *testing.T, name string) {
	if name == transport.WebSocket {
		t.Skip("WebSocket has no upstream POST")
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var dropped atomic.Int32
	drop := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasSuffix(r.URL.Path, "/send") {
				h.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if bytes.Contains(rec.Body.Bytes(), []byte(`["m",`)) && dropped.Add(1) == 3 {
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					conn.Close()
				}
				return
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
		})
	}
	srv := newServer(t, session.Options{Serve: echo, ReplyWait: time.Minute, Hold: time.Hour, Heartbeat: time.Hour}, drop)
	c := dial(t, ctx, srv.url, name, nil)
	msgs := numbered(10)
	for i := range msgs {
		exchange(t, ctx, c, msgs, i, i+1)
	}
	if dropped.Load() < 3 {
		t.Fatalf("only %d POST answers held a reply: none was dropped", dropped.Load())
	}
	t.Log(fmt.Sprintf("%d POST answers held replies", dropped.Load()))
}
