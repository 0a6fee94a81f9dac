package session

import (
	"context"
	"sync"
	"testing"

	"github.com/seed-544bbf9f/comet/transport"
)

// lossyStore is a topicStore whose live delivery the test drives: it
// keeps every publication in a history, and delivers only those the test
// hands to the hub, as a broker that loses some would.
type lossyStore struct {
	mu    sync.Mutex
	epoch string
	pubs  []Publication
}

func (l *lossyStore) Publish(_ context.Context, _ string, data []byte, _ HistoryLimits) (transport.TopicPosition, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := Publication{Position: transport.TopicPosition{Epoch: l.epoch, Offset: uint64(len(l.pubs) + 1)}, Data: data}
	l.pubs = append(l.pubs, p)
	return p.Position, nil
}

func (l *lossyStore) Subscribe(context.Context, string) error   { return nil }
func (l *lossyStore) Unsubscribe(context.Context, string) error { return nil }

func (l *lossyStore) History(_ context.Context, _ string, after transport.TopicPosition, _ HistoryLimits) (
	[]Publication, transport.TopicPosition, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	top := transport.TopicPosition{Epoch: l.epoch, Offset: uint64(len(l.pubs))}
	if after.Epoch != l.epoch {
		return nil, top, false, nil
	}
	return append([]Publication(nil), l.pubs[after.Offset:]...), top, true, nil
}

// TestTopicGapRepaired loses a publication between the store and the hub:
// the next one reveals the gap, and the subscriber gets the lost one from
// the history first, then the rest, in order, each once; with positions
// agreed, each frame carries its position.
func TestTopicGapRepaired(t *testing.T) {
	h := newTestHandler(t, &Options{})
	store := &lossyStore{epoch: "e1"}
	h.topics = newTopics(h, store)
	s := newTestSession(t, h)
	s.positions = true
	a := attachStream(t, s, deliver(1, 0))
	a.ds.expect(t, `["o",1,0,"T",25000]`)
	if rec, err := s.Subscribe(context.Background(), "news"); err != nil || !rec {
		t.Fatalf("Subscribe: %v, %v", rec, err)
	}
	a.ds.expect(t, `["y",1,"news","e1",0,1]`)
	var ps []Publication
	for _, m := range []string{"a", "b", "c", "d"} {
		pos, _ := store.Publish(context.Background(), "news", encodePublication(transport.Text, []byte(m)), HistoryLimits{})
		ps = append(ps, Publication{Position: pos, Data: encodePublication(transport.Text, []byte(m))})
	}
	h.topics.publication("news", ps[0])
	h.topics.publication("news", ps[2]) // b is lost: a gap
	h.topics.publication("news", ps[3])
	h.topics.publication("news", ps[2]) // and c comes twice
	a.ds.expect(t,
		`["m",2,"a","news","e1",1]`, `["m",3,"b","news","e1",2]`,
		`["m",4,"c","news","e1",3]`, `["m",5,"d","news","e1",4]`)
	// Nothing came twice: the next frame is the next message.
	mustSend(t, s, "end")
	a.ds.expect(t, `["m",6,"end"]`)
}

// TestTopicWithoutPositions subscribes a session whose client did not ask
// for positions: it gets the topic's messages as plain messages, and no
// subscribed frame.
func TestTopicWithoutPositions(t *testing.T) {
	h := newTestHandler(t, &Options{})
	s := newTestSession(t, h)
	a := attachStream(t, s, deliver(1, 0))
	a.ds.expect(t, `["o",1,0,"T",25000]`)
	if _, err := s.Subscribe(context.Background(), "news"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Publish(context.Background(), "news", transport.Text, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	a.ds.expect(t, `["m",1,"hi"]`)
	s.Unsubscribe("news")
	if _, err := h.Publish(context.Background(), "news", transport.Text, []byte("gone")); err != nil {
		t.Fatal(err)
	}
	mustSend(t, s, "direct")
	a.ds.expect(t, `["m",2,"direct"]`)
	if n := len(h.topics.m); n != 0 {
		t.Fatalf("%d topics held after the last subscriber left", n)
	}
}

// TestTopicSlowSubscriber fills a subscriber's window: the next message of
// the topic closes it with 3002 rather than skip.
func TestTopicSlowSubscriber(t *testing.T) {
	h := newTestHandler(t, &Options{WindowMessages: 2})
	s := newTestSession(t, h)
	if _, err := s.Subscribe(context.Background(), "news"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		h.Publish(context.Background(), "news", transport.Text, []byte("x"))
	}
	_, _, err := s.Recv(context.Background())
	if ce := closeError(t, err); ce.Code != transport.CloseSlowConsumer {
		t.Fatalf("closed with %v, want 3002", ce)
	}
}

func TestInvalidTopic(t *testing.T) {
	h := newTestHandler(t, &Options{})
	s := newTestSession(t, h)
	for _, name := range []string{"", string(make([]byte, MaxTopic+1)), "\xff"} {
		if _, err := s.Subscribe(context.Background(), name); err == nil {
			t.Errorf("Subscribe(%q) succeeded", name)
		}
		if _, err := h.Publish(context.Background(), name, transport.Text, nil); err == nil {
			t.Errorf("Publish(%q) succeeded", name)
		}
	}
}
