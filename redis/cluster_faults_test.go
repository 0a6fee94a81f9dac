package redis

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/internal/conformance"
	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/transport"
)

// The tests below run a cluster of in-process nodes on a real
// redis-server, break Redis or a node's way to it, and check what the
// clients see: every message echoed once and in order, or the end the
// design documents (session/cluster.go, PROTOCOL.md section 14), never a
// silent gap. Bounds are generous, several times what the design
// promises, and the times measured are logged.

// shortBroker is the BrokerTimeout of the tests that wait for it to pass.
const shortBroker = 2 * time.Second

// watchPeriod is how often a handler looks at its broker's Err. It
// counts the broker unavailable from the first look that finds it so
// and takes two looks finding it so as unavailable all along: a blip of a
// loaded machine (a refresh late by more than OpTimeout) seen by one look
// and an outage starting just before the next can close the sessions up
// to a period before BrokerTimeout has passed since the outage began.
const watchPeriod = time.Second

// awaitRefused waits until nothing accepts connections at addr: the
// server that was there has exited, and another may take its port.
func awaitRefused(t *testing.T, addr string) {
	t.Helper()
	pollUntil(t, time.Now(), testutil.Wait, "the old redis-server gone from "+addr, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
}

// restartRedis starts a new, empty redis-server where r was.
func restartRedis(t *testing.T, r *testutil.Redis) *testutil.Redis {
	t.Helper()
	awaitRefused(t, r.Addr)
	_, port, _ := net.SplitHostPort(r.Addr)
	p, _ := strconv.Atoi(port)
	return testutil.StartRedisOn(t, p, "--maxmemory-policy", "noeviction")
}

// isBrokerUnavailable reports whether a is 503 broker_unavailable with
// Retry-After: 1.
func isBrokerUnavailable(a answer) bool {
	return a.status == http.StatusServiceUnavailable && a.code == transport.CodeBrokerUnavailable && a.retryAfter == "1"
}

// TestClusterRedisRestart shuts Redis down under traffic and starts it
// again, empty, on the same port well before BrokerTimeout: every session
// survives, the clients resume through the 503s their forwarded requests
// got meanwhile, and every message arrives once, in order.
func TestClusterRedisRestart(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	// A lease outlives the restart, so that no node is reported gone
	// (as in TestRedisRestart).
	tc := newTestCluster(t, r, clusterOpts{LeaseTTL: 5 * time.Second,
		Session: comet.Options{BrokerTimeout: 5 * time.Second}})
	runs := startClients(t, tc.front, client.Options{})
	eachClient(t, runs, func(t *testing.T, r *run) { r.traf.flowing(t, 50, testutil.Wait, "before the restart") })
	raw := negotiate(t, tc.nodes[0].url)

	if err := admin(t, r).ShutdownNoSave(context.Background()).Err(); err != nil {
		t.Fatalf("SHUTDOWN NOSAVE: %v", err)
	}
	down := time.Now()
	waitUntil(t, "node 2 notices", func() bool { return tc.nodes[1].b.Err() != nil })
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
	defer cancel()
	if a, err := rawPost(ctx, tc.nodes[1].url, raw); err != nil || !isBrokerUnavailable(a) {
		t.Errorf("a POST forwarded with Redis down: %v %v, want 503 %s, Retry-After 1", a, err, transport.CodeBrokerUnavailable)
	}
	restartRedis(t, r)
	up := time.Now()
	t.Logf("Redis down for %v", up.Sub(down).Round(time.Millisecond))
	eachClient(t, runs, func(t *testing.T, r *run) {
		at := r.traf.flowing(t, 50, 3*testutil.Wait, "after the restart")
		t.Logf("%s: 50 echoes %v after Redis came back", r.tr, at.Sub(up).Round(time.Millisecond))
		if err := r.traf.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestClusterRedisDown shuts Redis down for good: negotiates are refused
// with 503 broker_unavailable, Retry-After 1, as soon as a node notices,
// and once BrokerTimeout has passed every session closes with 3008, which
// the Go client asks for; until then the messages arrive in order.
func TestClusterRedisDown(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	tc := newTestCluster(t, r, clusterOpts{Session: comet.Options{BrokerTimeout: shortBroker}})
	n1 := tc.nodes[0]
	// The clients reach the session's node directly. Through the
	// round-robin front their attaches may land on the other nodes,
	// which refuse them with 503, as long as luck keeps them from the
	// node that holds the close, or lockstep: a client that makes three
	// requests per resume (POST, attach, POST), behind strict round robin
	// over three nodes, sends every attach to one node.
	runs := startClients(t, n1.url, client.Options{})
	eachClient(t, runs, func(t *testing.T, r *run) { r.traf.flowing(t, 50, testutil.Wait, "before the outage") })

	if err := admin(t, r).ShutdownNoSave(context.Background()).Err(); err != nil {
		t.Fatalf("SHUTDOWN NOSAVE: %v", err)
	}
	down := time.Now()
	noticed := pollUntil(t, down, 3*time.Second, "node 1 notices", func() bool { return n1.b.Err() != nil })
	first := pollUntil(t, down, noticed+3*time.Second, "negotiate refused with 503", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
		defer cancel()
		a, _, _ := rawNegotiate(ctx, n1.url)
		return isBrokerUnavailable(a)
	})
	t.Logf("node noticed %v after the shutdown, first 503 %v after", noticed.Round(time.Millisecond), first.Round(time.Millisecond))
	if first > noticed+time.Second {
		t.Errorf("first 503 %v after the node noticed, want within 1 s", first-noticed)
	}
	eachClient(t, runs, func(t *testing.T, r *run) {
		// The node notices within a check (1 s), then BrokerTimeout, then
		// the next check.
		at, err := r.traf.waitEnd(t, 5*(shortBroker+time.Second))
		closed := at.Sub(down)
		t.Logf("%s: session closed %v after the shutdown (BrokerTimeout %v), %d echoes: %v", r.tr, closed.Round(time.Millisecond), shortBroker, r.traf.count(), err)
		if code := closeCode(err); code != comet.CloseBrokerUnavailable {
			t.Fatalf("session ended with %v, want close %d", err, comet.CloseBrokerUnavailable)
		}
		if closed < shortBroker-watchPeriod {
			t.Errorf("closed %v after the shutdown, before BrokerTimeout %v (less the handler's watch period)", closed, shortBroker)
		}
	})
}

// TestClusterClientKill kills the brokers' subscriber connections, then
// their pooled ones, under traffic: go-redis reconnects, what PUB/SUB lost
// meanwhile is repaired by the handler, and traffic resumes with nothing
// lost.
func TestClusterClientKill(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	tc := newTestCluster(t, r, clusterOpts{Session: comet.Options{BrokerTimeout: shortBroker}})
	runs := startClients(t, tc.front, client.Options{})
	eachClient(t, runs, func(t *testing.T, r *run) { r.traf.flowing(t, 50, testutil.Wait, "before the kills") })
	for _, typ := range []string{"pubsub", "normal"} {
		n, err := admin(t, r).ClientKillByFilter(context.Background(), "TYPE", typ).Result()
		if err != nil || n == 0 {
			t.Fatalf("CLIENT KILL TYPE %s: %d, %v", typ, n, err)
		}
		killed := time.Now()
		t.Logf("CLIENT KILL TYPE %s killed %d", typ, n)
		eachClient(t, runs, func(t *testing.T, r *run) {
			at := r.traf.flowing(t, 50, 3*testutil.Wait, "after CLIENT KILL TYPE "+typ)
			t.Logf("%s: 50 echoes %v after CLIENT KILL TYPE %s", r.tr, at.Sub(killed).Round(time.Millisecond), typ)
		})
	}
	eachClient(t, runs, func(t *testing.T, r *run) {
		if err := r.traf.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestClusterClientPause pauses every Redis client for 3 s under traffic,
// less than LeaseTTL and BrokerTimeout: what needs Redis stalls, then
// everything resumes with nothing lost, and nothing waits much past the
// pause.
func TestClusterClientPause(t *testing.T) {
	t.Parallel()
	const pause = 3 * time.Second
	r := startRedis(t)
	tc := newTestCluster(t, r, clusterOpts{LeaseTTL: 5 * time.Second,
		Session: comet.Options{BrokerTimeout: 6 * time.Second}})
	runs := startClients(t, tc.front, client.Options{})
	eachClient(t, runs, func(t *testing.T, r *run) { r.traf.flowing(t, 50, testutil.Wait, "before the pause") })
	if err := admin(t, r).Do(context.Background(), "CLIENT", "PAUSE", strconv.Itoa(int(pause.Milliseconds())), "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	before := make([]int, len(runs))
	for i, r := range runs {
		before[i] = r.traf.count()
	}
	for i, r := range runs {
		t.Run(r.tr, func(t *testing.T) {
			// Echoes after the pause, and at least the 50 after those
			// counted so far: a client may have stalled for it or not
			// (one whose requests all reach the session's node needs no
			// Redis).
			at := r.traf.flowing(t, 50, pause+3*testutil.Wait, "after the pause")
			t.Logf("%s: 50 more echoes %v after a %v pause began (%d echoes in all since)", r.tr,
				at.Sub(paused).Round(time.Millisecond), pause, r.traf.count()-before[i])
			if err := r.traf.stop(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestClusterRedisOOM fills a Redis with a tiny maxmemory, noeviction, to
// OOM with a key of the test's own. Redis then refuses the lease script
// (its ZADD), though PUBLISH still works: each node's Err reports the
// failed refresh, so negotiates get 503 broker_unavailable, and once
// BrokerTimeout passes the sessions close with 3008, as for any outage;
// messages flow in order until then. Once the key is deleted, negotiates
// succeed again.
func TestClusterRedisOOM(t *testing.T) {
	t.Parallel()
	r := startRedis(t, "--maxmemory", "4mb")
	tc := newTestCluster(t, r, clusterOpts{Session: comet.Options{BrokerTimeout: shortBroker}})
	n1 := tc.nodes[0]
	// Directly, as in TestClusterRedisDown: the close is the session's
	// node's to deliver.
	runs := startClients(t, n1.url, client.Options{})
	eachClient(t, runs, func(t *testing.T, r *run) { r.traf.flowing(t, 50, testutil.Wait, "before OOM") })

	ctx := context.Background()
	a := admin(t, r)
	chunk := strings.Repeat("x", 256<<10)
	var oom error
	for range 64 {
		if oom = a.Append(ctx, "fill", chunk).Err(); oom != nil {
			break
		}
	}
	if !errContains(oom, "OOM") {
		t.Fatalf("filling Redis: %v, want an OOM error", oom)
	}
	// Filled to its limit, Redis dips back under it whenever a client's
	// buffers shrink, and a refresh that comes then succeeds and restarts
	// the node's BrokerTimeout. Lowering the limit under the key's size
	// keeps it over, as a Redis whose data outgrew it.
	if err := a.ConfigSet(ctx, "maxmemory", "1mb").Err(); err != nil {
		t.Fatal(err)
	}
	full := time.Now()
	pollUntil(t, full, 3*time.Second, "node 1 reports the refused refresh", func() bool {
		return errContains(n1.b.Err(), "OOM")
	})
	t.Logf("at OOM: %v", n1.b.Err())
	nctx, cancel := context.WithTimeout(ctx, testutil.Wait)
	defer cancel()
	if ans, _, err := rawNegotiate(nctx, n1.url); err != nil || !isBrokerUnavailable(ans) {
		t.Errorf("negotiate with Redis at OOM: %v %v, want 503 %s", ans, err, transport.CodeBrokerUnavailable)
	}
	eachClient(t, runs, func(t *testing.T, r *run) {
		at, err := r.traf.waitEnd(t, 5*(shortBroker+time.Second))
		t.Logf("%s: session closed %v after OOM, %d echoes: %v", r.tr, at.Sub(full).Round(time.Millisecond), r.traf.count(), err)
		if code := closeCode(err); code != comet.CloseBrokerUnavailable {
			t.Fatalf("session ended with %v, want close %d", err, comet.CloseBrokerUnavailable)
		}
	})

	if err := a.Del(ctx, "fill").Err(); err != nil {
		t.Fatal(err)
	}
	if err := a.ConfigSet(ctx, "maxmemory", "4mb").Err(); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	took := pollUntil(t, freed, testutil.Wait, "negotiate succeeds after the key is deleted", func() bool {
		ans, n, _ := rawNegotiate(nctx, n1.url)
		return ans.status == http.StatusOK && n != nil
	})
	t.Logf("negotiate succeeds %v after the memory was freed", took.Round(time.Millisecond))
}

// TestClusterNodeCutOff black-holes one node's connections to Redis (the
// others reach it directly): that node refuses negotiates with 503 within
// Refresh + OpTimeout and closes its sessions with 3008 after
// BrokerTimeout; the other nodes see it gone once its lease lapses and
// answer 404 session_not_found for its sessions.
func TestClusterNodeCutOff(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	proxy := startBlackHole(t, r.Addr)
	tc := newTestCluster(t, r, clusterOpts{Session: comet.Options{BrokerTimeout: shortBroker},
		RedisURL: func(i int) string {
			if i == 0 {
				return "redis://" + proxy.Addr() + "/0"
			}
			return redisURL(r)
		}})
	n1, n2 := tc.nodes[0], tc.nodes[1]
	// The clients reach the cut node directly: through the others, they
	// would hear 404 once the node is gone rather than its 3008.
	runs := startClients(t, n1.url, client.Options{})
	eachClient(t, runs, func(t *testing.T, r *run) { r.traf.flowing(t, 50, testutil.Wait, "before the cut") })
	raw := negotiate(t, n1.url)
	ctx, cancel := context.WithTimeout(context.Background(), 10*testutil.Wait)
	defer cancel()
	// Retried after a 503, as a client does: on a loaded machine a late
	// self-ping may have had a node subscribe again, losing the call.
	pollUntil(t, time.Now(), 3*testutil.Wait, "a POST forwarded to node 1 answered 200", func() bool {
		a, err := rawPost(ctx, n2.url, raw)
		if err != nil || a.status != http.StatusOK && a.status != http.StatusServiceUnavailable {
			t.Fatalf("a POST forwarded to node 1: %v %v", a, err)
		}
		return a.status == http.StatusOK
	})

	proxy.Cut()
	cut := time.Now()
	first503 := pollUntil(t, cut, 5*(testRefresh+testOpTimeout)+time.Second, "node 1 refuses negotiate with 503", func() bool {
		a, _, _ := rawNegotiate(ctx, n1.url)
		return isBrokerUnavailable(a)
	})
	// A POST forwarded before node 2 sees node 1 gone waits for a reply
	// that never comes, until NodeGone ends it (404) or BrokerTimeout
	// does (503).
	gone := pollUntil(t, cut, testTTL+testRefresh+shortBroker+3*time.Second, "node 2 answers 404 for node 1's session", func() bool {
		a, _ := rawPost(ctx, n2.url, raw)
		return a.status == http.StatusNotFound && a.code == transport.CodeSessionNotFound
	})
	for _, n := range tc.nodes[1:] {
		if n.b.Alive(n1.b.Node()) {
			t.Errorf("node %s still sees the cut node alive", n.b.Node())
		}
	}
	t.Logf("after the cut: negotiate 503 at %v, 404 through node 2 at %v (LeaseTTL %v + Refresh %v)",
		first503.Round(time.Millisecond), gone.Round(time.Millisecond), testTTL, testRefresh)
	eachClient(t, runs, func(t *testing.T, r *run) {
		at, err := r.traf.waitEnd(t, 5*(shortBroker+time.Second))
		closed := at.Sub(cut)
		t.Logf("%s: closed %v after the cut (BrokerTimeout %v): %v", r.tr, closed.Round(time.Millisecond), shortBroker, err)
		if code := closeCode(err); code != comet.CloseBrokerUnavailable {
			t.Fatalf("session ended with %v, want close %d", err, comet.CloseBrokerUnavailable)
		}
		if closed < shortBroker-watchPeriod {
			t.Errorf("closed %v after the cut, before BrokerTimeout %v (less the handler's watch period)", closed, shortBroker)
		}
	})
}

// TestClusterConcurrency sends one session's requests through different
// nodes at once. Its brokers have the production timing: with the tests'
// short one, a loaded machine's late self-ping has a subscriber replaced,
// and a forwarded request lost, now and then, which a client retries but
// these raw requests cannot without changing what they test.
func TestClusterConcurrency(t *testing.T) {
	t.Parallel()
	// Two delivering long-polls of one session, through nodes 2 and 3:
	// the later supersedes the earlier, whose answer ends with ["s"], and
	// a message goes to one of them only.
	t.Run("supersede", func(t *testing.T) {
		t.Parallel()
		sessions := make(chan *comet.Session, 1)
		delivering := make(chan string, 4)
		tc := newTestCluster(t, startRedis(t), clusterOpts{Refresh: DefaultRefresh, OpTimeout: DefaultOpTimeout, LeaseTTL: DefaultLeaseTTL, Session: comet.Options{
			Hold: time.Minute,
			Serve: func(s *comet.Session) {
				sessions <- s
				<-s.Context().Done()
			},
			Observer: &comet.Observer{TransportChanged: func(_ *comet.Session, _, to, _ string) {
				testutil.Offer(delivering, to)
			}},
		}})
		n := negotiate(t, tc.nodes[0].url)
		s := testutil.Receive(t, sessions, "the session's Serve")
		ctx, cancel := context.WithTimeout(context.Background(), 3*testutil.Wait)
		defer cancel()
		type result struct {
			a   answer
			err error
		}
		poll := func(node int, ticket string, attempt uint64) chan result {
			ch := make(chan result, 1)
			go func() {
				a, err := rawPoll(ctx, tc.nodes[node].url, n, ticket, attempt)
				ch <- result{a, err}
			}()
			return ch
		}
		older := poll(1, n.Tickets[0], 1)
		if to := testutil.Receive(t, delivering, "the first poll delivering"); to != comet.LongPoll {
			t.Fatalf("delivering on %q", to)
		}
		newer := poll(2, n.Tickets[1], 2)
		o := testutil.Receive(t, older, "the older poll's answer")
		if o.err != nil || o.a.status != http.StatusOK {
			t.Fatalf("older poll: %v %v", o.a, o.err)
		}
		if !strings.HasSuffix(strings.TrimSpace(o.a.body), `["s"]`) {
			t.Errorf("older poll's answer %q does not end with [\"s\"]", o.a.body)
		}
		if err := s.Send(ctx, comet.Text, []byte("only once")); err != nil {
			t.Fatal(err)
		}
		nw := testutil.Receive(t, newer, "the newer poll's answer")
		if nw.err != nil || nw.a.status != http.StatusOK {
			t.Fatalf("newer poll: %v %v", nw.a, nw.err)
		}
		texts := func(body string) (out []string) {
			frames, err := transport.DecodeBatch([]byte(body))
			if err != nil {
				t.Fatalf("answer %q: %v", body, err)
			}
			for _, f := range frames {
				if f.Type == transport.TypeText {
					out = append(out, string(f.Payload))
				}
			}
			return out
		}
		if got := texts(o.a.body); len(got) != 0 {
			t.Errorf("the superseded poll carried messages %q", got)
		}
		if got := texts(nw.a.body); len(got) != 1 || got[0] != "only once" {
			t.Errorf("the newer poll carried %q, want the message once", got)
		}
	})
	// The same POST, message 1, through node 2 and again through node 3,
	// as a client retries one whose answer it lost: the application gets
	// the message once.
	t.Run("retried POST", func(t *testing.T) {
		t.Parallel()
		got := make(chan string, 8)
		tc := newTestCluster(t, startRedis(t), clusterOpts{Refresh: DefaultRefresh, OpTimeout: DefaultOpTimeout, LeaseTTL: DefaultLeaseTTL, Session: comet.Options{
			Serve: func(s *comet.Session) {
				for {
					_, p, err := s.Recv(s.Context())
					if err != nil {
						return
					}
					got <- string(p)
				}
			},
		}})
		n := negotiate(t, tc.nodes[0].url)
		ctx, cancel := context.WithTimeout(context.Background(), 3*testutil.Wait)
		defer cancel()
		msg := func(seq uint64, p string) *transport.Frame {
			return &transport.Frame{Type: transport.TypeText, Seq: seq, Payload: []byte(p)}
		}
		for _, node := range []int{1, 2} {
			if a, err := rawPost(ctx, tc.nodes[node].url, n, msg(1, "x")); err != nil || a.status != http.StatusOK {
				t.Fatalf("POST of message 1 through node %d: %v %v", node+1, a, err)
			}
		}
		if a, err := rawPost(ctx, tc.nodes[1].url, n, msg(2, "y")); err != nil || a.status != http.StatusOK {
			t.Fatalf("POST of message 2: %v %v", a, err)
		}
		for _, want := range []string{"x", "y"} {
			if m := testutil.Receive(t, got, "message "+want); m != want {
				t.Fatalf("the application got %q, want %q", m, want)
			}
		}
	})
}

// switchFront is a front that sends negotiates to one node while toFirst
// is set, and every other request, round robin, to the others: a client
// whose session the first node owns, reached only through the others.
type switchFront struct {
	toFirst atomic.Bool
	first   *httputil.ReverseProxy
	others  *httputil.ReverseProxy
}

func (f *switchFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.toFirst.Load() && strings.HasSuffix(r.URL.Path, "/negotiate") {
		f.first.ServeHTTP(w, r)
		return
	}
	f.others.ServeHTTP(w, r)
}

// TestClusterNodeLoss stops a node's lease refresh, as a hung node's: the
// other nodes answer 404 session_not_found for its sessions within
// LeaseTTL + Refresh (+ a second), and a client with Reconnect gets a
// *client.GapError and goes on, in order, on a fresh session that
// another node owns.
func TestClusterNodeLoss(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, startRedis(t), clusterOpts{Session: comet.Options{BrokerTimeout: shortBroker}})
	n1 := tc.nodes[0]
	sf := &switchFront{first: conformance.RoundRobin([]string{n1.srv.URL}),
		others: conformance.RoundRobin([]string{tc.nodes[1].srv.URL, tc.nodes[2].srv.URL})}
	sf.toFirst.Store(true)
	front := httptest.NewServer(sf)
	t.Cleanup(func() {
		front.CloseClientConnections()
		front.Close()
	})
	runs := startClients(t, front.URL+n1.h.Options().Prefix, client.Options{Reconnect: true, SeparateNegotiate: true})
	eachClient(t, runs, func(t *testing.T, r *run) {
		if id := r.c.SessionID(); !strings.HasPrefix(id, n1.b.Node()+".") {
			t.Fatalf("session %s not node 1's", id)
		}
		r.traf.flowing(t, 50, testutil.Wait, "before the loss")
	})
	raw := negotiate(t, n1.url)
	sf.toFirst.Store(false)

	n1.b.paused.Store(true)
	lost := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*testutil.Wait)
	defer cancel()
	gone := pollUntil(t, lost, testTTL+testRefresh+time.Second, "404 for node 1's session through node 2", func() bool {
		a, _ := rawPost(ctx, tc.nodes[1].url, raw)
		return a.status == http.StatusNotFound && a.code == transport.CodeSessionNotFound
	})
	t.Logf("node lost: 404 through node 2 after %v (LeaseTTL %v + Refresh %v)", gone.Round(time.Millisecond), testTTL, testRefresh)
	eachClient(t, runs, func(t *testing.T, r *run) {
		// The client waits 1 s, jittered, before a fresh session.
		gap, at := r.traf.waitGap(t, 3*testutil.Wait)
		r.traf.flowing(t, 50, testutil.Wait, "after the gap")
		t.Logf("%s: GapError %v after the loss: %v", r.tr, at.Sub(lost).Round(time.Millisecond), gap)
		if closeCode(gap.Close) != comet.CloseSessionExpired {
			t.Errorf("gap after %v, want close %d", gap.Close, comet.CloseSessionExpired)
		}
		if strings.HasPrefix(gap.SessionID, n1.b.Node()+".") || gap.SessionID != r.c.SessionID() {
			t.Errorf("fresh session %s (the Conn's %s) on the lost node", gap.SessionID, r.c.SessionID())
		}
		if err := r.traf.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestClusterHygiene checks what idle sessions cost Redis: no key per
// session (the registry, <prefix>:nodes, and the store's generation,
// <prefix>:gen, are the only keys, sessions open or ended), no memory,
// and no commands.
func TestClusterHygiene(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	// The production timing, so that the count of commands is what an
	// idle node of a deployment costs, and a refresh late on a loaded
	// machine does not make the nodes refuse negotiates.
	tc := newTestCluster(t, r, clusterOpts{LeaseTTL: DefaultLeaseTTL, Refresh: DefaultRefresh, OpTimeout: DefaultOpTimeout,
		Session: comet.Options{AttachTimeout: 5 * time.Minute, Grace: 5 * time.Minute}})
	a := admin(t, r)
	ctx := context.Background()
	keys := func(when string) {
		t.Helper()
		var all []string
		iter := a.Scan(ctx, 0, "*", 100).Iterator()
		for iter.Next(ctx) {
			all = append(all, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
		slices.Sort(all)
		if !slices.Equal(all, []string{"comet:gen", "comet:nodes"}) {
			t.Errorf("%s: keys %q, want only comet:gen and comet:nodes", when, all)
		}
	}
	usedMemory := func() int64 {
		t.Helper()
		info, err := a.Info(ctx, "memory").Result()
		if err != nil {
			t.Fatal(err)
		}
		v, _ := strconv.ParseInt(infoField(info, "used_memory"), 10, 64)
		return v
	}
	// commandRate counts the commands Redis runs over d, less INFO's own.
	commandRate := func(d time.Duration) float64 {
		t.Helper()
		calls := func() (int64, time.Time) {
			info, err := a.Info(ctx, "commandstats").Result()
			if err != nil {
				t.Fatal(err)
			}
			var n int64
			for line := range strings.SplitSeq(info, "\n") {
				name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
				if !ok || name == "cmdstat_info" {
					continue
				}
				v, _ := strconv.ParseInt(strings.Split(rest, ",")[0], 10, 64)
				n += v
			}
			return n, time.Now()
		}
		n0, t0 := calls()
		<-time.After(d) // a window of time to count over, not an event
		n1, t1 := calls()
		return float64(n1-n0) / t1.Sub(t0).Minutes()
	}

	const sessions = 1000
	const span = 3 * time.Second
	idleRate := commandRate(span)
	before := usedMemory()
	nctx, cancel := context.WithTimeout(ctx, 3*testutil.Wait)
	defer cancel()
	errs := make(chan error, sessions)
	work := make(chan int)
	for range 16 {
		go func() {
			for i := range work {
				ans, n, err := rawNegotiate(nctx, tc.nodes[i%len(tc.nodes)].url)
				if err == nil && n == nil && isBrokerUnavailable(ans) {
					// As a client does, once: a node of a loaded machine
					// may find its last refresh late.
					ans, n, err = rawNegotiate(nctx, tc.nodes[(i+1)%len(tc.nodes)].url)
				}
				if err == nil && n == nil {
					err = errors.New(ans.String())
				}
				errs <- err
			}
		}()
	}
	go func() {
		for i := range sessions {
			work <- i
		}
		close(work)
	}()
	for range sessions {
		if err := <-errs; err != nil {
			t.Fatalf("negotiate: %v", err)
		}
	}
	after := usedMemory()
	busyRate := commandRate(span)
	keys("with 1,000 idle sessions")
	perSession := float64(after-before) / sessions
	perMinute := (busyRate - idleRate) / sessions
	t.Logf("Redis used_memory %d → %d bytes: %.1f bytes per idle session", before, after, perSession)
	t.Logf("Redis commands per minute: %.0f with no session, %.0f with %d idle: %.3f per idle session per minute (the nodes' own refreshes and pings: %.0f/min)",
		idleRate, busyRate, sessions, perMinute, idleRate)
	if perSession > 100 {
		t.Errorf("%.1f bytes of Redis memory per idle session, want ~0", perSession)
	}
	if perMinute > 1 {
		t.Errorf("%.3f Redis commands per idle session per minute, want ~0", perMinute)
	}
	for _, n := range tc.nodes {
		sctx, cancel := context.WithTimeout(ctx, testutil.Wait)
		n.h.Shutdown(sctx)
		cancel()
	}
	keys("after every session ended")
}

// infoField returns the value of field in the text of INFO.
func infoField(info, field string) string {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}
