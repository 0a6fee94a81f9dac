package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// TestLostReplyAnswer: a POST answer that held replies and never reached
// the client loses nothing: the client attaches again, and the new
// attachment resends after its ack what the answer held, before what
// followed it on the path that delivers. The answer is lost as a cut
// connection after the server answered, or as a 503 in its place (what
// a node answers when its call to the session's owner timed out after
// the owner had answered). The hold is longer than the test's deadline,
// so that no poll's end comes to the rescue.
func TestLostReplyAnswer(t *testing.T) {
	for _, cut := range []bool{true, false} {
		name := "503"
		if cut {
			name = "cut"
		}
		t.Run(name, func(t *testing.T) {
			runTransports(t, func(t *testing.T, tr string) { testLostReplyAnswer(t, tr, cut) })
		})
	}
}

func testLostReplyAnswer(t *testing.T, name string, cut bool) {
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
				if !cut {
					transport.WriteError(w, http.StatusServiceUnavailable, transport.ErrorBody{
						Code: transport.CodeBrokerUnavailable, Message: "the call to the session's owner timed out"}, 0)
					return
				}
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

// TestReconnectReplies: a fresh session (Options.Reconnect) takes the
// terms of its own negotiate: here the first session's server did not
// agree to replies in POST answers (its request lost the field on the
// way) and the fresh one's does, whose echoes then come in POST answers.
func TestReconnectReplies(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var negotiates, replies atomic.Int32
	strip := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			if n := q.Get("n"); q.Has("n") && negotiates.Add(1) == 1 {
				q.Set("n", strings.Replace(n, `,"replies":true`, "", 1))
				r.URL.RawQuery = q.Encode()
			} else if strings.HasSuffix(r.URL.Path, "/negotiate") && negotiates.Add(1) == 1 {
				t.Error("the first negotiate is a POST: this test strips the field from an attach's n")
			}
			if !strings.HasSuffix(r.URL.Path, "/send") {
				h.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if bytes.Contains(rec.Body.Bytes(), []byte(`["m",`)) {
				replies.Add(1)
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
		})
	}
	srv := newServer(t, session.Options{Serve: echoOrDie, ReplyWait: time.Minute}, strip)
	c := dial(t, ctx, srv.url, transport.LongPoll, &client.Options{Reconnect: true})
	exchange(t, ctx, c, []string{"a", "b"}, 0, 2)
	if n := replies.Load(); n > 0 {
		t.Fatalf("%d POST answers held messages in a session that did not agree to them", n)
	}
	if err := c.Send(ctx, transport.Text, []byte("die")); err != nil {
		t.Fatalf("Send: %v", err)
	}
	var gap *client.GapError
	if _, _, err := c.Recv(ctx); !errors.As(err, &gap) {
		t.Fatalf("Recv = %v, want a *GapError", err)
	}
	// A POST answer holds the echo only when it meets a parked poll (see
	// session.appendReplies), which a busy machine may not give a few
	// round trips in a row: exchange until one does, within a bound.
	fresh := numbered(200)
	for i := 0; i < len(fresh) && replies.Load() == 0; i++ {
		exchange(t, ctx, c, fresh, i, i+1)
	}
	if n := negotiates.Load(); n < 2 {
		t.Fatalf("%d negotiates, want the fresh session's too", n)
	}
	if replies.Load() == 0 {
		t.Fatalf("no POST answer of the fresh session held its echo, in %d round trips", len(fresh))
	}
}
