package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/internal/testutil"
)

// TestBinary builds the program, runs it on 127.0.0.1:0, chats over it,
// and stops it with SIGTERM, as `kill` would (go run does not pass it on),
// while a session is still open: the shutdown ends it with 3001 and
// stays within its 5 s bound.
func TestBinary(t *testing.T) {
	var logs bytes.Buffer // read only once the program has exited
	server := testutil.StartProgram(t, ".", &logs, "-addr", "127.0.0.1:0", "-debug")
	url := server.URL

	p := dial(t, url, comet.LongPoll)
	p.join("lobby", "Ada")
	p.say("hello from a test")
	p.expectSaid("Ada", "hello from a test")

	// -debug serves the handler's counters.
	resp, err := http.Get(url + "/debug/stats")
	if err != nil {
		t.Fatal(err)
	}
	var stats comet.Stats
	err = json.NewDecoder(resp.Body).Decode(&stats)
	resp.Body.Close()
	if err != nil || stats.SessionsOpened != 1 || stats.MessagesIn[comet.LongPoll] < 2 {
		t.Fatalf("/debug/stats: %+v, %v; want one session and its join and message in", stats, err)
	}

	stopCtx, stopCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer stopCancel()
	took, err := server.Stop(stopCtx, syscall.SIGTERM)
	switch {
	case stopCtx.Err() != nil:
		t.Fatal("the server did not stop within 10 s of SIGTERM")
	case err != nil:
		t.Fatalf("server: %v\n%s", err, logs.String())
	}
	t.Logf("the server stopped %v after SIGTERM", took.Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var ce *comet.CloseError
	if _, _, err := p.c.Recv(ctx); !errors.As(err, &ce) || ce.Code != comet.CloseServerShutdown {
		t.Fatalf("after the shutdown, Recv = %v; want a close with 3001", err)
	}
}
