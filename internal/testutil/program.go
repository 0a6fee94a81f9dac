package testutil

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Program is a command of the module built and running for a test, as a
// user runs it: the binary, not go run (which does not pass signals on),
// stopped by a signal to its PID.
type Program struct {
	// URL is the address the program said it serves on, without a
	// trailing slash.
	URL string

	cmd  *exec.Cmd
	done chan struct{} // closed once the program has exited
	err  error         // Wait's, once done is closed
}

// StartProgram builds the main package in dir and runs it with args until
// the test ends, when a program still running is killed. Its output,
// stdout and stderr, goes line by line to out (nil: discarded), and its
// first line that says "serving on <url>" gives URL; a program that exits
// or stays silent before saying so fails the test.
func StartProgram(t testing.TB, dir string, out io.Writer, args ...string) *Program {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build", dir, "with")
	}
	bin := filepath.Join(t.TempDir(), "program")
	build := exec.Command(goTool, "build", "-o", bin, ".")
	build.Dir = dir
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", dir, err, b)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &Program{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	dieWithParent(p.cmd)
	p.cmd.Stdout, p.cmd.Stderr = w, w
	err = p.cmd.Start()
	w.Close() // the program holds its own copy
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	url := make(chan string, 1)
	go func() {
		defer r.Close()
		lines := bufio.NewScanner(r)
		for lines.Scan() {
			line := lines.Text()
			if out != nil {
				io.WriteString(out, line+"\n")
			}
			if _, u, ok := strings.Cut(line, "serving on "); ok {
				select {
				case url <- strings.TrimSuffix(strings.TrimSpace(u), "/"):
				default:
				}
			}
		}
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	select {
	case p.URL = <-url:
	case <-p.done:
		t.Fatalf("%s exited before saying where it serves: %v", dir, p.err)
	case <-time.After(Wait):
		t.Fatalf("%s did not say where it serves within %v", dir, Wait)
	}
	return p
}

// Stop sends the program sig and waits for it to exit, within ctx. It
// returns how long the program took, and its exit error.
func (p *Program) Stop(ctx context.Context, sig os.Signal) (time.Duration, error) {
	start := time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil {
		return 0, err
	}
	select {
	case <-p.done:
		return time.Since(start), p.err
	case <-ctx.Done():
		return time.Since(start), ctx.Err()
	}
}

// Signal sends the program sig without waiting: SIGSTOP and SIGCONT, say.
// A test that stops a program sends it SIGCONT in its cleanup too, before
// the program is killed.
func (p *Program) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Done is closed once the program has exited.
func (p *Program) Done() <-chan struct{} { return p.done }

// PID returns the program's process id.
func (p *Program) PID() int { return p.cmd.Process.Pid }
