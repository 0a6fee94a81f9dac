package session

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// Broker connects the nodes of a cluster: several handlers, in several
// processes, that serve one service behind a load balancer with no
// affinity. It says which nodes are alive and carries messages between
// them; the handler builds everything else on it (see cluster.go). A nil
// Options.Broker means one node: no broker is consulted, and nothing of
// this costs anything.
//
// The module's broker for production is the Redis one, in the nested
// module github.com/seed-544bbf9f/comet/redis; NewMemoryCluster joins
// handlers of one process, for tests and examples.
//
// A Broker serves one Handler, which calls Start once. Its methods are
// safe for concurrent use.
type Broker interface {
	// Node returns this node's id: 1 to 32 bytes of [A-Za-z0-9_-],
	// unique among the nodes alive at once. It never changes.
	Node() string
	// Start announces the node and begins delivering to r what other
	// nodes send it. It does not wait for the broker: while the broker
	// cannot be reached, Err says so, and delivery starts once it can.
	Start(r Receiver)
	// Send delivers msg to the inbox of node (which may be this node).
	// Messages from one goroutine to one node arrive in order, at most
	// once: a message may be lost when the broker reconnects, which the
	// handler detects and repairs. Send does not keep msg. It returns an
	// error when the broker cannot take msg before ctx ends.
	Send(ctx context.Context, node string, msg []byte) error
	// Alive reports whether node has announced itself and its lease has
	// not lapsed, as of the broker's last look (at most a second old).
	Alive(node string) bool
	// Err returns nil while the broker is reachable, or why it is not.
	Err() error

	// Publish appends data to topic's history, trimmed to limits, sends
	// it to every node that subscribes to topic (this one included), and
	// returns its position. A topic's publications are numbered, kept and
	// delivered in one order, whichever nodes publish them. Delivery is
	// at most once, like Send's; History repairs a loss.
	Publish(ctx context.Context, topic string, data []byte, limits HistoryLimits) (transport.TopicPosition, error)
	// Subscribe has the broker deliver topic's publications to this
	// node's Receiver until Unsubscribe. It returns once publications
	// made after it returns are sure to be delivered.
	Subscribe(ctx context.Context, topic string) error
	// Unsubscribe ends Subscribe.
	Unsubscribe(ctx context.Context, topic string) error
	// History returns the topic's current position and, when after is of
	// its epoch, the publications after it, oldest first, at most limits'
	// Size of them. complete is false when some of those publications are
	// gone (trimmed by count or age, or after is of another epoch); the
	// others are still returned. A topic never published to gets its
	// epoch, and offset 0, at its first History or Publish.
	History(ctx context.Context, topic string, after transport.TopicPosition, limits HistoryLimits) (
		pubs []Publication, top transport.TopicPosition, complete bool, err error)
}

// Publication is one message of a topic as a broker keeps and delivers
// it: its position and the handler's encoding of the message, opaque to
// the broker.
type Publication struct {
	Position transport.TopicPosition
	Data     []byte
}

// HistoryLimits bound a topic's history: the publications it keeps, and
// how long it keeps each.
type HistoryLimits struct {
	Size int
	Age  time.Duration
}

// Receiver takes what a Broker delivers. Its methods must not block, and
// may be called concurrently: Deliver from the broker's one delivery
// goroutine, NodeGone from wherever the broker learns of a loss.
type Receiver interface {
	// Deliver hands over one message sent to this node.
	Deliver(msg string)
	// NodeGone says that node's lease has lapsed: it has stopped, died,
	// or lost the broker for longer than its lease.
	NodeGone(node string)
	// LeaseLapsed says this node's own lease lapsed before the broker
	// renewed it (the process was paused, or cut off from the broker):
	// the other nodes took it for gone meanwhile, and may have taken its
	// sessions over.
	LeaseLapsed()
	// StoreLost says the broker's store lost what it kept (a Redis that
	// restarted empty): every session log is gone, and with it every
	// session's chance of outliving its node (Options.Failover).
	StoreLost()
	// Publication hands over one publication of a topic this node
	// subscribes to, in the topic's order.
	Publication(topic string, p Publication)
}

// ErrBrokerUnavailable is what the handler reports when the cluster's
// broker cannot be reached: 503 broker_unavailable on a request, 3008 on a
// session the broker was too long away from.
var ErrBrokerUnavailable = errors.New("comet: broker unavailable")

// ValidNode reports whether id is a valid node id (see Broker.Node).
func ValidNode(id string) bool {
	if len(id) == 0 || len(id) > 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ownerOf returns the node named in a session id made in a cluster
// ("node.uuid"), or "" for an id without one. The id names the node that
// made the session, which runs its Serve: a request for it on any other
// node is forwarded there, with no lookup.
func ownerOf(id string) string {
	i := strings.LastIndexByte(id, '.')
	if i <= 0 {
		return ""
	}
	return id[:i]
}
