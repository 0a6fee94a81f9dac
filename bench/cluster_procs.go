package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/transport"
)

// The processes of metric 12: redis-server, the balancer, the nodes.

// redisProc is a redis-server the harness started, with a client to read
// its INFO.
type redisProc struct {
	cmd  *exec.Cmd
	addr string
	rdb  *goredis.Client
}

// errNoTool is returned when a program the metric needs is not installed.
var errNoTool = errors.New("not installed")

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startTool starts the program at path with args, killed with the harness
// if it dies first (Pdeathsig), its output kept in out.
func startTool(path string, out io.Writer, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return cmd, nil
}

// stopTool kills a program startTool started, by its PID, and reaps it.
func stopTool(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil || cmd.ProcessState != nil {
		return
	}
	cmd.Process.Kill()
	cmd.Wait()
}

// startRedis starts a redis-server on a free loopback port, with no
// persistence, and waits until it answers.
func startRedis() (*redisProc, error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server: %w", errNoTool)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	cmd, err := startTool(path, &syncWriter{w: &out}, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction")
	if err != nil {
		return nil, err
	}
	p := &redisProc{cmd: cmd, addr: fmt.Sprintf("127.0.0.1:%d", port)}
	p.rdb = goredis.NewClient(&goredis.Options{Addr: p.addr, MaxRetries: -1})
	for deadline := time.Now().Add(10 * time.Second); ; {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := p.rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return p, nil
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("redis-server did not answer within 10 s: %v; its output: %s", err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *redisProc) url() string { return "redis://" + p.addr + "/0" }

func (p *redisProc) stop() {
	if p == nil {
		return
	}
	p.rdb.Close()
	stopTool(p.cmd)
}

// redisStats is what INFO says of Redis's memory and commands.
type redisStats struct {
	usedMemory int64
	calls      map[string]int64 // by command, without the harness's own (INFO, CONFIG, MEMORY)
}

func (s redisStats) total() int64 {
	var n int64
	for _, c := range s.calls {
		n += c
	}
	return n
}

// minus returns the calls of s not in o, by command.
func (s redisStats) minus(o redisStats) map[string]int64 {
	d := map[string]int64{}
	for k, v := range s.calls {
		if v-o.calls[k] != 0 {
			d[k] = v - o.calls[k]
		}
	}
	return d
}

// harnessCommands are the commands the harness itself sends, left out of
// the counts.
var harnessCommands = map[string]bool{"info": true, "config|resetstat": true, "config": true, "memory|usage": true, "memory": true}

// stats reads INFO memory and INFO commandstats.
func (p *redisProc) stats() (redisStats, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st := redisStats{calls: map[string]int64{}}
	mem, err := p.rdb.Info(ctx, "memory").Result()
	if err != nil {
		return st, err
	}
	cs, err := p.rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return st, err
	}
	for line := range strings.Lines(mem) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			st.usedMemory, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	for line := range strings.Lines(cs) {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, isCmd := strings.CutPrefix(name, "cmdstat_")
		if !ok || !isCmd || harnessCommands[name] {
			continue
		}
		for f := range strings.SplitSeq(rest, ",") {
			if v, ok := strings.CutPrefix(f, "calls="); ok {
				st.calls[name], _ = strconv.ParseInt(v, 10, 64)
			}
		}
	}
	return st, nil
}

// syncWriter serializes writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// balancer is the round-robin load balancer in front of the nodes:
// haproxy, or when it is not installed an httputil reverse proxy in this
// process.
type balancer struct {
	base string // http://127.0.0.1:port
	what string // for the report
	cmd  *exec.Cmd
	srv  *http.Server
}

func (b *balancer) stop() {
	if b == nil {
		return
	}
	stopTool(b.cmd)
	if b.srv != nil {
		b.srv.Close()
	}
}

// startBalancer starts haproxy with examples/cluster/haproxy.cfg, its
// ports replaced by a free one and the nodes', or a Go round-robin proxy
// when haproxy is missing; it returns once every node has answered
// through it.
func startBalancer(nodes []*serverProc) (*balancer, error) {
	b, err := startHaproxy(nodes)
	if errors.Is(err, errNoTool) {
		b, err = startGoBalancer(nodes)
	}
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	hc := &http.Client{Timeout: 2 * time.Second}
	for deadline := time.Now().Add(15 * time.Second); len(seen) < len(nodes); {
		if time.Now().After(deadline) {
			b.stop()
			return nil, fmt.Errorf("%s: only nodes %v answered within 15 s", b.what, seen)
		}
		resp, err := hc.Get(b.base + "/healthz")
		if err == nil {
			var v struct{ Node string }
			json.NewDecoder(resp.Body).Decode(&v)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && v.Node != "" {
				seen[v.Node] = true
				continue
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return b, nil
}

func startHaproxy(nodes []*serverProc) (*balancer, error) {
	path, err := exec.LookPath("haproxy")
	if err != nil {
		return nil, fmt.Errorf("haproxy: %w", errNoTool)
	}
	cfg, err := os.ReadFile("examples/cluster/haproxy.cfg")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := strings.Replace(string(cfg), "bind 127.0.0.1:8080", fmt.Sprintf("bind 127.0.0.1:%d", port), 1)
	for i, n := range nodes {
		old := fmt.Sprintf("server n%d 127.0.0.1:%d", i+1, 8081+i)
		if !strings.Contains(s, old) {
			return nil, fmt.Errorf("examples/cluster/haproxy.cfg has no %q", old)
		}
		s = strings.Replace(s, old, fmt.Sprintf("server n%d %s", i+1, n.hello.Addr), 1)
	}
	// The configuration's maxconn is for an example; the harness's
	// sessions need more (haproxy takes the open-file limit it needs).
	s = strings.Replace(s, "maxconn 4096", "maxconn 8192", 1)
	f, err := os.CreateTemp("", "bench-haproxy-*.cfg")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return nil, err
	}
	f.Close()
	var out bytes.Buffer
	check, err := exec.Command(path, "-c", "-f", f.Name()).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("haproxy -c: %v: %s", err, check)
	}
	cmd, err := startTool(path, &syncWriter{w: &out}, "-db", "-f", f.Name())
	if err != nil {
		return nil, err
	}
	b := &balancer{base: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd,
		what: "haproxy " + haproxyVersion(path) + " (examples/cluster/haproxy.cfg, ports replaced)"}
	// haproxy reads its configuration at once; wait for its port.
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(b.base, "http://"), time.Second)
		if err == nil {
			c.Close()
			return b, nil
		}
		if time.Now().After(deadline) {
			b.stop()
			return nil, fmt.Errorf("haproxy did not listen within 10 s; its output: %s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func haproxyVersion(path string) string {
	out, err := exec.Command(path, "-v").Output()
	if err != nil {
		return ""
	}
	f := strings.Fields(string(out))
	if len(f) >= 3 {
		return f[2]
	}
	return ""
}

// startGoBalancer is internal/conformance's RoundRobin: an httputil proxy
// sending each request to the next node, streams flushed at once.
func startGoBalancer(nodes []*serverProc) (*balancer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	targets := make([]*url.URL, len(nodes))
	for i, n := range nodes {
		targets[i], _ = url.Parse(n.base)
	}
	var next atomic.Uint64
	p := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(targets[(next.Add(1)-1)%uint64(len(targets))])
			r.SetXForwarded()
		},
		Transport:     &http.Transport{MaxIdleConnsPerHost: 256},
		FlushInterval: -1,
	}
	b := &balancer{base: "http://" + ln.Addr().String(), what: "a Go httputil.ReverseProxy round robin " +
		"(internal/conformance.RoundRobin's; haproxy is not installed)", srv: &http.Server{Handler: p}}
	go b.srv.Serve(ln)
	return b, nil
}

// clusterProc is the cluster of one configuration.
type clusterProc struct {
	redis *redisProc
	nodes []*serverProc
	lb    *balancer
}

func (c *clusterProc) stop() {
	c.lb.stop()
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		wg.Go(n.stop)
	}
	wg.Wait()
	c.redis.stop()
}

// startCluster starts redis-server and clusterNodes node processes
// running app, and with lb the balancer; it returns once every node sees
// every other alive.
func startCluster(app string, lb bool) (*clusterProc, error) {
	return startClusterWith(app, lb, false)
}

// startClusterWith is startCluster with Options.Failover set as failover.
func startClusterWith(app string, lb, failover bool) (_ *clusterProc, err error) {
	c := &clusterProc{}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()
	if c.redis, err = startRedis(); err != nil {
		return nil, err
	}
	var ids []string
	for i := range clusterNodes {
		id := fmt.Sprintf("n%d", i+1)
		n, err := startServerWith(serverConfig{app: app, redis: c.redis.url(), node: id, failover: failover})
		if err != nil {
			return nil, err
		}
		c.nodes, ids = append(c.nodes, n), append(ids, id)
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	for _, n := range c.nodes {
		for deadline := time.Now().Add(15 * time.Second); ; {
			resp, err := hc.Get(n.base + "/_bench/alive?nodes=" + strings.Join(ids, ","))
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("node %s did not see every node alive within 15 s", n.base)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if lb {
		if c.lb, err = startBalancer(c.nodes); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// routeTransport sends a client's first request (its negotiate) to the
// client's URL, and every later one to another node: the foreign-node
// workload. It counts the answers by the node that served them.
type routeTransport struct {
	rt   http.RoundTripper
	rest string // host:port of every request after the first
	n    atomic.Int64
	mu   sync.Mutex
	by   map[string]int
}

func (t *routeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.n.Add(1) > 1 {
		req = req.Clone(req.Context())
		req.URL.Host, req.Host = t.rest, t.rest
	}
	resp, err := t.rt.RoundTrip(req)
	if err == nil {
		t.mu.Lock()
		t.by[resp.Header.Get("Comet-Node")]++
		t.mu.Unlock()
	}
	return resp, err
}

// dialForeign opens a long-poll session negotiated on owner whose every
// later request goes to foreign.
func dialForeign(ctx context.Context, owner, foreign *serverProc) (*client.Conn, *routeTransport, error) {
	t := &routeTransport{rt: &http.Transport{MaxIdleConnsPerHost: 8}, rest: foreign.hello.Addr, by: map[string]int{}}
	c, err := client.Dial(ctx, owner.base+"/comet", &client.Options{
		Transports: []string{transport.LongPoll},
		HTTPClient: &http.Client{Transport: t},
	})
	return c, t, err
}
