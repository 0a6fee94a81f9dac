package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/seed-544bbf9f/comet/session"
)

// Broker is a session.Broker on Redis: a lease per node in one sorted
// set, and a PUB/SUB channel per node for its inbox. Make it with New;
// its methods are safe for concurrent use.
type Broker struct {
	cfg      *config
	client   goredis.UniversalClient
	nodesKey string // the registry, <prefix>:nodes
	genKey   string // the store's generation, <prefix>:gen (lease.go)
	inbox    string // this node's channel, <prefix>:node:<id>

	ctx    context.Context // ends at Close, stopping every goroutine
	cancel context.CancelFunc

	startOnce  sync.Once
	started    atomic.Bool
	closeOnce  sync.Once
	closed     atomic.Bool
	loops      sync.WaitGroup   // the lease and subscriber goroutines
	recv       session.Receiver // set by Start, before the loops start
	subscribed chan struct{}    // closed at the first confirmed SUBSCRIBE
	subOnce    sync.Once

	mu     sync.RWMutex
	live   map[string]lease // the live nodes, as of the last refresh
	lastOK time.Time        // when the last refresh succeeded
	// leaseUntil is when our own lease lapses, by our clock: the send
	// time of the last refresh that succeeded, plus the lease's length.
	leaseUntil time.Time
	gen        string          // the store's generation at the last refresh
	leaseErr   error           // why the last refresh failed, or nil
	subErr     error           // why the subscriber is not subscribed, or nil
	pubsub     *goredis.PubSub // the subscriber's, for Close to end its read
	// topics are the topic channels subscribed to, each with a channel
	// closed once Redis has confirmed the subscription.
	topics map[string]chan struct{}

	// The session logs' writes waiting for a pipeline (store.go), and
	// whether a goroutine is writing them.
	logMu    sync.Mutex
	logQueue []*logCall
	logBusy  bool

	// paused stops the lease refresh without Close: a test's stand-in
	// for a node that hangs.
	paused atomic.Bool
	// refreshes counts the refreshes that succeeded, their NodeGone
	// handed to the delivery goroutine: for tests.
	refreshes atomic.Int64
}

var _ session.Broker = (*Broker)(nil)

// event is one call to the Receiver: a message, or a node gone.
type event struct {
	msg    string
	gone   string // set for NodeGone
	lapsed bool   // set for LeaseLapsed
	// storeLost is set for StoreLost.
	storeLost bool
	// topic is set for a publication, pub.
	topic string
	pub   session.Publication
}

// errClosed is what the methods of a closed Broker return.
var errClosed = fmt.Errorf("%w: broker closed", session.ErrBrokerUnavailable)

// New returns a Broker for opts, or why opts are wrong. It does not
// connect: Start does, and Err says whether it could. A wrong address or
// password therefore shows in Err (and in the log), not here, which lets
// a node start while Redis is briefly away.
func New(opts *Options) (*Broker, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if c, ok := cfg.Client.(*goredis.Client); ok && !cfg.ownClient {
		if o := c.Options(); !o.ContextTimeoutEnabled {
			cfg.Logger.Warn("comet/redis: the Client's ContextTimeoutEnabled is off, so its ReadTimeout, not OpTimeout, bounds a call",
				"read_timeout", o.ReadTimeout, "op_timeout", cfg.OpTimeout)
		}
	}
	b := &Broker{
		cfg:        cfg,
		client:     cfg.Client,
		nodesKey:   cfg.Prefix + ":nodes",
		genKey:     cfg.Prefix + ":gen",
		inbox:      cfg.Prefix + ":node:" + cfg.Node,
		subscribed: make(chan struct{}),
		live:       map[string]lease{},
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	return b, nil
}

// Node returns this node's id.
func (b *Broker) Node() string { return b.cfg.Node }

// Client returns the go-redis client the Broker uses: the one it made
// from Options.URL, or Options.Client.
func (b *Broker) Client() goredis.UniversalClient { return b.client }

// Start subscribes to the node's inbox and then announces the node,
// so that no peer sees it alive before it can receive. It returns at
// once; r's Deliver and Publication are called from the subscriber's
// goroutine, its NodeGone from the lease's, until Close (the Receiver's
// contract: none blocks). Calls after the first, or after Close, do
// nothing.
func (b *Broker) Start(r session.Receiver) {
	b.startOnce.Do(func() {
		if b.closed.Load() {
			return
		}
		b.started.Store(true)
		b.recv = r
		b.loops.Add(2)
		go b.leaseLoop()
		go b.subscribeLoop()
	})
}

// Send publishes msg to node's inbox, within Options.OpTimeout and ctx.
// The error wraps session.ErrBrokerUnavailable. A message to a node that
// is not subscribed is dropped, as PUB/SUB does, without an error.
func (b *Broker) Send(ctx context.Context, node string, msg []byte) error {
	if b.closed.Load() {
		return errClosed
	}
	if !session.ValidNode(node) {
		return fmt.Errorf("comet/redis: send to invalid node id %q", node)
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.OpTimeout)
	defer cancel()
	if err := b.client.Publish(ctx, b.cfg.Prefix+":node:"+node, msg).Err(); err != nil {
		return fmt.Errorf("%w: send to node %s: %w", session.ErrBrokerUnavailable, node, err)
	}
	return nil
}

// Alive reports whether node was in the live set at the last refresh and
// its lease, as Redis then gave it, has not lapsed since. While Redis is
// unreachable, a peer's Alive turns false when its known lease lapses,
// but NodeGone waits for Redis to confirm it: the peer may have renewed
// its lease all along.
func (b *Broker) Alive(node string) bool {
	b.mu.RLock()
	l, ok := b.live[node]
	b.mu.RUnlock()
	return ok && time.Now().Before(l.expiry)
}

// Err returns nil while the last lease refresh succeeded, no more than
// Refresh + OpTimeout ago, and the inbox is subscribed; otherwise an
// error wrapping session.ErrBrokerUnavailable that says why.
func (b *Broker) Err() error {
	if b.closed.Load() {
		return errClosed
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	switch {
	case b.leaseErr != nil:
		return fmt.Errorf("%w: lease refresh: %w", session.ErrBrokerUnavailable, b.leaseErr)
	case b.subErr != nil:
		return fmt.Errorf("%w: inbox subscription: %w", session.ErrBrokerUnavailable, b.subErr)
	case b.lastOK.IsZero():
		return fmt.Errorf("%w: not yet announced to Redis", session.ErrBrokerUnavailable)
	}
	// A refresh that neither succeeds nor fails (its goroutine starved on
	// a loaded machine, say) is a problem only as the lease nears its end.
	if d := time.Since(b.lastOK); d > max(b.cfg.Refresh+b.cfg.OpTimeout, b.cfg.LeaseTTL/2) {
		return fmt.Errorf("%w: no lease refresh for %v", session.ErrBrokerUnavailable, d.Round(time.Millisecond))
	}
	return nil
}

// Close withdraws the node: it stops every goroutine of the Broker,
// removes the node's lease, so that peers see it gone at their next
// refresh rather than when the lease lapses, and closes the client the
// Broker made from Options.URL. It returns the error of removing the
// lease, if any. Later calls do nothing and return nil.
func (b *Broker) Close() error {
	var err error
	b.closeOnce.Do(func() {
		b.closed.Store(true)
		b.cancel()
		b.mu.Lock()
		ps := b.pubsub
		b.pubsub = nil
		b.mu.Unlock()
		if ps != nil {
			ps.Close() // ends the subscriber's blocked read
		}
		b.loops.Wait() // no refresh can add the lease back after this
		if b.started.Load() {
			ctx, cancel := context.WithTimeout(context.Background(), b.cfg.OpTimeout)
			if e := withdrawScript.Run(ctx, b.cfg.leaseClient, []string{b.nodesKey}, b.cfg.Node).Err(); e != nil {
				err = fmt.Errorf("comet/redis: removing the lease of node %s: %w", b.cfg.Node, e)
			}
			cancel()
		}
		b.mu.Lock()
		clear(b.live)
		b.mu.Unlock()
		if b.cfg.ownClient {
			if e := b.client.Close(); e != nil && err == nil {
				err = e
			}
			b.cfg.leaseClient.Close()
		}
	})
	return err
}

// emit hands e to the Receiver, unless the Broker is closing. Each
// message is handed over on the goroutine that read it, with no queue
// between: a hop fewer on every call between nodes. The Receiver never
// blocks; were it slow, the subscriber would read no more, and Redis
// would buffer for it (and past client-output-buffer-limit pubsub,
// disconnect it: messages are lost, which the handler repairs).
func (b *Broker) emit(e event) {
	if b.ctx.Err() != nil {
		return
	}
	switch {
	case e.gone != "":
		b.recv.NodeGone(e.gone)
	case e.lapsed:
		b.recv.LeaseLapsed()
	case e.storeLost:
		b.recv.StoreLost()
	case e.topic != "":
		b.recv.Publication(e.topic, e.pub)
	default:
		b.recv.Deliver(e.msg)
	}
}

// logLimiter logs a failure when it starts, again at most every logEvery
// while it lasts, and the recovery. It is safe for concurrent use: the
// subscriber's is shared by its reader and the watch that pings it.
type logLimiter struct {
	what string

	mu      sync.Mutex
	failing bool
	last    time.Time
}

func (l *logLimiter) fail(b *Broker, err error) {
	if errors.Is(err, context.Canceled) && b.ctx.Err() != nil {
		return // Close, not Redis
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failing && time.Since(l.last) < logEvery {
		return
	}
	l.failing, l.last = true, time.Now()
	b.cfg.Logger.Warn("comet/redis: "+l.what+" failing", "node", b.cfg.Node, "err", err)
}

func (l *logLimiter) ok(b *Broker) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failing {
		l.failing = false
		b.cfg.Logger.Info("comet/redis: "+l.what+" recovered", "node", b.cfg.Node)
	}
}
