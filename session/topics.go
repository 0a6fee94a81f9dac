package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"

	"github.com/seed-544bbf9f/comet/transport"
)

// Topics: an application subscribes sessions to topics and publishes to a
// topic from any node, or from a process with no sessions (Publish). Each
// node receives a topic's publication once, from its broker or, on a
// single node, from its own memory, and fans it out to the sessions it
// holds that subscribe: no broker subscription per session.
//
// A topic's history (Options.TopicHistory, TopicHistoryAge) lets a client
// whose session ended resume the topic in a fresh one, on any node: it
// presents its positions at negotiate (PROTOCOL.md section 15), and
// Subscribe sends what it missed before anything live, or tells it that
// those messages are gone.

// MaxTopic is the longest topic name, in bytes.
const MaxTopic = 256

// Errors of the topic calls.
var (
	// ErrInvalidTopic is returned for a topic name that is empty, longer
	// than MaxTopic, not valid UTF-8, or begins with a NUL byte (names
	// the handler keeps for itself).
	ErrInvalidTopic = errors.New("comet: invalid topic name")
)

// topicStore is where topics' histories live and publications come from:
// the cluster's broker, or this node's memory.
type topicStore interface {
	Publish(ctx context.Context, topic string, data []byte, limits HistoryLimits) (transport.TopicPosition, error)
	Subscribe(ctx context.Context, topic string) error
	Unsubscribe(ctx context.Context, topic string) error
	History(ctx context.Context, topic string, after transport.TopicPosition, limits HistoryLimits) (
		[]Publication, transport.TopicPosition, bool, error)
}

// localTopics is the topicStore of a single node.
type localTopics struct {
	mem *memoryTopics
	hub *topics
}

func (l *localTopics) Publish(ctx context.Context, topic string, data []byte, limits HistoryLimits) (transport.TopicPosition, error) {
	return l.mem.publish(topic, data, limits, func(p Publication) { l.hub.publication(topic, p) }), ctx.Err()
}

func (l *localTopics) Subscribe(context.Context, string) error   { return nil }
func (l *localTopics) Unsubscribe(context.Context, string) error { return nil }

func (l *localTopics) History(_ context.Context, topic string, after transport.TopicPosition, limits HistoryLimits) (
	[]Publication, transport.TopicPosition, bool, error) {
	pubs, top, complete := l.mem.history(topic, after, limits)
	return pubs, top, complete, nil
}

// topics is a handler's topic hub: the topics its sessions subscribe to.
type topics struct {
	h      *Handler
	store  topicStore
	limits HistoryLimits

	mu sync.Mutex
	m  map[string]*topic
}

// topic is one topic's local subscribers and where its fan-out stands.
type topic struct {
	name string
	refs int // subscribers and subscribes in progress; guarded by topics.mu

	join sync.Mutex // serialises the broker subscription's start and end

	mu        sync.Mutex
	joined    bool // the broker delivers the topic's publications here
	subs      map[*Session]*subscription
	synced    bool // epoch and last are known
	epoch     string
	last      uint64        // the offset of the last publication fanned out
	repairing bool          // a history read fills a gap; pending waits
	pending   []Publication // publications received while repairing
}

// subscription is one session's subscription to a topic.
type subscription struct {
	delivered uint64 // the offset of the last publication given to the session
}

func newTopics(h *Handler, store topicStore) *topics {
	t := &topics{h: h, store: store, m: make(map[string]*topic),
		limits: HistoryLimits{Size: h.opts.TopicHistory, Age: h.opts.TopicHistoryAge}}
	if store == nil {
		t.store = &localTopics{mem: newMemoryTopics(), hub: t}
	}
	return t
}

func checkTopic(name string) error {
	// A leading NUL is the handler's own (broadcastTopic).
	if name == "" || len(name) > MaxTopic || !utf8.ValidString(name) || name[0] == 0 {
		return fmt.Errorf("%w: %q", ErrInvalidTopic, name)
	}
	return nil
}

// acquire returns the topic, counting a user of it.
func (ts *topics) acquire(name string) *topic {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t := ts.m[name]
	if t == nil {
		t = &topic{name: name, subs: make(map[*Session]*subscription)}
		ts.m[name] = t
	}
	t.refs++
	return t
}

// release drops a user of the topic; the last one ends the broker's
// subscription and forgets the topic.
func (ts *topics) release(t *topic) {
	ts.mu.Lock()
	t.refs--
	last := t.refs == 0
	if last {
		delete(ts.m, t.name)
	}
	ts.mu.Unlock()
	if !last {
		return
	}
	t.join.Lock()
	defer t.join.Unlock()
	t.mu.Lock()
	joined := t.joined
	t.joined = false
	t.mu.Unlock()
	if joined {
		ctx, cancel := context.WithTimeout(context.Background(), ts.h.opts.BrokerTimeout)
		defer cancel()
		if err := ts.store.Unsubscribe(ctx, t.name); err != nil {
			ts.h.logger.Warn("comet: topic unsubscribe failed", "topic", t.name, "err", err)
		}
	}
}

// Subscribe subscribes the session to topic: every message published to
// it from then on, on any node, reaches the session once, in the topic's
// order. If the client presented a position for the topic at negotiate,
// the messages it missed since come first, and recovered reports whether
// all of them could be; a client that agreed to positions is told either
// way (PROTOCOL.md section 15). Subscribing again does nothing and
// reports true. ctx bounds the history read and the broker's
// subscription; a cancelled ctx ends only this call.
//
// A subscriber whose outbound window is full when a message comes is
// closed with 3002 (slow consumer): a topic never skips a message, and the
// client recovers what it missed from its positions in a fresh session.
func (s *Session) Subscribe(ctx context.Context, name string) (recovered bool, err error) {
	if err := checkTopic(name); err != nil {
		return false, err
	}
	ts := s.h.topics
	t := ts.acquire(name)
	s.mu.Lock()
	switch {
	case s.closeErr != nil:
		err = s.closeErr
	case s.subs[name] != nil:
		err = errSubscribed
	default:
		if s.subs == nil {
			s.subs = make(map[string]*topic)
		}
		s.subs[name] = t // reserved; Unsubscribe and finish release it
	}
	s.mu.Unlock()
	if err != nil {
		ts.release(t)
		if errors.Is(err, errSubscribed) {
			return true, nil
		}
		return false, err
	}
	recovered, err = ts.subscribe(ctx, t, s)
	if err != nil {
		s.mu.Lock()
		mine := s.subs[name] == t
		if mine {
			delete(s.subs, name)
		}
		s.mu.Unlock()
		if mine {
			ts.release(t)
		}
	}
	return recovered, err
}

var errSubscribed = errors.New("comet: already subscribed")

// subscribe joins the broker's subscription if need be, reads the history
// the session missed, and adds the session to the fan-out at the point
// the history ends, so that nothing is missed and nothing comes twice.
func (ts *topics) subscribe(ctx context.Context, t *topic, s *Session) (bool, error) {
	if err := ts.join(ctx, t); err != nil {
		return false, err
	}
	presented, has := s.info.Topics[t.name]
	after := presented
	if !has {
		after = transport.TopicPosition{}
	}
	pubs, top, complete, err := ts.store.History(ctx, t.name, after, ts.limits)
	if err != nil {
		return false, err
	}
	recovered := !has || complete
	// The live fan-out may have gone past the history read: read on from
	// where it ended until it has not. The reads are made unlocked (a
	// single node's history delivers under its own lock, which the
	// fan-out then takes), so a topic published to without pause could
	// outrun them: after a few, the subscription starts where the fan-out
	// is, and the client is told that it missed what came between.
	for try := 0; ; try++ {
		t.mu.Lock()
		if !t.synced {
			t.epoch, t.last, t.synced = top.Epoch, top.Offset, true
		}
		if t.epoch != top.Epoch || t.last <= top.Offset {
			break
		}
		if try == 8 {
			recovered = !has
			pubs, top = nil, transport.TopicPosition{Epoch: t.epoch, Offset: t.last}
			break
		}
		t.mu.Unlock()
		more, newTop, _, err := ts.store.History(ctx, t.name, top, ts.limits)
		if err != nil {
			return false, err
		}
		pubs = append(pubs, more...)
		top = newTop
	}
	defer t.mu.Unlock()
	if t.epoch != top.Epoch {
		// The history began again while we read it.
		recovered, pubs = !has, nil
		top = transport.TopicPosition{Epoch: t.epoch, Offset: t.last}
	}
	start := top.Offset
	if has && recovered {
		start = presented.Offset
	} else {
		pubs = nil
	}
	if err := s.pushSubscribed(t, transport.TopicPosition{Epoch: top.Epoch, Offset: start}, recovered, pubs); err != nil {
		return false, err
	}
	t.subs[s] = &subscription{delivered: max(top.Offset, start)}
	if n := len(pubs); n > 0 {
		t.subs[s].delivered = max(t.subs[s].delivered, pubs[n-1].Position.Offset)
	}
	return recovered, nil
}

// join has the broker deliver the topic's publications to this node.
func (ts *topics) join(ctx context.Context, t *topic) error {
	t.join.Lock()
	defer t.join.Unlock()
	t.mu.Lock()
	joined := t.joined
	t.mu.Unlock()
	if joined {
		return nil
	}
	if err := ts.store.Subscribe(ctx, t.name); err != nil {
		return err
	}
	t.mu.Lock()
	t.joined = true
	t.mu.Unlock()
	return nil
}

// Unsubscribe ends the session's subscription to topic, if any. Messages
// of the topic already queued for the session are still delivered.
func (s *Session) Unsubscribe(topic string) {
	s.mu.Lock()
	t := s.subs[topic]
	delete(s.subs, topic)
	s.mu.Unlock()
	if t != nil {
		s.h.topics.leave(t, s)
	}
}

// leave removes s from t's fan-out and releases t.
func (ts *topics) leave(t *topic, s *Session) {
	t.mu.Lock()
	delete(t.subs, s)
	t.mu.Unlock()
	ts.release(t)
}

// unsubscribeAll ends every subscription of a finished session.
func (s *Session) unsubscribeAll() {
	s.mu.Lock()
	subs := s.subs
	s.subs = nil
	s.mu.Unlock()
	for _, t := range subs {
		s.h.topics.leave(t, s)
	}
}

// publication fans a publication out to the topic's local subscribers,
// in offset order: a duplicate is dropped, and a gap (a publication the
// broker lost) is filled from the history first, off the caller's
// goroutine, which is the broker's.
func (ts *topics) publication(name string, p Publication) {
	ts.mu.Lock()
	t := ts.m[name]
	ts.mu.Unlock()
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.repairing {
		t.pending = append(t.pending, p)
		return
	}
	if t.synced && p.Position.Epoch == t.epoch && p.Position.Offset > t.last+1 {
		t.repairing = true
		t.pending = append(t.pending, p)
		go ts.repair(t)
		return
	}
	ts.fanOutLocked(t, p)
}

// repair reads the publications missing before the pending ones, then
// fans them all out. Those the history no longer has are reported to the
// subscribers as lost.
func (ts *topics) repair(t *topic) {
	ctx, cancel := context.WithTimeout(context.Background(), ts.h.opts.BrokerTimeout)
	defer cancel()
	t.mu.Lock()
	from := transport.TopicPosition{Epoch: t.epoch, Offset: t.last}
	t.mu.Unlock()
	pubs, _, complete, err := ts.store.History(ctx, t.name, from, ts.limits)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil || !complete {
		ts.h.logger.Warn("comet: topic messages lost", "topic", t.name, "after", from.Offset, "err", err)
		t.lostLocked(transport.TopicPosition{Epoch: t.epoch, Offset: t.pending[0].Position.Offset - 1})
	}
	for _, p := range pubs {
		ts.fanOutLocked(t, p)
	}
	pending := t.pending
	t.pending, t.repairing = nil, false
	for _, p := range pending {
		ts.fanOutLocked(t, p)
	}
}

// lostLocked tells every subscriber that the topic's messages up to at
// are gone, and moves the fan-out past them.
func (t *topic) lostLocked(at transport.TopicPosition) {
	t.epoch, t.last = at.Epoch, at.Offset
	for s, sub := range t.subs {
		s.pushSubscribed(t, at, false, nil)
		sub.delivered = at.Offset
	}
}

// fanOutLocked gives p to every subscriber that has not had it.
func (ts *topics) fanOutLocked(t *topic, p Publication) {
	if !t.synced {
		t.epoch, t.last, t.synced = p.Position.Epoch, p.Position.Offset-1, true
	}
	if p.Position.Epoch != t.epoch {
		// The history began again: what came between is lost to all.
		t.lostLocked(transport.TopicPosition{Epoch: p.Position.Epoch, Offset: p.Position.Offset - 1})
	}
	if p.Position.Offset <= t.last {
		return // a duplicate, or one the history read gave already
	}
	t.last = max(t.last, p.Position.Offset)
	if len(t.subs) == 0 {
		return
	}
	m, err := decodePublication(t.name, p)
	if err != nil {
		ts.h.logger.Warn("comet: malformed publication dropped", "topic", t.name, "offset", p.Position.Offset)
		return
	}
	for s, sub := range t.subs {
		if p.Position.Offset <= sub.delivered {
			continue
		}
		sub.delivered = p.Position.Offset
		s.pushTopic(m)
	}
}
