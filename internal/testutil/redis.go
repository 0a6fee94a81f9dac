package testutil

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Redis is a redis-server started for a test, on a loopback port of its
// own, with no persistence.
type Redis struct {
	// Addr is the server's address, 127.0.0.1:port.
	Addr string
	// PID is the server's process id.
	PID int
}

// StartRedis starts Debian's redis-server on a free loopback port and
// waits until it accepts connections; it is stopped by its PID when the
// test ends, failed or not. extra are more configuration arguments, such
// as "--requirepass", "secret". Without a redis-server on PATH the test
// is skipped, or fails under CI=true, where make test has installed it.
//
// A port found free can be taken before the server binds it, so a server
// that exits before it is ready is started again, on another port, up to
// three times.
func StartRedis(t testing.TB, extra ...string) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but no redis-server: %v", err)
		}
		t.Skip("no redis-server on PATH (make test installs it)")
	}
	var lastErr error
	for range 3 {
		r, err := startRedis(t, bin, extra)
		if err == nil {
			return r
		}
		lastErr = err
	}
	t.Fatalf("redis-server never became ready: %v", lastErr)
	return nil
}

func startRedis(t testing.TB, bin string, extra []string) (*Redis, error) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return startRedisOn(t, bin, port, extra)
}

func startRedisOn(t testing.TB, bin string, port int, extra []string) (*Redis, error) {
	dir := t.TempDir()
	args := append([]string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no",
		"--dir", dir, "--logfile", "",
	}, extra...)
	cmd := exec.Command(bin, args...)
	dieWithParent(cmd)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting redis-server: %v", err)
	}
	done := make(chan struct{})
	var log strings.Builder
	ready := make(chan struct{})
	go func() {
		lines := bufio.NewScanner(out)
		signalled := false
		for lines.Scan() {
			line := lines.Text()
			if log.Len() < 64<<10 {
				log.WriteString(line + "\n")
			}
			if !signalled && strings.Contains(line, "Ready to accept connections") {
				signalled = true
				close(ready)
			}
		}
		cmd.Wait()
		close(done)
	}()
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(Wait):
			cmd.Process.Kill()
			<-done
		}
	}
	select {
	case <-ready:
	case <-done:
		return nil, fmt.Errorf("redis-server on port %d exited before it was ready:\n%s", port, log.String())
	case <-time.After(Wait):
		stop()
		return nil, fmt.Errorf("redis-server on port %d was not ready within %v", port, Wait)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("redis-server (pid %d) output:\n%s", cmd.Process.Pid, log.String())
		}
	})
	return &Redis{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), PID: cmd.Process.Pid}, nil
}

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago: a
// program started on it may find it taken, and should be started again on
// another.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// StartRedisOn starts Debian's redis-server as StartRedis does, but on
// the loopback port given, once: for a test that restarts a server where
// its clients expect it. The port may have been taken meanwhile, which
// fails the test.
func StartRedisOn(t testing.TB, port int, extra ...string) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but no redis-server: %v", err)
		}
		t.Skip("no redis-server on PATH (make test installs it)")
	}
	r, err := startRedisOn(t, bin, port, extra)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
