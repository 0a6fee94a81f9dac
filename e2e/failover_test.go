package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/internal/conformance"
	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/transport"
)

// The failover tests run examples/cluster with -failover: three node
// processes on a real redis-server, behind haproxy with the committed
// config, and Go clients through haproxy. The nodes' lease is Redis's
// default, 5 s, as in production.

// failoverLease is the nodes' lease (the redis package's default).
const failoverLease = 5 * time.Second

// failoverHeartbeat is the heartbeat the clients ask for, so that one
// whose connection went silent (a node stopped) finds it dead in seconds.
const failoverHeartbeat = 2 * time.Second

// failoverRig is a cluster of -failover nodes behind haproxy.
type failoverRig struct {
	redis *testutil.Redis
	nodes []*clusterNode
	lb    *proxyProc
}

// startFailoverRig starts Redis, with redisArgs, three -failover nodes and
// haproxy.
func startFailoverRig(t *testing.T, redisArgs ...string) *failoverRig {
	t.Helper()
	haproxy := needProxy(t, "haproxy")
	cfg, err := os.ReadFile("../examples/cluster/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	r := testutil.StartRedis(t, append([]string{"--maxmemory-policy", "noeviction"}, redisArgs...)...)
	nodes := startClusterNodes(t, r, "-failover")
	return &failoverRig{redis: r, nodes: nodes, lb: startClusterHAProxy(t, haproxy, string(cfg), nodes)}
}

// dial connects a Go client through haproxy, forced to tr.
func (rig *failoverRig) dial(t *testing.T, ctx context.Context, tr string) *client.Conn {
	t.Helper()
	return rig.dialWith(t, ctx, tr, false)
}

// dialWith is dial, negotiating with a request of its own when separate
// is set: its transport then reaches a node other than the session's two
// times in three.
func (rig *failoverRig) dialWith(t *testing.T, ctx context.Context, tr string, separate bool) *client.Conn {
	t.Helper()
	c, err := client.Dial(ctx, rig.lb.url+"/comet", &client.Options{Transports: []string{tr}, SeparateNegotiate: separate,
		Heartbeat: failoverHeartbeat, Logger: testutil.Logger(t).With("client", tr)})
	if err != nil {
		t.Fatalf("Dial %s: %v", tr, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// stopNodes stops every node with SIGTERM, and fails the test unless
// each exits cleanly.
func (rig *failoverRig) stopNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, nd := range rig.nodes {
		if took, err := nd.p.Stop(ctx, syscall.SIGTERM); err != nil {
			t.Errorf("%s: stopped with %v after %v", nd.name, err, took)
		}
	}
}

// owner returns the node that made session id.
func (rig *failoverRig) owner(t *testing.T, id string) *clusterNode {
	t.Helper()
	node, _, _ := strings.Cut(id, ".")
	for _, nd := range rig.nodes {
		if nd.id == node {
			return nd
		}
	}
	t.Fatalf("session %s: no node %q", id, node)
	return nil
}

// held asks nd whether it runs session id, and whether it took it over.
func held(t *testing.T, nd *clusterNode, id string) (held, resumed bool) {
	t.Helper()
	var s struct{ Held, Resumed bool }
	if code := getJSON(t, nd.url+"/debug/session?s="+id, &s); code != http.StatusOK {
		t.Fatalf("%s/debug/session: %d", nd.url, code)
	}
	return s.Held, s.Resumed
}

// resumedOn returns the node that runs session id resumed, or nil.
func (rig *failoverRig) resumedOn(t *testing.T, id string, skip *clusterNode) *clusterNode {
	t.Helper()
	for _, nd := range rig.nodes {
		if nd == skip {
			continue
		}
		if h, r := held(t, nd, id); h && r {
			return nd
		}
	}
	return nil
}

var failoverTransports = []string{"websocket", "sse", "streaming", "longpoll"}

// TestFailoverKill9 kills the process of a session's node with SIGKILL
// amid 10,000 echoes, on each transport: the session goes on on another
// node, with the same id and no close; every echo arrives, in order; at
// most one twice (a message the dead node's Serve took, whose echo the
// log kept, and whose commit it did not: the window the package doc
// names); and the node that took it over runs it resumed.
func TestFailoverKill9(t *testing.T) {
	for _, tr := range failoverTransports {
		t.Run(tr, func(t *testing.T) {
			rig := startFailoverRig(t)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			c := rig.dial(t, ctx, tr)
			id := c.SessionID()
			owner := rig.owner(t, id)
			const n, killAt = 10000, 3000
			var killed time.Time
			var resumedAfter time.Duration
			dups := conformance.EchoThrough(t, ctx, c, n, func(k int) {
				switch k {
				case killAt:
					killed = time.Now()
					if _, err := owner.p.Stop(ctx, syscall.SIGKILL); !isKilled(err) {
						t.Fatalf("kill -9 %s: %v", owner.name, err)
					}
				case killAt + conformance.EchoLead + 1:
					resumedAfter = time.Since(killed)
				}
			})
			on := rig.resumedOn(t, id, owner)
			t.Logf("%s: owner %s killed after %d echoes; echoes of messages sent after it came %v later, from %v; %d echoes twice",
				tr, owner.id, killAt, resumedAfter.Round(time.Millisecond), nodeID(on), dups)
			if got := c.SessionID(); got != id {
				t.Errorf("session id %s after the kill, want %s", got, id)
			}
			if on == nil {
				t.Error("no node runs the session resumed")
			}
			if dups > 1 {
				t.Errorf("%d echoes twice, want at most 1", dups)
			}
			if bound := 3 * (failoverLease + time.Second); resumedAfter > bound {
				t.Errorf("echoes resumed %v after the kill, want within %v", resumedAfter, bound)
			}
		})
	}
}

// TestFailoverKillCarrier kills, with SIGKILL, a node that carries the
// session's stream or WebSocket but does not own the session, amid an
// echo: the transport resumes through another node, nothing is lost or
// echoed twice, and the session is not taken over.
func TestFailoverKillCarrier(t *testing.T) {
	for _, tr := range []string{"websocket", "sse"} {
		t.Run(tr, func(t *testing.T) {
			rig := startFailoverRig(t)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			// A session whose transport haproxy put on another node than
			// its own: with a negotiate of its own, the round robin does
			// so two times in three.
			var c *client.Conn
			var owner, carrier *clusterNode
			for try := 0; carrier == nil; try++ {
				if try == 10 {
					t.Fatal("10 sessions, each carried by its own node")
				}
				c = rig.dialWith(t, ctx, tr, true)
				conformance.EchoThrough(t, ctx, c, 10, func(int) {})
				owner = rig.owner(t, c.SessionID())
				for _, nd := range rig.nodes {
					var s struct{ Paths map[string]int }
					getJSON(t, nd.url+"/debug/served?s="+c.SessionID(), &s)
					if nd != owner && s.Paths[tr] > 0 {
						carrier = nd
					}
				}
			}
			dups := conformance.EchoThrough(t, ctx, c, 2000, func(k int) {
				if k == 500 {
					if _, err := carrier.p.Stop(ctx, syscall.SIGKILL); !isKilled(err) {
						t.Fatalf("kill -9 %s: %v", carrier.name, err)
					}
				}
			})
			t.Logf("%s: %s carried session %s of %s and was killed; %d echoes twice", tr, carrier.id, c.SessionID(), owner.id, dups)
			if dups != 0 {
				t.Errorf("%d echoes twice, want none: the session's node lives", dups)
			}
			if h, resumed := held(t, owner, c.SessionID()); !h || resumed {
				t.Errorf("after the carrier's death, its node runs the session: %v, resumed: %v; want true, false", h, resumed)
			}
		})
	}
}

// isKilled reports whether err is a process's exit by SIGKILL.
func isKilled(err error) bool {
	return err != nil && strings.Contains(err.Error(), "killed")
}

// nodeID returns nd's id, or "no node".
func nodeID(nd *clusterNode) string {
	if nd == nil {
		return "no node"
	}
	return nd.id
}

// TestFailoverStopCont stops the session's node with SIGSTOP past its
// lease, amid an echo, and lets it go on with SIGCONT once another node
// has taken the session over: the old node, fenced, drops the session
// and writes nothing more; the client sees one sequence, with at most
// one echo twice.
func TestFailoverStopCont(t *testing.T) {
	// A transport that holds its connection, and one that makes a request
	// a message: the kill -9 test covers the four.
	for _, tr := range []string{"websocket", "longpoll"} {
		t.Run(tr, func(t *testing.T) {
			rig := startFailoverRig(t)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			c := rig.dial(t, ctx, tr)
			id := c.SessionID()
			owner := rig.owner(t, id)
			stopped := false
			t.Cleanup(func() {
				if stopped {
					owner.p.Signal(syscall.SIGCONT)
				}
			})
			const n, stopAt = 3000, 1000
			var at time.Time
			var resumedAfter time.Duration
			dups := conformance.EchoThrough(t, ctx, c, n, func(k int) {
				switch k {
				case stopAt:
					at = time.Now()
					if err := owner.p.Signal(syscall.SIGSTOP); err != nil {
						t.Fatalf("kill -STOP %s: %v", owner.name, err)
					}
					stopped = true
				case stopAt + conformance.EchoLead + 1:
					resumedAfter = time.Since(at)
					if err := owner.p.Signal(syscall.SIGCONT); err != nil {
						t.Fatalf("kill -CONT %s: %v", owner.name, err)
					}
					stopped = false
				}
			})
			on := rig.resumedOn(t, id, owner)
			t.Logf("%s: owner %s stopped after %d echoes; taken over by %s, echoing again %v later; %d echoes twice",
				tr, owner.id, stopAt, nodeID(on), resumedAfter.Round(time.Millisecond), dups)
			if on == nil {
				t.Error("no other node runs the session resumed")
			}
			if dups > 1 {
				t.Errorf("%d echoes twice, want at most 1", dups)
			}
			// The old owner, going on, finds its lease lapsed and drops the
			// session, without a word to the client.
			deadline := time.Now().Add(3 * (failoverLease + time.Second))
			for {
				h, _ := held(t, owner, id)
				if !h {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s still runs the session %v after SIGCONT", owner.id, 3*(failoverLease+time.Second))
				}
				time.Sleep(50 * time.Millisecond) // polling another process: no event to wait on
			}
			// The session goes on, on its new node.
			conformance.EchoThrough(t, ctx, c, 10, func(int) {})
		})
	}
}

// TestFailoverRollingRestart restarts the three nodes one after another
// with SIGTERM, as a rolling deploy does, while a client of each
// transport echoes: each node fails its health check, hands its sessions
// over and exits; no session closes, no message is lost, and an echo
// comes twice at most once per handover.
func TestFailoverRollingRestart(t *testing.T) {
	rig := startFailoverRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const n = 6000
	type result struct {
		tr   string
		dups int
		err  error
	}
	results := make(chan result, len(failoverTransports))
	var warm sync.WaitGroup
	restarted := make(chan struct{})
	for _, tr := range failoverTransports {
		c := rig.dial(t, ctx, tr)
		id := c.SessionID()
		warm.Add(1)
		go func() {
			var once sync.Once
			defer once.Do(warm.Done)
			dups, err := conformance.Echo(ctx, c, n, func(k int) {
				switch k {
				case 500:
					once.Do(warm.Done)
				case n - 500:
					// Hold the end back until every node restarted.
					select {
					case <-restarted:
					case <-ctx.Done():
					}
				}
			})
			if err == nil && c.SessionID() != id {
				err = fmt.Errorf("session id %s after the restarts, want %s", c.SessionID(), id)
			}
			results <- result{tr, dups, err}
		}()
	}
	warm.Wait()
	for _, nd := range rig.nodes {
		start := time.Now()
		took, err := nd.p.Stop(ctx, syscall.SIGTERM)
		if err != nil {
			close(restarted)
			t.Fatalf("%s: SIGTERM: exited with %v after %v", nd.id, err, took)
		}
		nd.start(t, strings.TrimPrefix(nd.url, "http://"))
		waitAlive(t, rig.nodes)
		t.Logf("%s: stopped in %v, back in %v", nd.id, took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	}
	close(restarted)
	for range failoverTransports {
		r := <-results
		if r.err != nil {
			t.Errorf("%s: %v", r.tr, r.err)
			continue
		}
		t.Logf("%s: %d echoes twice across 3 restarts", r.tr, r.dups)
		if r.dups > 3 {
			t.Errorf("%s: %d echoes twice, want at most one per handover, 3", r.tr, r.dups)
		}
	}
}

// recvEnd reads c until it ends, and returns how it ended.
func recvEnd(ctx context.Context, c *client.Conn) error {
	for {
		if _, _, err := c.Recv(ctx); err != nil {
			return err
		}
	}
}

// TestFailoverRedisRestart shuts Redis down without saving and starts it
// again, empty, where it was: the session logs are gone, and every
// session ends with 3009 within a few seconds, instead of going on
// without the failover it was promised or hanging.
func TestFailoverRedisRestart(t *testing.T) {
	rig := startFailoverRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var conns []*client.Conn
	for _, tr := range failoverTransports {
		c := rig.dial(t, ctx, tr)
		conformance.EchoThrough(t, ctx, c, 100, func(int) {})
		conns = append(conns, c)
	}
	// SHUTDOWN answers nothing: the server exits.
	if reply, err := redisCommand(rig.redis.Addr, "SHUTDOWN", "NOSAVE"); err == nil {
		t.Fatalf("SHUTDOWN NOSAVE answered %q", reply)
	}
	waitExit(t, rig.redis.PID)
	testutil.StartRedisOn(t, redisPort(t, rig.redis), "--maxmemory-policy", "noeviction")
	t.Cleanup(func() { rig.stopNodes(t) }) // before this Redis stops
	back := time.Now()
	for i, c := range conns {
		err := recvEnd(ctx, c)
		var ce *transport.CloseError
		if !errors.As(err, &ce) || ce.Code != transport.CloseStateLost {
			t.Fatalf("%s: ended with %v, want 3009", failoverTransports[i], err)
		}
		t.Logf("%s: closed %v after Redis was back: %d %q", failoverTransports[i], time.Since(back).Round(time.Millisecond), ce.Code, ce.Reason)
	}
	if took, bound := time.Since(back), 3*(time.Second+failoverHeartbeat); took > bound {
		t.Errorf("the sessions closed %v after Redis was back, want within %v", took, bound)
	}
}

// TestFailoverRedisRollback takes a snapshot of Redis, goes on echoing,
// kills Redis and starts it again from the snapshot: the sessions' logs
// went back, and each session that writes again ends with 3009 and the
// range it lost in its reason; none goes on silently.
func TestFailoverRedisRollback(t *testing.T) {
	dir := t.TempDir()
	rig := startFailoverRig(t, "--dir", dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var conns []*client.Conn
	for _, tr := range failoverTransports {
		c := rig.dial(t, ctx, tr)
		conformance.EchoThrough(t, ctx, c, 100, func(int) {})
		conns = append(conns, c)
	}
	if reply, err := redisCommand(rig.redis.Addr, "SAVE"); err != nil || reply != "+OK" {
		t.Fatalf("SAVE: %q, %v", reply, err)
	}
	for _, c := range conns {
		conformance.EchoThrough(t, ctx, c, 50, func(int) {})
	}
	if err := syscall.Kill(rig.redis.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitExit(t, rig.redis.PID)
	testutil.StartRedisOn(t, redisPort(t, rig.redis), "--maxmemory-policy", "noeviction", "--dir", dir)
	t.Cleanup(func() { rig.stopNodes(t) }) // before this Redis stops
	for i, c := range conns {
		// What it sends now must be written after what the log lost.
		c.Send(ctx, transport.Text, []byte("after"))
		err := recvEnd(ctx, c)
		var ce *transport.CloseError
		if !errors.As(err, &ce) || ce.Code != transport.CloseStateLost || !strings.Contains(ce.Reason, "stream ") {
			t.Fatalf("%s: ended with %v, want 3009 naming the range lost", failoverTransports[i], err)
		}
		t.Logf("%s: closed: %d %q", failoverTransports[i], ce.Code, ce.Reason)
	}
}

// redisCommand sends one command to the Redis at addr and returns the
// first line of its answer.
func redisCommand(addr string, args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, testutil.Wait)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(testutil.Wait))
	cmd := fmt.Sprintf("*%d\r\n", len(args))
	for _, a := range args {
		cmd += fmt.Sprintf("$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(conn, cmd); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}

// waitExit waits until process pid is gone: its port is free again.
func waitExit(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(testutil.Wait)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still there after %v", pid, testutil.Wait)
		}
		time.Sleep(10 * time.Millisecond) // another process's exit: nothing to wait on
	}
}

// redisPort returns r's port.
func redisPort(t *testing.T, r *testutil.Redis) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(r.Addr)
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFailoverBrowser kills the session's node under Chromium's page,
// through haproxy, on long-polling and on WebSocket: the page's session
// keeps its id, every echo arrives once and in order, no close fires,
// and the shim reports at most a reconnecting or two for the lost
// connections. The example's echo echoes again the one message its dead
// Serve took and did not commit, if any: a page sees it as one echo
// twice, which the check allows.
func TestFailoverBrowser(t *testing.T) {
	browser := needBrowser(t)
	for _, tr := range []string{"longpoll", "websocket"} {
		t.Run(tr, func(t *testing.T) {
			rig := startFailoverRig(t)
			tb := newTabWithin(t, browser, 2*time.Minute)
			tb.open(rig.lb.url + "/?transport=" + tr)
			var first struct{ Session string }
			runJSON(t, tb, fmt.Sprintf(failoverPageScript, 0, 300), &first)
			owner := rig.owner(t, first.Session)
			killed := time.Now()
			if _, err := owner.p.Stop(tb.ctx, syscall.SIGKILL); !isKilled(err) {
				t.Fatalf("kill -9 %s: %v", owner.name, err)
			}
			var res failoverEcho
			runJSON(t, tb, fmt.Sprintf(failoverPageScript, 300, 1000), &res)
			t.Logf("%s: owner %s killed after 300 echoes; the page went on %v later on %s: session %s, %d echoes, %d lost, %d twice, in order %v, %d reconnecting, %d closes",
				tr, owner.id, time.Since(killed).Round(time.Millisecond), res.Transport, res.Session, res.Got, res.Lost, res.Dup,
				res.InOrder, res.Reconnecting, res.Closes)
			if res.Session != first.Session {
				t.Errorf("session %s after the kill, want %s", res.Session, first.Session)
			}
			if res.Lost != 0 || !res.InOrder || res.Dup > 1 || res.Closes != 0 {
				t.Errorf("%d lost, %d twice, in order %v, %d closes; first wrong: %s", res.Lost, res.Dup, res.InOrder, res.Closes, res.FirstBad)
			}
			if res.Reconnecting > 2 {
				t.Errorf("%d reconnecting events for one lost node, want at most 2", res.Reconnecting)
			}
			if res.Transport != tr {
				t.Errorf("the page ended on %s, not %s", res.Transport, tr)
			}
		})
	}
}

// runJSON runs script in tb's page, awaiting its promise, and decodes
// what it resolves with into v.
func runJSON(t *testing.T, tb *tab, script string, v any) {
	t.Helper()
	raw, err := chromedp.Run(tb.ctx, chromedp.Evaluate[[]byte](script, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("script: %v", err)
	}
	tb.con.add("script resolved: %s", raw)
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("script resolved with %s: %v", raw, err)
	}
}

// failoverPageScript drives the page's session (window.comet) from
// message %d to %d: it sends them in rounds of 10, each once the
// previous round's echoes are back, and resolves once the last one's echo
// is in, with what clusterScript reports and the reconnecting and close
// events seen since the first call. Its state lives on window, across
// calls. The session id is the shim's private _sessionId.
const failoverPageScript = `new Promise(function (resolve, reject) {
  var c = window.comet, from = %d, to = %d, round = 10;
  var st = window.failover;
  if (!st) {
    st = window.failover = { got: [], reconnecting: 0, closes: 0, sent: 0, waiting: null };
    c.addEventListener('reconnecting', function () { st.reconnecting++; });
    c.addEventListener('close', function () { st.closes++; });
    c.addEventListener('message', function (e) { st.got.push(e.data); if (st.waiting) st.waiting(); });
  }
  function seen(i) { return st.got.indexOf('m' + i) >= 0; }
  function report() {
    var s = {}, dup = 0, bad = '', order = [], i;
    for (i = 0; i < st.got.length; i++) {
      if (s[st.got[i]]) { dup++; continue; }
      s[st.got[i]] = true;
      order.push(st.got[i]);
    }
    for (i = 0; i < order.length; i++) if (!bad && order[i] !== 'm' + i) bad = i + ': ' + JSON.stringify(order.slice(i, i + 3));
    var lost = 0;
    for (i = 0; i < to; i++) if (!s['m' + i]) lost++;
    resolve({ session: c._sessionId, transport: c.transport, got: st.got.length, lost: lost, dup: dup,
      inOrder: !bad, firstBad: bad, reconnecting: st.reconnecting, closes: st.closes });
  }
  function step() {
    if (st.sent >= to) { if (seen(to - 1)) { st.waiting = null; report(); } return; }
    if (st.sent > from && !seen(st.sent - 1)) return;
    var end = Math.min(to, st.sent + round);
    for (; st.sent < end; st.sent++) c.send('m' + st.sent);
  }
  st.waiting = step;
  if (c.readyState === 1) step(); else c.addEventListener('open', step);
})`

// failoverEcho is what failoverPageScript resolves with.
type failoverEcho struct {
	Session, Transport   string
	Got, Lost, Dup       int
	InOrder              bool
	FirstBad             string
	Reconnecting, Closes int
}
