package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/seed-544bbf9f/comet/internal/testutil"
)

// TestCluster runs examples/cluster as a user does (README.md, "Running
// several nodes"): three node processes on one real redis-server, behind
// haproxy with the committed examples/cluster/haproxy.cfg (its ports
// changed to free ones), which balances every request round robin with no
// affinity. Chromium loads the example's page through haproxy, forced
// onto each transport in turn and once on its own choice, and echoes
// 1,000 messages each way: none may be lost, duplicated or reordered. An
// HTTP transport's session must have had its requests served by all three
// nodes, none serving more than 60 % of them, as each node's
// /debug/served counts them (a WebSocket is one request, and a page
// cannot read its headers: only its echo is checked).
func TestCluster(t *testing.T) {
	browser := needBrowser(t)
	haproxy := needProxy(t, "haproxy")
	cfg, err := os.ReadFile("../examples/cluster/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	r := testutil.StartRedis(t, "--maxmemory-policy", "noeviction")
	nodes := startClusterNodes(t, r)
	lb := startClusterHAProxy(t, haproxy, string(cfg), nodes)

	for _, name := range []string{"websocket", "sse", "streaming", "longpoll", "automatic"} {
		t.Run(name, func(t *testing.T) {
			tb := newTab(t, browser)
			url := lb.url + "/?transport=" + name
			if name == "automatic" {
				url = lb.url + "/"
			}
			start := time.Now()
			tb.open(url)
			var res clusterEcho
			raw, err := chromedp.Run(tb.ctx, chromedp.Evaluate[[]byte](clusterScript, chromedp.EvalAwaitPromise))
			if err != nil {
				t.Fatalf("echo: %v", err)
			}
			tb.con.add("echo resolved: %s", raw)
			if err := json.Unmarshal(raw, &res); err != nil {
				t.Fatalf("echo resolved with %s: %v", raw, err)
			}
			t.Logf("%s: session %s on %s: %d echoes (%d lost, %d duplicated, in order: %v) in %v",
				name, res.Session, res.Transport, res.Got, res.Lost, res.Dup, res.InOrder, time.Since(start).Round(time.Millisecond))
			if res.Lost != 0 || res.Dup != 0 || !res.InOrder || res.Got != 1000 {
				t.Errorf("echoes: %d of 1000, %d lost, %d duplicated, in order: %v; first wrong: %s",
					res.Got, res.Lost, res.Dup, res.InOrder, res.FirstBad)
			}
			if name != "automatic" && res.Transport != name {
				t.Errorf("the session ended on %s, not the forced %s", res.Transport, name)
			}
			if res.Transport == "websocket" {
				return
			}
			counts := map[string]int{}
			total := 0
			for _, nd := range nodes {
				var s struct{ Requests int }
				if code := getJSON(t, nd.url+"/debug/served?s="+res.Session, &s); code != http.StatusOK {
					t.Fatalf("%s/debug/served: %d", nd.url, code)
				}
				counts[nd.id] = s.Requests
				total += s.Requests
			}
			t.Logf("%s: requests of session %s per node: %v", name, res.Session, counts)
			for id, n := range counts {
				if n == 0 {
					t.Errorf("node %s served none of the session's requests: %v", id, counts)
				}
				if n*10 > total*6 {
					t.Errorf("node %s served %d of the session's %d requests, more than 60%%: %v", id, n, total, counts)
				}
			}
		})
	}
}

// clusterScript drives the page's own session (window.comet): it sends
// 1,000 messages in rounds of 10, each once the previous round's echoes
// are back, so that an HTTP transport sends them in many requests that the
// balancer spreads, then a marker, and collects every echo before the
// marker. The session id is the shim's private _sessionId: the shim has
// no public one, and the test needs it to ask the nodes.
const clusterScript = `new Promise(function (resolve, reject) {
  var c = window.comet, n = 1000, round = 10, got = [], sent = 0, marker = 'end';
  function send() {
    var end = Math.min(n, sent + round);
    for (; sent < end; sent++) c.send('m' + sent);
    if (sent === n) c.send(marker);
  }
  function finish() {
    var seen = {}, dup = 0, bad = '', i;
    for (i = 0; i < got.length; i++) {
      if (seen[got[i]]) dup++;
      seen[got[i]] = true;
      if (!bad && got[i] !== 'm' + i) bad = i + ': ' + JSON.stringify(got.slice(i, i + 3));
    }
    var lost = 0;
    for (i = 0; i < n; i++) if (!seen['m' + i]) lost++;
    resolve({ session: c._sessionId, transport: c.transport, got: got.length, lost: lost, dup: dup,
      inOrder: !bad, firstBad: bad });
  }
  c.addEventListener('message', function (e) {
    if (e.data === marker) return finish();
    got.push(e.data);
    if (got.length === sent && sent < n) send();
  });
  c.addEventListener('close', function (e) { reject(new Error('closed: ' + e.code + ' ' + e.reason)); });
  if (c.readyState === 1) send(); else c.addEventListener('open', send);
})`

// clusterEcho is what clusterScript resolves with.
type clusterEcho struct {
	Session, Transport string
	Got, Lost, Dup     int
	InOrder            bool
	FirstBad           string
}

// clusterNode is one running examples/cluster node.
type clusterNode struct {
	id, url string
	p       *testutil.Program
	args    []string // its flags after -addr
	log     *transcript
	name    string // its name in log
}

// startClusterNodes starts three examples/cluster nodes on r, with -debug
// and args, and waits until each sees all alive. Each is stopped with
// SIGTERM when the test ends, and must exit cleanly unless the test
// stopped it itself.
func startClusterNodes(t *testing.T, r *testutil.Redis, args ...string) []*clusterNode {
	t.Helper()
	log := newTranscript(t, "nodes")
	var nodes []*clusterNode
	for i := range 3 {
		nd := &clusterNode{args: append([]string{"-redis", "redis://" + r.Addr + "/0", "-debug"}, args...),
			log: log, name: fmt.Sprintf("node %d", i+1)}
		// Port 0: each node listens where the kernel says, and prints it,
		// so no port can be taken between a choice and a bind.
		nd.start(t, "127.0.0.1:0")
		nodes = append(nodes, nd)
	}
	waitAlive(t, nodes)
	return nodes
}

// start runs the node's process on addr, learns its id, and stops it by
// SIGTERM when the test ends, if it still runs then.
func (nd *clusterNode) start(t *testing.T, addr string) {
	t.Helper()
	p := testutil.StartProgram(t, "../examples/cluster", lineWriter{nd.log, nd.name + ": "},
		append([]string{"-addr", addr}, nd.args...)...)
	t.Cleanup(func() {
		select {
		case <-p.Done():
			return // the test stopped it
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if took, err := p.Stop(ctx, syscall.SIGTERM); err != nil {
			t.Errorf("%s: stopped with %v after %v", nd.name, err, took)
		}
	})
	var who struct{ Node string }
	if code := getJSON(t, p.URL+"/whoami", &who); code != http.StatusOK || who.Node == "" {
		t.Fatalf("%s/whoami: %d %+v", p.URL, code, who)
	}
	nd.id, nd.url, nd.p = who.Node, p.URL, p
}

// lineWriter adds each line a node prints to a transcript, which the test
// prints if it fails.
type lineWriter struct {
	c      *transcript
	prefix string
}

func (w lineWriter) Write(p []byte) (int, error) {
	w.c.add("%s%s", w.prefix, strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// getJSON GETs url, directly, and decodes its JSON answer into v,
// returning the status.
func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: testutil.Wait}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %s %q: %v", url, resp.Status, body, err)
	}
	return resp.StatusCode
}

// waitAlive polls every node's /debug/alive until each sees all of them
// alive in Redis (a node learns of a peer at its next lease refresh, a
// second at most): a node that does not yet see a session's node alive
// answers its requests 404.
func waitAlive(t *testing.T, nodes []*clusterNode) {
	t.Helper()
	var q []string
	for _, nd := range nodes {
		q = append(q, "node="+nd.id)
	}
	deadline := time.NewTimer(testutil.Wait)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for _, nd := range nodes {
		for {
			var alive map[string]bool
			code := getJSON(t, nd.url+"/debug/alive?"+strings.Join(q, "&"), &alive)
			all := code == http.StatusOK && len(alive) == len(nodes)
			for _, ok := range alive {
				all = all && ok
			}
			if all {
				break
			}
			select {
			case <-tick.C:
			case <-deadline.C:
				t.Fatalf("node %s does not see every node alive within %v: %v", nd.id, testutil.Wait, alive)
			}
		}
	}
}

// startClusterHAProxy runs haproxy from cfg, the committed config, with
// its frontend on a free port and its three servers on nodes, and waits
// until a request through it has reached each node. A frontend port found
// free may be taken before haproxy binds it: haproxy then exits, and is
// started again on another port, up to three times.
func startClusterHAProxy(t *testing.T, bin, cfg string, nodes []*clusterNode) *proxyProc {
	t.Helper()
	for i, nd := range nodes {
		cfg = replaceOnce(t, cfg, fmt.Sprintf("server n%d 127.0.0.1:%d", i+1, 8081+i),
			fmt.Sprintf("server n%d %s", i+1, strings.TrimPrefix(nd.url, "http://")))
	}
	var lastErr error
	for range 3 {
		dir := t.TempDir()
		port, err := testutil.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		conf := writeConfig(t, dir, "haproxy.cfg", replaceOnce(t, cfg, "bind 127.0.0.1:8080", fmt.Sprintf("bind 127.0.0.1:%d", port)))
		if out, err := exec.Command(bin, "-c", "-f", conf).CombinedOutput(); err != nil {
			t.Fatalf("haproxy -c -f %s: %v\n%s", conf, err, out)
		}
		p, err := launchProxy(t, "haproxy", dir, []string{bin, "-db", "-f", conf}, port, nil)
		if err != nil {
			t.Fatal(err)
		}
		if lastErr = reachesAll(p, nodes); lastErr == nil {
			t.Logf("haproxy: listening on %s (pid %d)", p.url, p.cmd.Process.Pid)
			return p
		}
		p.stop(t)
		t.Logf("haproxy on port %d: %v; trying another port", port, lastErr)
	}
	t.Fatalf("haproxy never became ready: %v", lastErr)
	return nil
}

// reachesAll asks p's /whoami until every node has answered, or p exits,
// or proxyStart passes.
func reachesAll(p *proxyProc, nodes []*clusterNode) error {
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: time.Second}
	seen := map[string]bool{}
	deadline := time.NewTimer(proxyStart)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for len(seen) < len(nodes) {
		select {
		case <-p.exited:
			return fmt.Errorf("exited before it was ready: %v", p.err)
		case <-deadline.C:
			return fmt.Errorf("not every node answered through it within %v (seen %v): %v", proxyStart, seen, last)
		case <-tick.C:
		}
		resp, err := client.Get(p.url + "/whoami")
		if err != nil {
			last = err
			continue
		}
		var who struct{ Node string }
		err = json.NewDecoder(resp.Body).Decode(&who)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			last = errors.Join(fmt.Errorf("GET /whoami: %s", resp.Status), err)
			continue
		}
		for _, nd := range nodes {
			if nd.id == who.Node {
				seen[who.Node] = true
			}
		}
	}
	return nil
}
