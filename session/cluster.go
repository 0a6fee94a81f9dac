package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// A cluster is several handlers, one a node, that serve one service behind
// a load balancer without affinity: any request of any session may reach
// any node. The node that negotiates a session owns it for its life: the
// session (its windows, its tickets, its Serve) lives there, in memory, as
// on a single node, and its id names that node ("node.uuid"). Another
// node, the front, that gets a request for it forwards the request to the
// owner through the Broker, with no lookup:
//
//   - an attach becomes a link: the owner makes the attachment as for a
//     local request and hands it a downstream whose writes travel back to
//     the front, which writes them to its client; what the client sends on
//     it (a WebSocket's upstream) travels to the owner. The transport's
//     adapter runs on the front, the session's engine on the owner.
//   - a POST travels to the owner and its answer back.
//
// Every forwarded step is a call answered by a reply, and a write on a
// link waits for the front's reply: the owner's writer keeps its
// backpressure, a poll its end, a write its error. A message lost by the
// broker costs a call its timeout and the link its life; the client then
// attaches again and resumes, as after any cut (PROTOCOL.md section 6).
//
// Why not keep the session's state in Redis, so that any node can serve
// from it without the owner? Because the owner must run Serve anyway, and
// a message's path through the owner's memory costs no Redis round trip
// when the client is on the owner, which a balancer without affinity
// still gives it a share of the time, and a WebSocket that negotiates in
// its first attach (PROTOCOL.md section 3) all of the time. The
// session's log in Redis, which a node's loss calls for, extends this
// design (the owner writes through to it; a survivor rebuilds the session
// from it); it does not replace it.
type cluster struct {
	h    *Handler
	b    Broker
	node string

	nextID atomic.Uint64

	mu    sync.Mutex
	gone  map[string]time.Time         // nodes the broker said had gone, and when
	calls map[uint64]*call             // pending calls by rpc id
	front map[uint64]*remoteAttachment // links served here, by link id
	owned map[linkKey]*ownerLink       // links of sessions owned here, served elsewhere
	down  time.Time                    // since when the broker has been unavailable; zero if it is not

	bcast chan []byte // this node's broadcasts, for the other nodes (cluster_broadcast.go)

	// store keeps the sessions' logs, with Options.Failover; else nil.
	store SessionStore
	// adopting holds the sessions this node is looking up or claiming
	// (failover.go), each with a channel closed when it is done.
	adopting map[string]chan struct{}
}

type linkKey struct {
	node string
	link uint64
}

// call is a request to another node awaiting its reply.
type call struct {
	node  string
	reply chan *envelope // buffered: a reply never waits
}

// errNodeGone fails a call to a node whose lease lapsed.
var errNodeGone = errors.New("comet: the session's node is gone")

// errNoLink answers a link message whose link the node does not hold.
var errNoLink = errors.New("comet: no such link")

func newCluster(h *Handler, b Broker) *cluster {
	c := &cluster{h: h, b: b, node: b.Node(), calls: make(map[uint64]*call), gone: make(map[string]time.Time),
		bcast: make(chan []byte, broadcastQueue),
		front: make(map[uint64]*remoteAttachment), owned: make(map[linkKey]*ownerLink)}
	if h.opts.Failover {
		store, ok := b.(SessionStore)
		if !ok {
			panic(fmt.Sprintf("comet: Options.Failover needs a Broker that is a SessionStore; %T is not", b))
		}
		c.store, c.adopting = store, make(map[string]chan struct{})
	}
	return c
}

// start starts the broker and the watch that closes the sessions of a
// node the broker has been away from for Options.BrokerTimeout.
func (c *cluster) start() {
	c.b.Start(c)
	go c.watch()
	go c.publishBroadcasts()
	if c.store != nil {
		go c.sweepOrphans()
	}
}

// watch looks at the broker ten times per BrokerTimeout (at most every
// second) until the handler shuts down: an outage is timed from the first
// look that finds the broker unavailable after one that found it
// available, so that a blip seen by one look and an outage seen by the
// next are not taken for one.
func (c *cluster) watch() {
	t := time.NewTicker(max(10*time.Millisecond, min(time.Second, c.h.opts.BrokerTimeout/10)))
	defer t.Stop()
	for {
		select {
		case <-c.h.baseCtx.Done():
			return
		case <-t.C:
			c.check()
		}
	}
}

// check closes every session this node owns with 3008 once the broker has
// been unavailable for Options.BrokerTimeout: the node's lease has lapsed,
// so the other nodes answer for its sessions that they are gone.
func (c *cluster) check() {
	err := c.b.Err()
	c.mu.Lock()
	switch {
	case err == nil:
		c.down = time.Time{}
	case c.down.IsZero():
		c.down = time.Now()
	}
	expired := !c.down.IsZero() && time.Since(c.down) >= c.h.opts.BrokerTimeout
	c.mu.Unlock()
	if err != nil {
		// Nothing forwarded gets through: the clients of this node's links
		// do better to attach again, through a node that has the broker.
		c.endFronts()
	}
	if !expired {
		return
	}
	if c.store != nil {
		// Its sessions are for nodes that reach the broker to take over.
		c.fenceAll()
		return
	}
	c.h.sessions.each(func(s *Session) bool {
		s.mu.Lock()
		if s.brokerCode {
			s.closeLocked(transport.CloseBrokerUnavailable, "broker unavailable", 0)
		} else {
			// An older client takes an unknown 3xxx code as terminal.
			s.closeLocked(transport.CloseServerShutdown, "broker unavailable", uint64(time.Second.Milliseconds()))
		}
		s.mu.Unlock()
		return true
	})
}

// goneMemory is how long a node remembers that another has gone.
const goneMemory = time.Hour

// joinGrace is how long a request for a session of a node this node does
// not see alive waits for it to appear: a node that has just joined is
// seen by the others only at their next look at the broker (a second at
// most), and its sessions must not be taken for a dead node's meanwhile.
const joinGrace = 1500 * time.Millisecond

// awaitAlive reports whether node is alive, waiting up to joinGrace for a
// node the broker has not said is gone.
func (c *cluster) awaitAlive(node string) bool {
	if c.b.Alive(node) {
		return true
	}
	c.mu.Lock()
	_, gone := c.gone[node]
	c.mu.Unlock()
	if gone {
		return false
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(joinGrace)
	for time.Now().Before(deadline) {
		<-tick.C
		if c.b.Alive(node) {
			return true
		}
	}
	return false
}

// available returns the broker's error, if any.
func (c *cluster) available() error {
	if err := c.b.Err(); err != nil {
		return errors.Join(ErrBrokerUnavailable, err)
	}
	return nil
}

// send sends a one-way message; a failure is logged only, as a lost
// message would be: the other side times out.
func (c *cluster) send(node string, e *envelope) {
	e.from = c.node
	ctx, cancel := context.WithTimeout(context.Background(), c.h.opts.BrokerTimeout)
	defer cancel()
	if err := c.b.Send(ctx, node, e.encode(nil)); err != nil {
		c.h.logger.Debug("comet: cluster message not sent", "node", node, "kind", e.kind, "err", err)
	}
}

// call sends a request to node and waits for its reply, ctx, or the
// node's loss.
func (c *cluster) call(ctx context.Context, node string, e *envelope) (*envelope, error) {
	e.from = c.node
	e.rpc = c.nextID.Add(1)
	k := &call{node: node, reply: make(chan *envelope, 1)}
	c.mu.Lock()
	c.calls[e.rpc] = k
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.calls, e.rpc)
		c.mu.Unlock()
	}()
	if !c.b.Alive(node) {
		return nil, errNodeGone
	}
	if err := c.b.Send(ctx, node, e.encode(nil)); err != nil {
		return nil, errors.Join(ErrBrokerUnavailable, err)
	}
	select {
	case r := <-k.reply:
		if r == nil {
			return nil, errNodeGone
		}
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// reply answers the call req.
func (c *cluster) reply(req *envelope, r *envelope) {
	r.kind, r.rpc = kindReply, req.rpc
	c.send(req.from, r)
}

// Deliver implements Receiver.
func (c *cluster) Deliver(msg string) {
	e, err := decodeEnvelope(msg)
	if err != nil {
		c.h.logger.Warn("comet: malformed cluster message dropped", "bytes", len(msg))
		return
	}
	if e.kind == kindReply {
		c.mu.Lock()
		k := c.calls[e.rpc]
		c.mu.Unlock()
		if k != nil && k.node == e.from {
			select {
			case k.reply <- e:
			default: // a duplicate
			}
		}
		return
	}
	go c.handle(e)
}

// NodeGone implements Receiver: calls to the node fail, and the links
// between it and this node end, on a goroutine of their own, for ending a
// link waits for a write in flight.
func (c *cluster) NodeGone(node string) { go c.nodeGone(node) }

func (c *cluster) nodeGone(node string) {
	c.mu.Lock()
	c.gone[node] = time.Now()
	for n, at := range c.gone {
		if time.Since(at) > goneMemory {
			delete(c.gone, n) // their sessions are long over
		}
	}
	for _, k := range c.calls {
		if k.node == node {
			select {
			case k.reply <- nil:
			default:
			}
		}
	}
	var fronts []*remoteAttachment
	for _, ra := range c.front {
		if ra.node == node {
			fronts = append(fronts, ra)
		}
	}
	var owned []*ownerLink
	for k, ol := range c.owned {
		if k.node == node {
			owned = append(owned, ol)
		}
	}
	c.mu.Unlock()
	for _, ra := range fronts {
		ra.end(errNodeGone)
	}
	for _, ol := range owned {
		ol.end(errors.New("comet: the node serving the attachment is gone"))
	}
	if c.store != nil {
		c.sweep(node)
	}
}

// Publication implements Receiver: the topic's local subscribers get it.
func (c *cluster) Publication(topic string, p Publication) {
	if topic == broadcastTopic {
		c.received(p)
		return
	}
	c.h.topics.publication(topic, p)
}

// endFronts ends every link this node serves for another node's session.
func (c *cluster) endFronts() {
	c.mu.Lock()
	fronts := make([]*remoteAttachment, 0, len(c.front))
	for _, ra := range c.front {
		fronts = append(fronts, ra)
	}
	c.mu.Unlock()
	for _, ra := range fronts {
		ra.End(errors.New("comet: server shutting down"))
	}
}

// handle serves a message from another node, on a goroutine of its own.
func (c *cluster) handle(e *envelope) {
	switch e.kind {
	case kindOpen:
		c.reply(e, c.open(e))
	case kindServe:
		c.reply(e, c.serve(e))
	case kindRecv:
		c.reply(e, c.recv(e))
	case kindPost:
		c.reply(e, c.post(e))
	case kindBatch:
		c.reply(e, c.batch(e))
	case kindSharePoll:
		c.reply(e, c.sharePoll(e))
	case kindShareOps:
		c.reply(e, c.shareOps(e))
	case kindEndUp:
		if ol := c.ownedLink(e.from, e.link); ol != nil {
			ol.end(errorOf(e.a))
		}
	case kindFail:
		if ol := c.ownedLink(e.from, e.link); ol != nil {
			ol.a.Fail(transport.CloseCode(e.num), e.a)
		}
	case kindEndDown:
		c.mu.Lock()
		ra := c.front[e.link]
		c.mu.Unlock()
		if ra != nil && ra.node == e.from {
			ra.end(errorOf(e.a))
		}
	}
}

func errorOf(s string) error {
	if s == "" {
		return nil
	}
	return errors.New(s)
}

func errorString(err error) string {
	if err == nil {
		return ""
	}
	if s := err.Error(); s != "" {
		return s
	}
	return "error"
}
