package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet"
)

// TestBinary builds the program, runs it on 127.0.0.1:0, chats over it,
// and stops it with SIGTERM, as `kill` would (go run does not pass it on),
// while a session is still open: the shutdown ends it with 3001 and
// stays within its 5 s bound.
func TestBinary(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the program with")
	}
	bin := filepath.Join(t.TempDir(), "chat")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	server := exec.Command(bin, "-addr", "127.0.0.1:0", "-debug")
	stdout, err := server.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	server.Stderr = &stderr
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			server.Process.Kill()
			<-exited
		}
	})
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		server.Process.Kill()
		t.Fatalf("the server said nothing: %v", lines.Err())
	}
	first := lines.Text()
	go func() {
		for lines.Scan() {
		}
		exited <- server.Wait()
	}()
	_, url, ok := strings.Cut(first, "serving on ")
	if !ok {
		t.Fatalf("the server's first line %q names no address", first)
	}

	p := dial(t, strings.TrimSuffix(url, "/"), comet.LongPoll)
	p.join("lobby", "Ada")
	p.say("hello from a test")
	p.expectSaid("Ada", "hello from a test")

	// -debug serves the handler's counters.
	resp, err := http.Get(strings.TrimSuffix(url, "/") + "/debug/stats")
	if err != nil {
		t.Fatal(err)
	}
	var stats comet.Stats
	err = json.NewDecoder(resp.Body).Decode(&stats)
	resp.Body.Close()
	if err != nil || stats.SessionsOpened != 1 || stats.MessagesIn[comet.LongPoll] < 2 {
		t.Fatalf("/debug/stats: %+v, %v; want one session and its join and message in", stats, err)
	}

	start := time.Now()
	if err := server.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		t.Logf("the server stopped %v after SIGTERM", time.Since(start).Round(time.Millisecond))
		if err != nil {
			t.Fatalf("server: %v\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not stop within 10 s of SIGTERM")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var ce *comet.CloseError
	if _, _, err := p.c.Recv(ctx); !errors.As(err, &ce) || ce.Code != comet.CloseServerShutdown {
		t.Fatalf("after the shutdown, Recv = %v; want a close with 3001", err)
	}
}
