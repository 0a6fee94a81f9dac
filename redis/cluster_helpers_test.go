package redis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/internal/conformance"
	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/transport"
)

// allTransports are the four transports, each forced in turn.
var allTransports = []string{comet.WebSocket, comet.SSE, comet.Streaming, comet.LongPoll}

// clusterOpts configures a testCluster. Zero fields take the defaults
// noted.
type clusterOpts struct {
	// Nodes is the number of nodes. Zero: 3.
	Nodes int
	// LeaseTTL, Refresh and OpTimeout are each broker's. Zero: testTTL,
	// testRefresh, testOpTimeout.
	LeaseTTL, Refresh, OpTimeout time.Duration
	// Session is the handlers' options; Broker, Logger and (if nil)
	// Serve are set per node. Zero timing fields get short values
	// (see newTestCluster).
	Session comet.Options
	// RedisURL, if set, gives node i's Redis URL: a node dialing
	// through a proxy, say. Nil: every node dials r directly.
	RedisURL func(i int) string
}

// testNode is one node of a testCluster, on an httptest server of its own.
type testNode struct {
	b   *Broker
	h   *comet.Handler
	srv *httptest.Server
	ln  *testutil.Listener // srv's, which can cut every connection
	url string             // its mount URL
	// dead marks a node killed (testCluster.kill): the front sends it
	// nothing more.
	dead atomic.Bool
}

// testCluster is handlers on Redis brokers, each on its own httptest
// server, behind a round-robin front.
type testCluster struct {
	nodes []*testNode
	front string // the front's mount URL
}

// echo is the application: it sends every message back.
func echo(s *comet.Session) {
	ctx := s.Context()
	for {
		typ, p, err := s.Recv(ctx)
		if err != nil {
			return
		}
		if err := s.Send(ctx, typ, p); err != nil {
			return
		}
	}
}

// newTestCluster starts o.Nodes nodes on r and waits until they have
// joined. Unless o.Session says otherwise, each node has Heartbeat and
// Hold of 2 s and WriteTimeout of 2 s, so that a link whose messages the
// broker lost ends within seconds, not the defaults' tens of seconds.
func newTestCluster(t *testing.T, r *testutil.Redis, o clusterOpts) *testCluster {
	t.Helper()
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.LeaseTTL == 0 {
		o.LeaseTTL = testTTL
	}
	if o.Refresh == 0 {
		o.Refresh = testRefresh
	}
	if o.OpTimeout == 0 {
		o.OpTimeout = testOpTimeout
	}
	so := o.Session
	if so.Serve == nil {
		so.Serve = echo
	}
	for _, d := range []*time.Duration{&so.Heartbeat, &so.Hold, &so.WriteTimeout} {
		if *d == 0 {
			*d = 2 * time.Second
		}
	}
	if so.NegotiateRate == 0 {
		so.NegotiateRate = -1 // the tests negotiate from one address, fast
	}
	log := testutil.Logger(t)
	tc := &testCluster{}
	var urls []string
	for i := range o.Nodes {
		id := fmt.Sprintf("%s-n%d", shortName(t), i+1)
		u := redisURL(r)
		if o.RedisURL != nil {
			u = o.RedisURL(i)
		}
		b, err := New(&Options{URL: u, Node: id, LeaseTTL: o.LeaseTTL, Refresh: o.Refresh,
			OpTimeout: o.OpTimeout, Logger: log.With("node", id)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		ho := so
		ho.Broker = b
		ho.Logger = log.With("node", id)
		h := comet.NewHandler(&ho)
		srv := httptest.NewUnstartedServer(h)
		ln := testutil.TrackConns(srv.Listener)
		srv.Listener = ln
		srv.Start()
		n := &testNode{b: b, h: h, srv: srv, ln: ln, url: srv.URL + h.Options().Prefix}
		tc.nodes = append(tc.nodes, n)
		urls = append(urls, srv.URL)
	}
	// The nodes shut down at once: each waits a second for the closes of
	// its unattached sessions.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		for _, n := range tc.nodes {
			wg.Go(func() { n.h.Shutdown(ctx) })
		}
		wg.Wait()
		for _, n := range tc.nodes {
			n.srv.CloseClientConnections()
			n.srv.Close()
		}
	})
	waitUntil(t, "every node joined", func() bool {
		for _, n := range tc.nodes {
			if n.b.Err() != nil {
				return false
			}
			for _, m := range tc.nodes {
				if !n.b.Alive(m.b.Node()) {
					return false
				}
			}
		}
		return true
	})
	front := httptest.NewServer(conformance.RoundRobinSkipping(urls, func(i int) bool { return tc.nodes[i].dead.Load() }))
	t.Cleanup(func() {
		front.CloseClientConnections()
		front.Close()
	})
	tc.front = front.URL + tc.nodes[0].h.Options().Prefix
	return tc
}

// dial connects a Go client forced to tr, with o, to the mount URL u,
// closed when the test ends.
func dial(t *testing.T, u, tr string, o client.Options) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
	defer cancel()
	o.Transports = []string{tr}
	o.Logger = testutil.Logger(t).With("client", tr)
	c, err := client.Dial(ctx, u, &o)
	if err != nil {
		t.Fatalf("dial %s over %s: %v", u, tr, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// run is one Go client, forced to one transport, and its traffic.
type run struct {
	tr   string
	c    *client.Conn
	traf *traffic
}

// startClients dials one client per transport, with o, to the mount URL
// u, and starts traffic on each.
func startClients(t *testing.T, u string, o client.Options) []*run {
	t.Helper()
	var runs []*run
	for _, tr := range allTransports {
		c := dial(t, u, tr, o)
		r := &run{tr: tr, c: c, traf: startTraffic(c)}
		t.Cleanup(func() { r.traf.stop() })
		runs = append(runs, r)
	}
	return runs
}

// eachClient runs f for each client, in a subtest of its own, one after
// the other. The clients' traffic runs all along, so a wait in one subtest
// costs the others nothing: they are waiting for the same fault.
func eachClient(t *testing.T, runs []*run, f func(t *testing.T, r *run)) {
	for _, r := range runs {
		t.Run(r.tr, func(t *testing.T) { f(t, r) })
	}
}

// traffic runs numbered messages through an echoing session: a sender
// keeps up to window of them in flight, and a reader checks that each
// comes back once, in order. A *client.GapError is the only gap allowed:
// after one, the next message must still come later than the last one
// before it.
type traffic struct {
	c      *client.Conn
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	sent     int // the highest number handed to Send
	echoed   int // the highest number echoed, or accounted for by a gap
	received int // echoes received
	gaps     []*client.GapError
	gapAt    time.Time // when the first gap was reported
	end      error     // why the reader stopped: the client's error or a disorder
	endAt    time.Time
	mark     int       // the count a test waits for
	markAt   time.Time // when received reached mark

	wake     chan struct{} // to the sender: echoed advanced
	progress chan struct{} // to a waiting test: received advanced
	done     chan struct{} // the reader has stopped
	sender   chan struct{} // the sender has stopped
}

const window = 8

func startTraffic(c *client.Conn) *traffic {
	tr := &traffic{c: c, wake: make(chan struct{}, 1), progress: make(chan struct{}, 1),
		done: make(chan struct{}), sender: make(chan struct{})}
	tr.ctx, tr.cancel = context.WithCancel(context.Background())
	go tr.send()
	go tr.read()
	return tr
}

func (tr *traffic) send() {
	defer close(tr.sender)
	for {
		tr.mu.Lock()
		free := tr.sent-tr.echoed < window
		n := tr.sent + 1
		if free {
			tr.sent = n
		}
		tr.mu.Unlock()
		if !free {
			select {
			case <-tr.wake:
				continue
			case <-tr.ctx.Done():
				return
			}
		}
		if err := tr.c.Send(tr.ctx, comet.Text, []byte(strconv.Itoa(n))); err != nil {
			return // the reader reports the end
		}
	}
}

func (tr *traffic) read() {
	defer close(tr.done)
	defer tr.cancel()
	last := 0
	resync := false
	for {
		_, p, err := tr.c.Recv(tr.ctx)
		var gap *client.GapError
		if errors.As(err, &gap) {
			tr.mu.Lock()
			if len(tr.gaps) == 0 {
				tr.gapAt = time.Now()
			}
			tr.gaps = append(tr.gaps, gap)
			tr.echoed = tr.sent
			tr.mu.Unlock()
			resync = true
			testutil.Offer(tr.wake, struct{}{})
			testutil.Offer(tr.progress, struct{}{})
			continue
		}
		if err != nil {
			tr.stopWith(err)
			return
		}
		v, _ := strconv.Atoi(string(p))
		if resync && v <= last || !resync && v != last+1 {
			tr.stopWith(fmt.Errorf("message %q after %d (gap reported: %v)", p, last, resync))
			return
		}
		resync = false
		last = v
		tr.mu.Lock()
		tr.echoed = max(tr.echoed, v)
		tr.received++
		if tr.received == tr.mark {
			tr.markAt = time.Now()
		}
		tr.mu.Unlock()
		testutil.Offer(tr.wake, struct{}{})
		testutil.Offer(tr.progress, struct{}{})
	}
}

func (tr *traffic) stopWith(err error) {
	tr.mu.Lock()
	if tr.end == nil {
		tr.end, tr.endAt = err, time.Now()
	}
	tr.mu.Unlock()
	testutil.Offer(tr.progress, struct{}{})
}

// count returns the echoes received so far.
func (tr *traffic) count() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.received
}

// ended returns why the reader stopped, or nil while it reads.
func (tr *traffic) ended() error {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.end
}

// flowing waits until n more echoes arrive in order, failing the test
// after bound or at the traffic's end. It returns when the last of them
// arrived.
func (tr *traffic) flowing(t *testing.T, n int, bound time.Duration, what string) time.Time {
	t.Helper()
	tr.mu.Lock()
	want := tr.received + n
	tr.mark, tr.markAt = want, time.Time{}
	tr.mu.Unlock()
	deadline := time.After(bound)
	for tr.count() < want {
		if err := tr.ended(); err != nil {
			t.Fatalf("%s: traffic ended after %d echoes: %v", what, tr.count(), err)
		}
		select {
		case <-tr.progress:
		case <-deadline:
			t.Fatalf("%s: %d echoes in %v, want %d", what, tr.count()-want+n, bound, n)
		}
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.markAt
}

// waitGap waits for a *client.GapError, failing the test after bound or
// at the traffic's end, and returns it and when it came.
func (tr *traffic) waitGap(t *testing.T, bound time.Duration) (*client.GapError, time.Time) {
	t.Helper()
	deadline := time.After(bound)
	for {
		tr.mu.Lock()
		gaps, at, end := tr.gaps, tr.gapAt, tr.end
		tr.mu.Unlock()
		switch {
		case len(gaps) > 0:
			return gaps[0], at
		case end != nil:
			t.Fatalf("traffic ended without a gap: %v", end)
		}
		select {
		case <-tr.progress:
		case <-deadline:
			t.Fatalf("no gap within %v", bound)
		}
	}
}

// waitEnd waits for the traffic to end, within bound, and returns when and
// why.
func (tr *traffic) waitEnd(t *testing.T, bound time.Duration) (time.Time, error) {
	t.Helper()
	select {
	case <-tr.done:
	case <-time.After(bound):
		t.Fatalf("traffic still running %v later (%d echoes)", bound, tr.count())
	}
	<-tr.sender
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.endAt, tr.end
}

// stop ends the traffic and returns an error if the reader had stopped
// before: a disorder or an end of the session.
func (tr *traffic) stop() error {
	err := tr.ended()
	tr.cancel()
	<-tr.done
	<-tr.sender
	return err
}

// closeCode returns err's close code, or 0 if it is not a close.
func closeCode(err error) comet.CloseCode {
	var ce *comet.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

// answer is a raw HTTP answer: its status, error code (if any), Retry-After
// and body.
type answer struct {
	status     int
	code       string
	retryAfter string
	body       string
}

func (a answer) String() string {
	return fmt.Sprintf("%d %s (Retry-After %q): %.200s", a.status, a.code, a.retryAfter, a.body)
}

func readAnswer(resp *http.Response) answer {
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), body: string(body)}
	if a.status != http.StatusOK {
		var eb transport.ErrorBody
		json.Unmarshal(body, &eb)
		a.code = eb.Code
	}
	return a
}

// rawNegotiate posts a negotiate to the mount URL u.
func rawNegotiate(ctx context.Context, u string) (answer, *transport.NegotiateResponse, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u+"/negotiate?v=1", strings.NewReader(`{"codes":[3008]}`))
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, nil, err
	}
	a := readAnswer(resp)
	if a.status != http.StatusOK {
		return a, nil, nil
	}
	n, err := transport.ParseNegotiateResponse([]byte(a.body))
	return a, n, err
}

// negotiate makes a session at u, failing the test if it cannot. It
// tries again after a 503, as a client does: on a loaded machine a node
// may find its last lease refresh late.
func negotiate(t *testing.T, u string) *transport.NegotiateResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
	defer cancel()
	var n *transport.NegotiateResponse
	var a answer
	var err error
	pollUntil(t, time.Now(), testutil.Wait, "negotiate at "+u, func() bool {
		a, n, err = rawNegotiate(ctx, u)
		if err == nil && n == nil && a.status == http.StatusServiceUnavailable {
			return false
		}
		return true
	})
	if err != nil || n == nil {
		t.Fatalf("negotiate at %s: %v %v", u, a, err)
	}
	return n
}

// rawPost posts frames, after the session's key frame, for n at u.
func rawPost(ctx context.Context, u string, n *transport.NegotiateResponse, frames ...*transport.Frame) (answer, error) {
	body := transport.AppendFrame(nil, &transport.Frame{Type: transport.TypeKey, Token: n.Secret})
	for _, f := range frames {
		body = transport.AppendFrame(append(body, '\n'), f)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u+"/send?v=1&s="+url.QueryEscape(n.SessionID), bytes.NewReader(body))
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	return readAnswer(resp), nil
}

// rawPoll makes one delivering long-poll attach for n at u.
func rawPoll(ctx context.Context, u string, n *transport.NegotiateResponse, ticket string, attempt uint64) (answer, error) {
	p := transport.AttachParams{Session: n.SessionID, Ticket: ticket, Attempt: attempt, Deliver: true}
	q := url.Values{}
	p.Encode(q)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u+"/longpoll?"+q.Encode(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	return readAnswer(resp), nil
}

// pollUntil asks f every 20 ms until it reports done, and returns how
// long that took from since, failing the test after bound. f may block
// for a while (a request forwarded to an unreachable node does).
func pollUntil(t *testing.T, since time.Time, bound time.Duration, what string, f func() bool) time.Duration {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !f() {
		if time.Since(since) > bound {
			t.Fatalf("not within %v: %s", bound, what)
		}
		<-tick.C
	}
	return time.Since(since)
}

// blackHole is a TCP proxy on loopback to one address that can be made to
// black-hole: once Cut, it forwards no byte either way on any connection,
// old or new, and closes none, as a dead cable or a firewall that drops
// packets does. internal/faultproxy proxies HTTP only; this is its
// counterpart for a Redis connection.
type blackHole struct {
	ln      net.Listener
	target  string
	cut     atomic.Bool
	severed atomic.Bool

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func startBlackHole(t *testing.T, target string) *blackHole {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &blackHole{ln: ln, target: target, conns: []net.Conn{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *blackHole) Addr() string { return p.ln.Addr().String() }

// Cut stops every byte, from now on.
func (p *blackHole) Cut() { p.cut.Store(true) }

// Sever closes every connection, and every one accepted until Heal: a
// node cut off from Redis by a partition that resets, rather than drops,
// its connections. Unlike Cut's silence, it never leaves a Redis
// connection out of step with its replies.
func (p *blackHole) Sever() {
	p.severed.Store(true)
	p.mu.Lock()
	conns := p.conns
	p.conns = []net.Conn{}
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// Heal ends Sever: connections are accepted again.
func (p *blackHole) Heal() { p.severed.Store(false) }

func (p *blackHole) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		c.Close()
		return false
	}
	if p.severed.Load() {
		c.Close()
		return true
	}
	p.conns = append(p.conns, c)
	return true
}

func (p *blackHole) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(in) {
			return
		}
		if p.severed.Load() {
			continue // track closed it
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		if !p.track(out) {
			return
		}
		p.wg.Add(2)
		go p.pipe(out, in)
		go p.pipe(in, out)
	}
}

// pipe copies from src to dst until either fails, dropping what it
// reads once the proxy is cut.
func (p *blackHole) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.cut.Load() {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *blackHole) close() {
	p.ln.Close()
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	p.wg.Wait()
}
