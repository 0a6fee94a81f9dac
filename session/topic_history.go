package session

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// memoryTopics keeps topics' histories in memory: a single node's, which
// has no broker, or a MemoryCluster's, which its nodes share.
type memoryTopics struct {
	mu sync.Mutex
	m  map[string]*memoryTopic
}

type memoryTopic struct {
	mu    sync.Mutex // orders a publication's numbering and its delivery
	epoch string
	last  uint64
	pubs  []memoryPub // oldest first
}

type memoryPub struct {
	p  Publication
	at time.Time
}

func newMemoryTopics() *memoryTopics { return &memoryTopics{m: make(map[string]*memoryTopic)} }

// newEpoch returns a fresh epoch: random, so that a history begun again
// never takes an old one's.
func newEpoch() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (mt *memoryTopics) topic(name string) *memoryTopic {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	t := mt.m[name]
	if t == nil {
		t = &memoryTopic{epoch: newEpoch()}
		mt.m[name] = t
	}
	return t
}

// publish numbers data, keeps it within limits and hands it to deliver,
// all under the topic's lock, so that deliveries come in offset order.
func (mt *memoryTopics) publish(name string, data []byte, limits HistoryLimits, deliver func(Publication)) transport.TopicPosition {
	t := mt.topic(name)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.last++
	p := Publication{Position: transport.TopicPosition{Epoch: t.epoch, Offset: t.last}, Data: append([]byte(nil), data...)}
	now := time.Now()
	t.pubs = append(t.pubs, memoryPub{p: p, at: now})
	t.trim(limits, now)
	deliver(p)
	return p.Position
}

// trim drops what limits no longer keep.
func (t *memoryTopic) trim(limits HistoryLimits, now time.Time) {
	drop := max(0, len(t.pubs)-limits.Size)
	for drop < len(t.pubs) && limits.Age > 0 && now.Sub(t.pubs[drop].at) > limits.Age {
		drop++
	}
	if drop > 0 {
		clear(t.pubs[:drop])
		t.pubs = t.pubs[drop:]
	}
}

// history implements Broker.History on memory.
func (mt *memoryTopics) history(name string, after transport.TopicPosition, limits HistoryLimits) ([]Publication, transport.TopicPosition, bool) {
	t := mt.topic(name)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.trim(limits, time.Now())
	top := transport.TopicPosition{Epoch: t.epoch, Offset: t.last}
	if after.Epoch != t.epoch || after.Offset >= t.last {
		return nil, top, after.Epoch == t.epoch && after.Offset <= t.last
	}
	var pubs []Publication
	complete := len(t.pubs) > 0 && t.pubs[0].p.Position.Offset <= after.Offset+1
	for _, mp := range t.pubs {
		if mp.p.Position.Offset > after.Offset && len(pubs) < limits.Size {
			pubs = append(pubs, mp.p)
		}
	}
	if n := len(pubs); n == 0 || pubs[n-1].Position.Offset < t.last {
		complete = false
	}
	return pubs, top, complete
}
