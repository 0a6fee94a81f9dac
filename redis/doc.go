// Package redis is Comet's session.Broker on Redis: it lets several
// handlers, in several processes behind a load balancer with no sticky
// sessions, know which of them are alive and send each other messages.
// It is a module of its own so that this is the only place Redis is
// imported: the root module, and a program that runs a single node, never
// link go-redis.
//
// Make a Broker with New and give it to the handler's Options.Broker:
//
//	b, err := redis.New(&redis.Options{URL: "redis://comet:secret@10.0.0.5:6379/0"})
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer b.Close()
//
// The URL is read by go-redis' ParseURL (rediss:// for TLS; query options
// such as pool_size). A client the URL cannot describe (TLS settings,
// Sentinel) is passed as Options.Client instead; set its
// ContextTimeoutEnabled so that OpTimeout bounds its calls.
//
// # What it keeps in Redis
//
// With the default prefix "comet":
//
//	comet:nodes        sorted set: node id → when its lease lapses, in ms of Redis's clock
//	comet:node:<id>    PUB/SUB channel: the inbox of node <id>
//
// Every Refresh (DefaultRefresh, 1 s) each node runs one Lua script that
// reads Redis's clock (TIME), renews its own lease for LeaseTTL
// (DefaultLeaseTTL, 5 s), removes the leases that have lapsed and returns
// the rest. The nodes' own clocks therefore never matter. The live set is
// kept in memory, so Alive costs no call; a node that leaves it is
// reported once to Receiver.NodeGone: at the next refresh after a peer's
// Close, which marks its lease withdrawn (a negative score, kept for a
// lease's length), or within LeaseTTL + Refresh (+ OpTimeout) of a
// peer's death. A peer missing from the set, not marked withdrawn, may be
// one Redis lost (a restart without persistence, after which every node
// renews its lease within a Refresh): a node keeps the lease it knew
// until it lapses by its own clock, and only then reports it gone, rather
// than report a live peer gone and have its sessions answered 404. While
// Redis is unreachable, Alive turns false for a peer whose known lease
// lapses.
//
// Send is one PUBLISH to the destination's channel; each node reads its
// own channel, and the channels of the topics it subscribes to, on one
// dedicated connection, in one goroutine, which hands each message to the
// Receiver itself (the lease's goroutine reports NodeGone). PUB/SUB is at most once: what is published while a
// subscriber reconnects is lost, which the handler detects and repairs.
// Messages of one goroutine to one node stay in order, since each PUBLISH
// returns before the next starts and one connection receives them all.
//
// The registry is one key, so Redis Cluster would need no hash tag for
// it; channels are not keys (cluster PUB/SUB reaches every shard).
//
// # Connections
//
// A Broker holds at most PoolSize + 2 connections to Redis, whatever the
// traffic: its client's pool, which Sends and topic calls share (go-redis'
// default is 10 per GOMAXPROCS; pool_size in the URL sets it, and the
// Broker caps the client it makes at that size), one connection of the
// lease's own (so that a burst of calls cannot starve the refresh; with a
// Client passed in, the lease shares it), and one subscriber connection,
// briefly two when a silent one is replaced.
//
// # Failures
//
// Every call to Redis is bounded by OpTimeout (DefaultOpTimeout, 1 s). Err
// is nil while the last refresh succeeded, no more than Refresh +
// OpTimeout (or half the lease, if longer) ago, and the inbox is
// subscribed; otherwise it wraps
// session.ErrBrokerUnavailable and says why. A Redis that closes its
// connections shows in Err at once (the subscriber's read fails); one cut
// off silently, within Refresh + OpTimeout (2 s with the defaults). Failures are logged when
// they start, every 30 s while they last, and when they end. The refresh
// is retried every Refresh, the subscription at once and then with a
// backoff up to Refresh, and go-redis reconnects by itself: when Redis
// returns, everything resumes, with no new Broker. An idle subscriber
// connection is sent a PING every Refresh; one that does not answer
// within OpTimeout is replaced, since a connection cut without a reset
// looks idle forever.
//
// The client the Broker makes from a URL does not retry (go-redis'
// MaxRetries -1): a retried PUBLISH whose reply was lost would deliver
// twice. The lease script is idempotent, so a Client passed in may retry;
// its retries may then duplicate a Send.
//
// New connects nothing: Start subscribes the inbox, and once Redis has
// confirmed the subscription announces the node, so that no peer sees a
// node alive that cannot yet receive. A wrong address or password shows
// in Err and the log, not as an error of New.
//
// All methods of a Broker are safe for concurrent use.
package redis
