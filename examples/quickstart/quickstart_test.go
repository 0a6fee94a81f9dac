// Package quickstart_test checks the README's quickstart programs: that
// the README shows them as they are, and that they do what it says when
// built and run as a user would.
package quickstart_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/internal/testutil"
)

// TestREADMEShowsThePrograms: every Go block of the README is one of the
// programs of this folder, byte for byte, or an excerpt of
// examples/cluster's main.go (consecutive lines, indentation aside: that
// program is a module of its own, compiled and tested there), and each
// program of this folder is shown.
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
	cluster, err := os.ReadFile("../cluster/main.go")
	if err != nil {
		t.Fatal(err)
	}
	shown := map[string]bool{}
	for i, b := range blocks {
		name, ok := programs[string(b[1])]
		if !ok && isExcerpt(string(b[1]), string(cluster)) {
			continue
		}
		if !ok {
			t.Errorf("README Go block %d is neither one of examples/quickstart's programs as they are nor an excerpt of examples/cluster/main.go:\n%s", i+1, b[1])
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
	var logs bytes.Buffer // the server's: read only once it has exited
	server := testutil.StartProgram(t, "server", &logs, "-addr", "127.0.0.1:0")
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the client with")
	}
	client := filepath.Join(t.TempDir(), "client")
	if out, err := exec.Command(goTool, "build", "-o", client, "./client").CombinedOutput(); err != nil {
		t.Fatalf("go build ./client: %v\n%s", err, out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, client, "-url", server.URL, "hello", "world").CombinedOutput()
	if err != nil {
		t.Fatalf("client: %v\n%s", err, out)
	}
	if got, want := string(out), "hello (over websocket)\nworld (over websocket)\n"; got != want {
		t.Fatalf("client printed %q, want %q", got, want)
	}

	took, err := server.Stop(ctx, syscall.SIGTERM)
	switch {
	case ctx.Err() != nil:
		t.Fatal("the server ignored SIGTERM")
	case err != nil:
		t.Fatalf("server after SIGTERM: %v\n%s", err, logs.String())
	}
	t.Logf("the server stopped %v after SIGTERM", took.Round(time.Millisecond))
}

// isExcerpt reports whether the lines of block are consecutive lines of
// text, each compared without its leading and trailing space.
func isExcerpt(block, text string) bool {
	trim := func(s string) []string {
		lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
		for i := range lines {
			lines[i] = strings.TrimSpace(lines[i])
		}
		return lines
	}
	want, lines := trim(block), trim(text)
	for i := 0; i+len(want) <= len(lines); i++ {
		if slices.Equal(lines[i:i+len(want)], want) {
			return true
		}
	}
	return false
}
