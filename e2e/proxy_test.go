package e2e

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/internal/testutil"
)

// The packaged proxies (nginx, haproxy) are started per case, each from a
// config the test writes into a temporary folder, on a free port of
// 127.0.0.1, in front of the in-process Comet server; they run in the
// foreground as children of the test, which stops them by PID.

// proxyStart bounds how long a proxy may take to answer its first request.
const proxyStart = 10 * time.Second

// needProxy returns the path of the proxy program name. Debian installs
// nginx and haproxy in /usr/sbin, which is not on every user's PATH. Without
// it the test fails under CI (CI=true), where a missing proxy is a broken
// setup, and is skipped elsewhere.
func needProxy(t *testing.T, name string) string {
	t.Helper()
	path := lookSbin(name)
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but no %s: install the Debian package %s (scripts/test.sh does)", name, name)
		}
		t.Skipf("no %s: install the Debian package %s (scripts/test.sh does) to run this case", name, name)
	}
	return path
}

// lookSbin returns the path of the program name, on PATH or in /usr/sbin,
// or "".
func lookSbin(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := filepath.Join("/usr/sbin", name); isExecutable(p) {
		return p
	}
	return ""
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// proxyProc is a running packaged proxy.
type proxyProc struct {
	name   string
	url    string      // http://127.0.0.1:port, or https:// with TLS
	tls    *tls.Config // the client side of the proxy's TLS, nil without
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd.Wait returned
	err    error         // cmd.Wait's, once exited is closed
}

// proxyCommand writes the config of a proxy listening on 127.0.0.1:port
// into dir and returns the command line that runs it in the foreground.
type proxyCommand func(dir string, port int) ([]string, error)

// startProxy starts a proxy from the config cmd writes, on a free port, and
// waits until a request through it reaches srv (over TLS with tlsCfg, if
// set: the proxy terminates TLS). A port picked free can be
// taken by someone else before the proxy binds it, so a proxy that exits
// before it is ready is tried again, on another port, a few times. The
// proxy is stopped when the test ends, failed or not.
func startProxy(t *testing.T, srv *server, name string, tlsCfg *tls.Config, command proxyCommand) *proxyProc {
	t.Helper()
	var lastErr error
	for range 3 {
		dir := t.TempDir()
		port, err := testutil.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		argv, err := command(dir, port)
		if err != nil {
			t.Fatal(err)
		}
		p, err := launchProxy(t, name, dir, argv, port, tlsCfg)
		if err != nil {
			t.Fatal(err)
		}
		if lastErr = p.ready(srv); lastErr == nil {
			t.Logf("%s: listening on %s (pid %d)", name, p.url, p.cmd.Process.Pid)
			return p
		}
		p.stop(t)
		t.Logf("%s on port %d: %v; trying another port", name, port, lastErr)
	}
	t.Fatalf("%s never became ready: %v", name, lastErr)
	return nil
}

// launchProxy starts argv with its output in dir/output.log and registers
// its stop, which prints that output and the logs in dir if the test
// failed.
func launchProxy(t *testing.T, name, dir string, argv []string, port int, tlsCfg *tls.Config) (*proxyProc, error) {
	out, err := os.Create(filepath.Join(dir, "output.log"))
	if err != nil {
		return nil, err
	}
	defer out.Close() // the child has its own copy
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
	}
	p := &proxyProc{name: name, url: fmt.Sprintf("%s://127.0.0.1:%d", scheme, port), tls: tlsCfg, exited: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			for _, log := range []string{"output.log", "error.log"} {
				if b, err := os.ReadFile(filepath.Join(dir, log)); err == nil && len(b) > 0 {
					t.Logf("%s %s:\n%s", name, log, b)
				}
			}
		}
	})
	return p, nil
}

// stop ends the proxy by its PID: SIGTERM (a fast shutdown for both
// nginx and haproxy), then SIGKILL if it has not exited within 5 s.
func (p *proxyProc) stop(t *testing.T) {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(5 * time.Second)
	defer timer.Stop()
	select {
	case <-p.exited:
	case <-timer.C:
		t.Logf("%s (pid %d) ignored SIGTERM for 5 s: killing it", p.name, p.cmd.Process.Pid)
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// ready waits until GET /page.js through the proxy returns srv's page
// script (the proxy is up, and the port is ours, not a stranger's), or
// the proxy exits, or proxyStart passes.
func (p *proxyProc) ready(srv *server) error {
	client := &http.Client{
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true, TLSClientConfig: p.tls},
		Timeout:   time.Second,
	}
	deadline := time.NewTimer(proxyStart)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("exited before it was ready: %v", p.err)
		case <-deadline.C:
			return fmt.Errorf("not ready within %v: %v", proxyStart, last)
		case <-tick.C:
		}
		resp, err := client.Get(p.url + "/page.js")
		if err != nil {
			last = err
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode == http.StatusOK && bytes.Equal(body, pageScript) {
			return nil
		}
		last = fmt.Errorf("GET /page.js: %s, %d bytes, %v", resp.Status, len(body), err)
		if resp.StatusCode == http.StatusOK {
			// Someone else's server answers on this port.
			return errors.Join(errors.New("port taken"), last)
		}
	}
}

// nginxMode is how an nginx in front of the origin is configured.
type nginxMode int

const (
	// nginxPlain is a bare proxy_pass: nginx speaks HTTP/1.0 upstream and
	// drops the Upgrade header, so the origin answers a WebSocket attach
	// with 400; it buffers responses unless the origin sends
	// X-Accel-Buffering: no, which Comet's streams do.
	nginxPlain nginxMode = iota
	// nginxBuffering also ignores X-Accel-Buffering: every stream is held
	// back, response headers included, until nginx's buffers fill or the
	// response ends.
	nginxBuffering
	// nginxWebSocket is the documented WebSocket set-up: HTTP/1.1 upstream
	// with Upgrade and Connection passed on.
	nginxWebSocket
)

func (m nginxMode) String() string {
	return [...]string{"plain proxy_pass", "buffering, X-Accel-Buffering ignored", "configured for WebSocket"}[m]
}

// nginxConfig is the nginx.conf of a mode. Every path is in dir (nginx -p
// dir), so nginx touches no system path. One process, no workers: nginx
// then never changes user (a root test run would otherwise hand the temp
// folders to "nobody"), and stopping its PID stops all of it. Host is
// passed as the browser sent it ($http_host keeps the port, which $host
// drops) so that Comet's same-origin check passes and the case tests the
// fallback, not a 403.
func nginxConfig(dir string, port int, origin string, mode nginxMode) string {
	upstream := ""
	switch mode {
	case nginxBuffering:
		upstream = "proxy_ignore_headers X-Accel-Buffering;"
	case nginxWebSocket:
		upstream = `proxy_http_version 1.1;
			proxy_set_header Upgrade $http_upgrade;
			proxy_set_header Connection $connection_upgrade;`
	}
	return nginxHTTP(dir, "# "+mode.String(), fmt.Sprintf(`
	map $http_upgrade $connection_upgrade { default upgrade; '' close; }
	server {
		listen 127.0.0.1:%[1]d;
		location / {
			proxy_pass http://%[2]s;
			proxy_set_header Host $http_host;
			%[3]s
		}
	}`, port, origin, upstream))
}

// nginxHTTP is an nginx.conf whose every path is in dir, with the http
// block's own directives after the common ones; comment heads the file.
func nginxHTTP(dir, comment, http string) string {
	return fmt.Sprintf(`%[2]s
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 512; }
http {
	access_log %[1]s/access.log;
	client_body_temp_path %[1]s/client_body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;%[3]s
}
`, dir, comment, http)
}

// startNginx starts nginx in mode in front of srv.
func startNginx(t *testing.T, srv *server, mode nginxMode) *proxyProc {
	t.Helper()
	bin := needProxy(t, "nginx")
	origin := srv.srv.Listener.Addr().String()
	return startProxy(t, srv, "nginx", nil, func(dir string, port int) ([]string, error) {
		conf := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(conf, []byte(nginxConfig(dir, port, origin, mode)), 0o644); err != nil {
			return nil, err
		}
		return []string{bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", conf, "-g", "daemon off;"}, nil
	})
}

// haproxyConfig is an HTTP-mode haproxy that ends every connection, a
// WebSocket's tunnel included, after idle of silence either way.
func haproxyConfig(port int, origin string, idle time.Duration) string {
	ms := strconv.FormatInt(idle.Milliseconds(), 10) + "ms"
	return fmt.Sprintf(`global
	maxconn 512
defaults
	mode http
	timeout connect 5s
	timeout client %[3]s
	timeout server %[3]s
	timeout tunnel %[3]s
frontend web
	bind 127.0.0.1:%[1]d
	default_backend origin
backend origin
	server origin %[2]s
`, port, origin, ms)
}

// startHAProxy starts haproxy in front of srv with idle timeouts of idle.
func startHAProxy(t *testing.T, srv *server, idle time.Duration) *proxyProc {
	t.Helper()
	bin := needProxy(t, "haproxy")
	origin := srv.srv.Listener.Addr().String()
	return startProxy(t, srv, "haproxy", nil, func(dir string, port int) ([]string, error) {
		conf := filepath.Join(dir, "haproxy.cfg")
		if err := os.WriteFile(conf, []byte(haproxyConfig(port, origin, idle)), 0o644); err != nil {
			return nil, err
		}
		// -db: foreground, no daemon.
		return []string{bin, "-db", "-f", conf}, nil
	})
}

// version returns the first line a program prints with flag, for the
// report: from its standard output, or else its standard error (where
// nginx prints it).
func version(bin, flag string) string {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, flag)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Run()
	out := stdout.Bytes()
	if len(bytes.TrimSpace(out)) == 0 {
		out = stderr.Bytes()
	}
	line, _, _ := bytes.Cut(bytes.TrimSpace(out), []byte("\n"))
	return string(line)
}
