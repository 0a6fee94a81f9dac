// Package quickstart_test checks the README's quickstart programs: that
// the README shows them as they are, and that they do what it says when
// built and run as a user would.
package quickstart_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestREADMEShowsThePrograms: every Go block of the README is one of the
// programs of this folder, byte for byte, and each program is shown.
func TestREADMEShowsThePrograms(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllSubmatch(readme, -1)
	programs := map[string]string{}
	for _, name := range []string{"server", "client"} {
		b, err := os.ReadFile(filepath.Join(name, "main.go"))
		if err != nil {
			t.Fatal(err)
		}
		programs[string(b)] = name
	}
	shown := map[string]bool{}
	for i, b := range blocks {
		name, ok := programs[string(b[1])]
		if !ok {
			t.Errorf("README Go block %d is not one of examples/quickstart's programs as they are:\n%s", i+1, b[1])
			continue
		}
		shown[name] = true
	}
	for _, name := range programs {
		if !shown[name] {
			t.Errorf("README does not show examples/quickstart/%s", name)
		}
	}
}

// TestQuickstart builds both programs, runs the server, sends it two
// messages with the client, and stops the server with SIGTERM, as `kill`
// would (go run does not pass it on).
func TestQuickstart(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the programs with")
	}
	dir := t.TempDir()
	for _, name := range []string{"server", "client"} {
		build := exec.Command(goTool, "build", "-o", filepath.Join(dir, name), "./"+name)
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build ./%s: %v\n%s", name, err, out)
		}
	}

	server := exec.Command(filepath.Join(dir, "server"), "-addr", "127.0.0.1:0")
	stderr, err := server.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	// exited is closed once the server has exited, with its error in
	// waitErr; the cleanup kills a server the test did not stop.
	exited := make(chan struct{})
	var waitErr error
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			server.Process.Kill()
			<-exited
		}
	})
	// The server logs its address first, then anything else it has to say.
	lines := bufio.NewScanner(stderr)
	if !lines.Scan() {
		t.Fatalf("the server said nothing: %v", lines.Err())
	}
	first := lines.Text()
	var rest bytes.Buffer
	go func() {
		for lines.Scan() {
			rest.WriteString(lines.Text() + "\n")
		}
		waitErr = server.Wait()
		close(exited)
	}()
	_, url, ok := strings.Cut(first, "serving on ")
	if !ok {
		t.Fatalf("the server's first line %q names no address", first)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(dir, "client"), "-url", url, "hello", "world").CombinedOutput()
	if err != nil {
		t.Fatalf("client: %v\n%s", err, out)
	}
	if got, want := string(out), "hello (over websocket)\nworld (over websocket)\n"; got != want {
		t.Fatalf("client printed %q, want %q", got, want)
	}

	start := time.Now()
	if err := server.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		t.Logf("the server stopped %v after SIGTERM", time.Since(start).Round(time.Millisecond))
		if waitErr != nil {
			t.Fatalf("server: %v\n%s", waitErr, rest.String())
		}
	case <-ctx.Done():
		t.Fatal("the server ignored SIGTERM")
	}
}
