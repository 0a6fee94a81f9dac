package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// previousRelease is the commit whose Go client and shim are the first
// release of protocol version 1. ../shared/design/protocol-plan.md asks
// that a client which asks for no addition keep working with every later
// server: this file runs that Go client (TestPreviousShim runs that shim).
// Move it only when a release is made, never to make a failing case pass.
const previousRelease = "4e76c08fe06e3b7f25eac3aac1a13731d61cf4f7"

// previousClientMain is a program built against the previous release's
// client package: it echoes -n messages over the forced transport and
// closes with 1000, printing "ok N" when every echo came back in order.
const previousClientMain = `package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/transport"
)

func main() {
	url := flag.String("url", "", "mount URL")
	name := flag.String("transport", "", "the transport to force")
	n := flag.Int("n", 50, "messages")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, *url, &client.Options{Transports: []string{*name}})
	if err != nil {
		fmt.Println("dial:", err)
		os.Exit(1)
	}
	for i := range *n {
		msg := fmt.Sprintf("old %d", i)
		if err := c.Send(ctx, transport.Text, []byte(msg)); err != nil {
			fmt.Println("send:", err)
			os.Exit(1)
		}
		_, p, err := c.Recv(ctx)
		if err != nil || string(p) != msg {
			fmt.Printf("recv %d: %q, %v\n", i, p, err)
			os.Exit(1)
		}
	}
	if err := c.Close(transport.CloseNormal, "done"); err != nil {
		fmt.Println("close:", err)
		os.Exit(1)
	}
	fmt.Println("ok", *n, "over", c.Transport())
}
`

// TestPreviousGoClient builds the previous release's Go client, from this
// repository's history, into a small echo program, and runs it against
// this server on every transport.
func TestPreviousGoClient(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the previous client with")
	}
	gitTool, err := exec.LookPath("git")
	if err != nil {
		t.Skip("no git to read the previous release from")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	archive, err := exec.Command(gitTool, "-C", root, "archive", "--format=tar", previousRelease,
		"go.mod", "go.sum", "transport", "client", "internal").Output()
	if err != nil {
		t.Skipf("the previous release %.12s is not in this checkout's history (a shallow clone?): %v", previousRelease, err)
	}
	dir := t.TempDir()
	if err := untar(dir, archive); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "cmd", "previous"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cmd", "previous", "main.go"), []byte(previousClientMain), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "previous-client")
	build := exec.Command(goTool, "build", "-o", bin, "./cmd/previous")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the previous client: %v\n%s", err, out)
	}

	runTransports(t, func(t *testing.T, name string) {
		srv := newServer(t, config{})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, "-url", srv.URL()+"/comet", "-transport", name, "-n", "50").CombinedOutput()
		if err != nil {
			t.Fatalf("previous client: %v\n%s", err, out)
		}
		if got, want := strings.TrimSpace(string(out)), "ok 50 over "+name; got != want {
			t.Fatalf("previous client printed %q, want %q", got, want)
		}
		e := srv.sessionEnd()
		if len(e.got) != 50 {
			t.Errorf("the server received %d messages, want 50", len(e.got))
		}
	})
}

// untar writes the regular files of a tar archive under dir.
func untar(dir string, archive []byte) error {
	r := tar.NewReader(bytes.NewReader(archive))
	for {
		h, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		path := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(path, dir+string(filepath.Separator)) {
			return errors.New("archive path outside the folder: " + h.Name)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return err
		}
	}
}
