package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// child is a process of this same program running a hidden subcommand
// (serve or load). It speaks JSON lines: the parent writes commands to its
// stdin, it answers on stdout. It exits when its stdin closes, so a parent
// that dies takes its children with it; stop kills it if it does not.
type child struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	dead  chan struct{} // closed when stdout ends
}

// startChild runs this executable with args and waits for its first line,
// which it decodes into hello.
func startChild(name string, hello any, args ...string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, stdin: stdin, lines: make(chan string, 16), dead: make(chan struct{})}
	go func() {
		defer close(c.dead)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 256<<20)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	if err := c.read(30*time.Second, hello); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// send writes one command line.
func (c *child) send(cmd string) error {
	_, err := io.WriteString(c.stdin, cmd+"\n")
	if err != nil {
		return fmt.Errorf("%s: %w", c.name, err)
	}
	return nil
}

// read decodes the next line into v, waiting at most timeout.
func (c *child) read(timeout time.Duration, v any) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case line := <-c.lines:
		if err := json.Unmarshal([]byte(line), v); err != nil {
			return fmt.Errorf("%s: bad line %.200q: %w", c.name, line, err)
		}
		return nil
	case <-c.dead:
		return fmt.Errorf("%s: exited before answering", c.name)
	case <-t.C:
		return fmt.Errorf("%s: no answer within %v", c.name, timeout)
	}
}

// stop closes the child's stdin, which ends it, and kills it if it is
// still running after a few seconds. It is idempotent.
func (c *child) stop() {
	if c == nil || c.cmd.ProcessState != nil {
		return
	}
	c.stdin.Close()
	exited := make(chan struct{})
	go func() {
		c.cmd.Wait()
		close(exited)
	}()
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		c.cmd.Process.Kill()
		<-exited
	}
}

// childMain is the common frame of a subcommand: it arms a lifetime limit,
// so that nothing outlives a stuck parent for long, and returns the
// command lines read from stdin; the process exits when stdin closes.
func childMain(life time.Duration) <-chan string {
	time.AfterFunc(life, func() {
		fmt.Fprintf(os.Stderr, "bench child %d: lifetime of %v reached, exiting\n", os.Getpid(), life)
		os.Exit(3)
	})
	cmds := make(chan string)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			cmds <- strings.TrimSpace(sc.Text())
		}
		close(cmds)
	}()
	return cmds
}

// emit writes v as one JSON line on stdout.
func emit(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own types are emitted
	}
	os.Stdout.Write(append(b, '\n'))
}

// fileLimit is RLIMIT_NOFILE, after raiseFileLimit.
type fileLimit struct {
	Soft, Hard uint64
}

// raiseFileLimit raises the soft open-file limit to the hard one, the most
// an unprivileged process may do (raising the hard limit needs
// CAP_SYS_RESOURCE, which containers often drop), and returns the limits
// in force.
func raiseFileLimit() (fileLimit, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return fileLimit{}, err
	}
	if l.Cur < l.Max {
		want := l
		want.Cur = want.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			return fileLimit{l.Cur, l.Max}, errors.Join(errors.New("raising the open-file limit"), err)
		}
		l = want
	}
	return fileLimit{l.Cur, l.Max}, nil
}
