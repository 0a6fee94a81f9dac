package redis

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/seed-544bbf9f/comet/internal/leakcheck"
	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/session"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// The timing of the tests' brokers: short, so that leases lapse and
// failures show quickly, and LeaseTTL > Refresh + OpTimeout as New wants.
const (
	testTTL       = 600 * time.Millisecond
	testRefresh   = 100 * time.Millisecond
	testOpTimeout = 300 * time.Millisecond
)

// The timing of the brokers of whole clusters under traffic (conformance,
// topics): a loaded machine must not starve a refresh into a 503, and no
// test of theirs waits for a lease to lapse.
const (
	clusterTTL       = 3 * time.Second
	clusterRefresh   = 250 * time.Millisecond
	clusterOpTimeout = time.Second
)

// startRedis starts a redis-server as production should run one for
// Comet: evicting nothing.
func startRedis(t testing.TB, extra ...string) *testutil.Redis {
	return testutil.StartRedis(t, append([]string{"--maxmemory-policy", "noeviction"}, extra...)...)
}

func redisURL(r *testutil.Redis) string { return "redis://" + r.Addr + "/0" }

// recorder is a Receiver that queues what it is given. Its queues are
// large enough for every test; an overflow is counted, never blocks.
type recorder struct {
	msgs    chan string
	gone    chan string
	pubs    chan topicPub
	dropped atomic.Int64
	lapsed  atomic.Int64
	// storeLost counts StoreLost calls.
	storeLost atomic.Int64
}

// topicPub is a publication a recorder was given.
type topicPub struct {
	topic string
	p     session.Publication
}

func newRecorder() *recorder {
	return &recorder{msgs: make(chan string, 1<<15), gone: make(chan string, 64), pubs: make(chan topicPub, 1<<15)}
}

func (r *recorder) Publication(topic string, p session.Publication) {
	select {
	case r.pubs <- topicPub{topic, p}:
	default:
		r.dropped.Add(1)
	}
}

func (r *recorder) Deliver(msg string) {
	select {
	case r.msgs <- msg:
	default:
		r.dropped.Add(1)
	}
}

func (r *recorder) LeaseLapsed() { r.lapsed.Add(1) }

func (r *recorder) StoreLost() { r.storeLost.Add(1) }

func (r *recorder) NodeGone(node string) {
	select {
	case r.gone <- node:
	default:
		r.dropped.Add(1)
	}
}

// start makes and starts a Broker on o, with the tests' timing where o
// leaves it zero, closed when the test ends.
func start(t testing.TB, o Options) (*Broker, *recorder) {
	t.Helper()
	if o.LeaseTTL == 0 {
		o.LeaseTTL = testTTL
	}
	if o.Refresh == 0 {
		o.Refresh = testRefresh
	}
	if o.OpTimeout == 0 {
		o.OpTimeout = testOpTimeout
	}
	if o.Logger == nil {
		o.Logger = testutil.Logger(t)
	}
	b, err := New(&o)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	b.Start(rec)
	t.Cleanup(func() { b.Close() })
	return b, rec
}

// startN starts n brokers on r and waits until each sees all alive.
func startN(t testing.TB, r *testutil.Redis, n int, o Options) ([]*Broker, []*recorder) {
	t.Helper()
	o.URL = redisURL(r)
	var bs []*Broker
	var recs []*recorder
	for range n {
		b, rec := start(t, o)
		bs, recs = append(bs, b), append(recs, rec)
	}
	waitUntil(t, "every broker sees every node alive", func() bool {
		for _, b := range bs {
			for _, c := range bs {
				if !b.Alive(c.Node()) {
					return false
				}
			}
		}
		return true
	})
	return bs, recs
}

// waitUntil polls cond, the state a broker keeps of Redis, every 10 ms
// until it holds, failing the test after testutil.Wait.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(testutil.Wait)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("not within %v: %s", testutil.Wait, what)
		}
	}
}

// recv returns the next value of ch, failing the test after bound.
func recv(t testing.TB, ch <-chan string, bound time.Duration, what string) string {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(bound):
		t.Fatalf("no %s within %v", what, bound)
		return ""
	}
}

// flows sends to dest from from, again every 100 ms, until dest's
// recorder gets one of the messages: PUB/SUB loses what is sent while a
// subscriber reconnects, so the first few may go nowhere. Messages from
// before, still queued, are skipped.
func flows(t testing.TB, from, dest *Broker, rec *recorder) {
	t.Helper()
	want := fmt.Sprintf("probe %s→%s %d", from.Node(), dest.Node(), time.Now().UnixNano())
	deadline := time.After(testutil.Wait)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
		lastErr = from.Send(ctx, dest.Node(), []byte(want))
		cancel()
		for waiting := true; waiting; {
			select {
			case m := <-rec.msgs:
				if m == want {
					return
				}
			case <-tick.C:
				waiting = false
			case <-deadline:
				t.Fatalf("no message from %s reached %s within %v (last Send: %v)", from.Node(), dest.Node(), testutil.Wait, lastErr)
			}
		}
	}
}

// admin returns a plain client of r, for a test to act on the server.
func admin(t testing.TB, r *testutil.Redis, opts ...func(*goredis.Options)) *goredis.Client {
	o := &goredis.Options{Addr: r.Addr, MaxRetries: -1}
	for _, f := range opts {
		f(o)
	}
	c := goredis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

func errContains(err error, s string) bool {
	return err != nil && strings.Contains(err.Error(), s)
}

// idleClient returns a client of nothing, for tests that never use it.
func idleClient(t testing.TB) *goredis.Client {
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { c.Close() })
	return c
}
