package session

import (
	"context"
	"fmt"
	"sync"

	"github.com/seed-544bbf9f/comet/transport"
)

// MemoryCluster joins handlers of one process into a cluster, as a Redis
// broker joins handlers of many: each Node is a Broker for one handler.
// It is for tests and examples; it loses nothing, but MemoryNode.SetDown
// makes a node's broker unreachable, as a network fault would.
type MemoryCluster struct {
	mu     sync.Mutex
	nodes  map[string]*MemoryNode
	topics *memoryTopics
	subs   map[string]map[*MemoryNode]bool // topic → its subscribed nodes
	logs   map[string]*memoryLog           // sessions' logs (memory_store.go)
}

// NewMemoryCluster returns an empty cluster.
func NewMemoryCluster() *MemoryCluster {
	return &MemoryCluster{nodes: make(map[string]*MemoryNode), topics: newMemoryTopics(),
		subs: make(map[string]map[*MemoryNode]bool), logs: make(map[string]*memoryLog)}
}

// memoryInbox bounds the messages queued for one node. Past it a message
// is dropped, as PUB/SUB drops a slow subscriber's; the handler repairs
// the loss as it repairs a broker's.
const memoryInbox = 4096

// Node returns a new node of the cluster, alive once its handler starts
// it. It panics if id is not a valid node id (see ValidNode) or is taken.
func (c *MemoryCluster) Node(id string) *MemoryNode {
	if !ValidNode(id) {
		panic(fmt.Sprintf("comet: invalid node id %q", id))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nodes[id] != nil {
		panic(fmt.Sprintf("comet: node id %q is taken", id))
	}
	n := &MemoryNode{c: c, id: id, inbox: make(chan string, memoryInbox), stop: make(chan struct{}), stopped: make(chan struct{})}
	c.nodes[id] = n
	return n
}

// MemoryNode is one node of a MemoryCluster: a Broker.
type MemoryNode struct {
	c       *MemoryCluster
	id      string
	inbox   chan string
	stop    chan struct{}
	stopped chan struct{}

	// Guarded by c.mu.
	r       Receiver
	started bool
	closed  bool
	down    bool
}

var _ Broker = (*MemoryNode)(nil)

// Node implements Broker.
func (n *MemoryNode) Node() string { return n.id }

// Start implements Broker: a goroutine delivers the node's messages until
// Close.
func (n *MemoryNode) Start(r Receiver) {
	n.c.mu.Lock()
	if n.started || n.closed {
		n.c.mu.Unlock()
		return
	}
	n.r, n.started = r, true
	n.c.mu.Unlock()
	go func() {
		defer close(n.stopped)
		for {
			select {
			case msg := <-n.inbox:
				r.Deliver(msg)
			case <-n.stop:
				return
			}
		}
	}()
}

// Send implements Broker.
func (n *MemoryNode) Send(ctx context.Context, node string, msg []byte) error {
	n.c.mu.Lock()
	to := n.c.nodes[node]
	down := n.down || n.closed
	n.c.mu.Unlock()
	if down {
		return ErrBrokerUnavailable
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if to == nil || !to.alive() {
		return nil // as PUBLISH to a channel nobody reads
	}
	select {
	case to.inbox <- string(msg):
	default: // dropped, as a slow subscriber's messages are
	}
	return nil
}

func (n *MemoryNode) alive() bool {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return n.started && !n.closed && !n.down
}

// Alive implements Broker: the node is started, not closed and not down.
func (n *MemoryNode) Alive(node string) bool {
	n.c.mu.Lock()
	to := n.c.nodes[node]
	n.c.mu.Unlock()
	return to != nil && to.alive()
}

// Err implements Broker: ErrBrokerUnavailable while the node is down.
func (n *MemoryNode) Err() error {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	if n.down {
		return ErrBrokerUnavailable
	}
	return nil
}

// SetDown cuts the node off from the cluster's broker (down) or restores
// it: while down, its Send fails, Err reports ErrBrokerUnavailable, and
// the other nodes see it gone, as they would once its lease lapsed. A
// node restored is told that its lease lapsed (Receiver.LeaseLapsed), as
// a node is that renews its lease too late.
func (n *MemoryNode) SetDown(down bool) {
	n.c.mu.Lock()
	changed := n.down != down
	n.down = down
	r := n.r
	n.c.mu.Unlock()
	switch {
	case changed && down:
		n.c.gone(n)
	case changed && r != nil:
		r.LeaseLapsed()
	}
}

// Close withdraws the node: the other nodes see it gone, and its delivery
// goroutine stops. It is idempotent.
func (n *MemoryNode) Close() error {
	n.c.mu.Lock()
	if n.closed {
		n.c.mu.Unlock()
		return nil
	}
	n.closed = true
	started := n.started
	delete(n.c.nodes, n.id)
	for topic, nodes := range n.c.subs {
		delete(nodes, n)
		if len(nodes) == 0 {
			delete(n.c.subs, topic)
		}
	}
	n.c.mu.Unlock()
	n.c.gone(n)
	if started {
		close(n.stop)
		<-n.stopped
	}
	return nil
}

// Publish implements Broker: the publication reaches the subscribed
// nodes before Publish returns, in the topic's order.
func (n *MemoryNode) Publish(ctx context.Context, topic string, data []byte, limits HistoryLimits) (transport.TopicPosition, error) {
	if err := n.usable(ctx); err != nil {
		return transport.TopicPosition{}, err
	}
	c := n.c
	return c.topics.publish(topic, data, limits, func(p Publication) {
		c.mu.Lock()
		var rs []Receiver
		for to := range c.subs[topic] {
			if to.started && !to.closed && !to.down {
				rs = append(rs, to.r)
			}
		}
		c.mu.Unlock()
		for _, r := range rs {
			r.Publication(topic, p)
		}
	}), nil
}

// Subscribe implements Broker.
func (n *MemoryNode) Subscribe(ctx context.Context, topic string) error {
	if err := n.usable(ctx); err != nil {
		return err
	}
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	if n.c.subs[topic] == nil {
		n.c.subs[topic] = make(map[*MemoryNode]bool)
	}
	n.c.subs[topic][n] = true
	return nil
}

// Unsubscribe implements Broker.
func (n *MemoryNode) Unsubscribe(ctx context.Context, topic string) error {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	delete(n.c.subs[topic], n)
	if len(n.c.subs[topic]) == 0 {
		delete(n.c.subs, topic)
	}
	return nil
}

// History implements Broker.
func (n *MemoryNode) History(ctx context.Context, topic string, after transport.TopicPosition, limits HistoryLimits) (
	[]Publication, transport.TopicPosition, bool, error) {
	if err := n.usable(ctx); err != nil {
		return nil, transport.TopicPosition{}, false, err
	}
	pubs, top, complete := n.c.topics.history(topic, after, limits)
	return pubs, top, complete, nil
}

// usable returns why the node cannot use the broker now, if it cannot.
func (n *MemoryNode) usable(ctx context.Context) error {
	if err := n.Err(); err != nil {
		return err
	}
	return ctx.Err()
}

// storeUsable is usable for the sessions' logs, which a closed node, like
// a dead process, reaches no more.
func (n *MemoryNode) storeUsable(ctx context.Context) error {
	n.c.mu.Lock()
	closed := n.closed
	n.c.mu.Unlock()
	if closed {
		return ErrBrokerUnavailable
	}
	return n.usable(ctx)
}

// gone tells every other live node that n has gone.
func (c *MemoryCluster) gone(n *MemoryNode) {
	c.mu.Lock()
	var rs []Receiver
	for _, o := range c.nodes {
		if o != n && o.started && !o.closed {
			rs = append(rs, o.r)
		}
	}
	c.mu.Unlock()
	for _, r := range rs {
		r.NodeGone(n.id)
	}
}
