package comet_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// subscriber is a Serve that subscribes its session to topic, reports
// whether the topic was recovered, then waits for the session's end.
func subscriber(topic string, subscribed chan<- bool) func(*session.Session) {
	return func(s *session.Session) {
		rec, err := s.Subscribe(s.Context(), topic)
		if err != nil {
			return
		}
		subscribed <- rec
		<-s.Context().Done()
	}
}

// recvTopic receives n messages of a topic and returns their payloads.
func recvTopic(ctx context.Context, t *testing.T, c *client.Conn, topic string, n int) []string {
	t.Helper()
	var got []string
	for len(got) < n {
		m, err := c.RecvMessage(ctx)
		if err != nil {
			t.Fatalf("after %d messages: %v", len(got), err)
		}
		if m.Topic != topic {
			t.Fatalf("message %q of topic %q, want %q", m.Data, m.Topic, topic)
		}
		got = append(got, string(m.Data))
	}
	return got
}

func numbered(prefix string, from, to int) []string {
	var s []string
	for i := from; i < to; i++ {
		s = append(s, fmt.Sprintf("%s %d", prefix, i))
	}
	return s
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestTopicsSingleNode publishes to a topic on one node: every subscriber,
// on every transport, gets every message once, in order, with its topic.
func TestTopicsSingleNode(t *testing.T) {
	subscribed := make(chan bool, 8)
	h := comet.NewHandler(&comet.Options{Serve: subscriber("news", subscribed), NegotiateRate: -1})
	srv := httptest.NewServer(h)
	t.Cleanup(func() { shutdown(t, h); srv.Close() })
	ctx := testContext(t, testutil.Wait)
	var conns []*client.Conn
	for _, name := range transport.Order() {
		c, err := client.Dial(ctx, srv.URL+"/comet", &client.Options{Transports: []string{name}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(transport.CloseNormal, "")
		conns = append(conns, c)
		<-subscribed
	}
	want := numbered("news", 0, 50)
	for _, m := range want {
		if _, err := h.Publish(ctx, "news", transport.Text, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range conns {
		if got := recvTopic(ctx, t, c, "news", len(want)); !equalStrings(got, want) {
			t.Fatalf("%s subscriber got %q", transport.Order()[i], got)
		}
		if pos := c.Positions()["news"]; pos.Offset != 50 || pos.Epoch == "" {
			t.Errorf("position after 50 messages: %+v", pos)
		}
	}
}

// TestTopicsCluster publishes to a topic from every node of a memory
// cluster, concurrently: each subscriber, wherever its session lives,
// gets every message once, and all of them in the one same order.
func TestTopicsCluster(t *testing.T) {
	subscribed := make(chan bool, 64)
	mc := newMemCluster(t, 3, &session.Options{Serve: subscriber("chat", subscribed)})
	ctx := testContext(t, testutil.Wait)
	const sessions, each = 24, 40
	var conns []*client.Conn
	for i := range sessions {
		name := transport.Order()[i%4]
		c, err := client.Dial(ctx, mc.url, &client.Options{Transports: []string{name}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(transport.CloseNormal, "")
		conns = append(conns, c)
		<-subscribed
	}
	var wg sync.WaitGroup
	for n, h := range mc.handlers {
		wg.Go(func() {
			for i := range each {
				if _, err := h.Publish(ctx, "chat", transport.Text, fmt.Appendf(nil, "node%d %d", n, i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	var first []string
	for i, c := range conns {
		got := recvTopic(ctx, t, c, "chat", len(mc.handlers)*each)
		seen := map[string]bool{}
		for _, m := range got {
			if seen[m] {
				t.Fatalf("subscriber %d got %q twice", i, m)
			}
			seen[m] = true
		}
		if first == nil {
			first = got
		} else if !equalStrings(got, first) {
			t.Fatalf("subscriber %d got another order than subscriber 0", i)
		}
		if pos := c.Positions()["chat"]; pos.Offset != uint64(len(got)) {
			t.Errorf("subscriber %d: position %+v after %d messages", i, pos, len(got))
		}
	}
}

// TestTopicsRecover ends a subscriber's session, publishes while it is
// away, and opens a fresh session on another node with its positions:
// it gets exactly the messages it missed, then the live ones. A client
// whose position the history no longer holds is told so, once, and gets
// the live messages after.
func TestTopicsRecover(t *testing.T) {
	subscribed := make(chan bool, 8)
	mc := newMemCluster(t, 3, &session.Options{Serve: subscriber("feed", subscribed), TopicHistory: 20})
	ctx := testContext(t, testutil.Wait)
	c1, err := client.Dial(ctx, mc.direct[0], &client.Options{Transports: []string{transport.LongPoll}})
	if err != nil {
		t.Fatal(err)
	}
	<-subscribed
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := mc.handlers[i%3].Publish(ctx, "feed", transport.Text, fmt.Appendf(nil, "feed %d", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(0, 10)
	recvTopic(ctx, t, c1, "feed", 10)
	positions := c1.Positions()
	c1.Close(transport.CloseNormal, "")
	publish(10, 25) // 15 missed, within the history of 20

	c2, err := client.Dial(ctx, mc.direct[1], &client.Options{Topics: positions, Transports: []string{transport.SSE}})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close(transport.CloseNormal, "")
	if !<-subscribed {
		t.Fatal("Subscribe did not recover 15 missed messages of a history of 20")
	}
	publish(25, 30)
	if got, want := recvTopic(ctx, t, c2, "feed", 20), numbered("feed", 10, 30); !equalStrings(got, want) {
		t.Fatalf("resumed subscriber got %q, want %q", got, want)
	}

	publish(30, 35)
	recvTopic(ctx, t, c2, "feed", 5)
	stale := maps.Clone(positions) // at offset 10: 25 behind, past the history of 20
	c3, err := client.Dial(ctx, mc.direct[2], &client.Options{Topics: stale, Transports: []string{transport.WebSocket}})
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close(transport.CloseNormal, "")
	if <-subscribed {
		t.Fatal("Subscribe reported recovered for a position past the history")
	}
	_, err = c3.RecvMessage(ctx)
	var gap *client.TopicGapError
	if !errors.As(err, &gap) || gap.Topic != "feed" || gap.Position.Offset != 35 {
		t.Fatalf("stale subscriber's first Recv: %v, want a TopicGapError for feed at 35", err)
	}
	publish(35, 37)
	if got, want := recvTopic(ctx, t, c3, "feed", 2), numbered("feed", 35, 37); !equalStrings(got, want) {
		t.Fatalf("stale subscriber then got %q, want %q", got, want)
	}
}

func shutdown(t *testing.T, h *session.Handler) {
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
	defer cancel()
	h.Range(func(s *session.Session) bool { s.CloseNow(); return true })
	if err := h.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}
