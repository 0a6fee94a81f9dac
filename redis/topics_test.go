package redis

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

var testLimits = session.HistoryLimits{Size: 100, Age: time.Minute}

// TestTopicPublishHistory checks the broker's topic calls: publications
// reach a subscribed node in order, the history gives them back, and one
// trimmed by count is reported incomplete.
func TestTopicPublishHistory(t *testing.T) {
	r := startRedis(t)
	bs, recs := startN(t, r, 2, Options{})
	ctx := testContext(t)
	if err := bs[1].Subscribe(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	var first transport.TopicPosition
	for i := range 150 {
		pos, err := bs[0].Publish(ctx, "t1", fmt.Appendf(nil, "m%d", i), testLimits)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = pos
		}
		if pos.Offset != uint64(i+1) || pos.Epoch != first.Epoch {
			t.Fatalf("publication %d at %+v", i, pos)
		}
	}
	for i := range 150 {
		select {
		case got := <-recs[1].pubs:
			if got.topic != "t1" || got.p.Position.Offset != uint64(i+1) || string(got.p.Data) != fmt.Sprintf("m%d", i) {
				t.Fatalf("publication %d: %+v", i, got)
			}
		case <-ctx.Done():
			t.Fatalf("publication %d never came", i)
		}
	}
	pubs, top, complete, err := bs[1].History(ctx, "t1", transport.TopicPosition{Epoch: first.Epoch, Offset: 140}, testLimits)
	if err != nil || !complete || top.Offset != 150 || len(pubs) != 10 || string(pubs[0].Data) != "m140" {
		t.Fatalf("history after 140: %d publications, top %+v, complete %v, %v", len(pubs), top, complete, err)
	}
	_, _, complete, _ = bs[1].History(ctx, "t1", transport.TopicPosition{Epoch: first.Epoch, Offset: 20}, testLimits)
	if complete {
		t.Fatal("history after 20 of 150 kept 100 but is complete")
	}
	_, _, complete, _ = bs[1].History(ctx, "t1", transport.TopicPosition{Epoch: "other", Offset: 149}, testLimits)
	if complete {
		t.Fatal("history of another epoch is complete")
	}
}

// cluster is n nodes on one Redis, each its own handler and server.
type cluster struct {
	handlers []*session.Handler
	brokers  []*Broker
	urls     []string
}

func startCluster(t *testing.T, r *testutil.Redis, n int, opts *session.Options) *cluster {
	t.Helper()
	c := &cluster{}
	for i := range n {
		b, err := New(&Options{URL: redisURL(r), Node: fmt.Sprintf("%s-%d", shortName(t), i+1),
			LeaseTTL: clusterTTL, Refresh: clusterRefresh, OpTimeout: clusterOpTimeout, Logger: testutil.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		o := *opts
		o.Broker, o.NegotiateRate, o.Logger = b, -1, testutil.Logger(t)
		h := comet.NewHandler(&o)
		srv := httptest.NewServer(h)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
			defer cancel()
			h.Range(func(s *session.Session) bool { s.CloseNow(); return true })
			h.Shutdown(ctx)
			srv.CloseClientConnections()
			srv.Close()
			b.Close()
		})
		c.handlers, c.brokers, c.urls = append(c.handlers, h), append(c.brokers, b), append(c.urls, srv.URL+"/comet")
	}
	waitUntil(t, "every node joined", func() bool {
		for _, b := range c.brokers {
			if b.Err() != nil {
				return false
			}
			for _, o := range c.brokers {
				if !b.Alive(o.Node()) {
					return false
				}
			}
		}
		return true
	})
	return c
}

// awaitSubscribed returns the outcome of the next Subscribe a subscribe
// Serve reports, failing the test if none comes within ctx (a Subscribe
// that failed reports none).
func awaitSubscribed(t *testing.T, ctx context.Context, subscribed <-chan bool) bool {
	t.Helper()
	select {
	case rec := <-subscribed:
		return rec
	case <-ctx.Done():
		t.Fatal("no session subscribed: a Subscribe failed")
		return false
	}
}

// subscribe is a Serve that subscribes to topic and reports the outcome.
func subscribe(topic string, out chan<- bool) func(*session.Session) {
	return func(s *session.Session) {
		rec, err := s.Subscribe(s.Context(), topic)
		if err != nil {
			return
		}
		out <- rec
		<-s.Context().Done()
	}
}

// TestTopicsAcrossNodes subscribes 300 sessions, 100 on each of three nodes,
// and publishes from every node and from a worker that holds no sessions:
// every subscriber gets every publication exactly once, all in one order.
func TestTopicsAcrossNodes(t *testing.T) {
	r := startRedis(t)
	subscribed := make(chan bool, 300)
	c := startCluster(t, r, 3, &session.Options{Serve: subscribe("room", subscribed)})
	ctx := testContext(t)
	const sessions, each = 300, 20
	conns := make([]*client.Conn, sessions)
	var dialed sync.WaitGroup
	for i := range sessions {
		dialed.Go(func() {
			// Mostly WebSocket, the cheapest here; some of each other.
			name := transport.WebSocket
			if i%10 < 3 {
				name = transport.Order()[1+i%3]
			}
			conn, err := client.Dial(ctx, c.urls[i%3], &client.Options{Transports: []string{name}})
			if err != nil {
				t.Error(err)
				return
			}
			conns[i] = conn
			t.Cleanup(func() { conn.Close(transport.CloseNormal, "") })
		})
	}
	dialed.Wait()
	if t.Failed() {
		return
	}
	for i := range sessions {
		select {
		case <-subscribed:
		case <-ctx.Done():
			t.Fatalf("%d of %d sessions subscribed: a Subscribe failed", i, sessions)
		}
	}
	worker, err := New(&Options{URL: redisURL(r), Node: shortName(t) + "-w", OpTimeout: testOpTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer worker.Close()
	var wg sync.WaitGroup
	for n, h := range c.handlers {
		wg.Go(func() {
			for i := range each {
				if _, err := h.Publish(ctx, "room", transport.Text, fmt.Appendf(nil, "node%d %d", n, i)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Go(func() {
		for i := range each {
			if _, err := session.Publish(ctx, worker, "room", transport.Text, fmt.Appendf(nil, "worker %d", i),
				session.HistoryLimits{Size: 1000, Age: 10 * time.Minute}); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	total := (len(c.handlers) + 1) * each
	var first []string
	start := time.Now()
	for i, conn := range conns {
		var got []string
		seen := map[string]bool{}
		for len(got) < total {
			m, err := conn.RecvMessage(ctx)
			if err != nil {
				t.Fatalf("subscriber %d after %d: %v", i, len(got), err)
			}
			if seen[string(m.Data)] {
				t.Fatalf("subscriber %d got %q twice", i, m.Data)
			}
			seen[string(m.Data)] = true
			got = append(got, string(m.Data))
		}
		if first == nil {
			first = got
		} else if fmt.Sprint(got) != fmt.Sprint(first) {
			t.Fatalf("subscriber %d got another order", i)
		}
	}
	t.Logf("%d subscribers on 3 nodes got %d publications each (%d deliveries); receiving took %v",
		sessions, total, sessions*total, time.Since(start).Round(time.Millisecond))
}

// TestTopicRecoverAfterNodeLoss loses the node of a subscriber's session:
// the client, reconnecting, opens a fresh session on another node,
// presents its position, and gets every message published meanwhile, in
// order; a client behind the history's bound is told it was not.
func TestTopicRecoverAfterNodeLoss(t *testing.T) {
	r := startRedis(t)
	subscribed := make(chan bool, 8)
	c := startCluster(t, r, 3, &session.Options{Serve: subscribe("feed", subscribed), TopicHistory: 30})
	ctx := testContext(t)
	// The client dials node 1; once node 1 is gone, its requests go to
	// node 2, as a balancer's would.
	conn, err := client.Dial(ctx, c.urls[0], &client.Options{Transports: []string{transport.LongPoll}, Reconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(transport.CloseNormal, "")
	awaitSubscribed(t, ctx, subscribed)
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := c.handlers[1+i%2].Publish(ctx, "feed", transport.Text, fmt.Appendf(nil, "feed %d", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(0, 5)
	for i := range 5 {
		if m, err := conn.RecvMessage(ctx); err != nil || string(m.Data) != fmt.Sprintf("feed %d", i) {
			t.Fatalf("message %d: %q, %v", i, m.Data, err)
		}
	}
	positions := conn.Positions()
	conn.Close(transport.CloseNormal, "")

	// The node dies: its broker's lease lapses and its sessions are gone.
	c.brokers[0].Close()
	publish(5, 20)
	fresh, err := client.Dial(ctx, c.urls[1], &client.Options{Transports: []string{transport.SSE}, Topics: positions})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close(transport.CloseNormal, "")
	if !awaitSubscribed(t, ctx, subscribed) {
		t.Fatal("not recovered")
	}
	for i := 5; i < 20; i++ {
		if m, err := fresh.RecvMessage(ctx); err != nil || string(m.Data) != fmt.Sprintf("feed %d", i) || m.Topic != "feed" {
			t.Fatalf("recovered message %d: %q, %v", i, m.Data, err)
		}
	}
	publish(20, 60) // the history of 30 keeps 31–60
	stale, err := client.Dial(ctx, c.urls[2], &client.Options{Transports: []string{transport.WebSocket}, Topics: positions})
	if err != nil {
		t.Fatal(err)
	}
	defer stale.Close(transport.CloseNormal, "")
	if awaitSubscribed(t, ctx, subscribed) {
		t.Fatal("recovered past the history")
	}
	var gap *client.TopicGapError
	if _, err := stale.RecvMessage(ctx); !errors.As(err, &gap) || gap.Position.Offset != 60 {
		t.Fatalf("stale client's first Recv: %v, want a TopicGapError at 60", err)
	}
}

// testContext is a context bounded by testutil.Wait, cancelled at the
// test's end.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
	t.Cleanup(cancel)
	return ctx
}
