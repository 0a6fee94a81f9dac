package redis

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/seed-544bbf9f/comet/session"
)

// The defaults of Options.
const (
	// DefaultPrefix starts every key and channel of the broker.
	DefaultPrefix = "comet"
	// DefaultLeaseTTL is how long a node's announcement lasts in Redis
	// unless refreshed: a node that dies is gone for its peers this long
	// after its last refresh, plus at most one of their Refresh periods.
	DefaultLeaseTTL = 5 * time.Second
	// DefaultRefresh is how often a node renews its lease and reads the
	// live set: the age, at most, of what Alive reports.
	DefaultRefresh = time.Second
	// DefaultOpTimeout bounds every call to Redis.
	DefaultOpTimeout = time.Second
)

// Options configures a Broker. A nil *Options is not enough on its own:
// URL or Client must say where Redis is.
type Options struct {
	// URL is where Redis is, as go-redis' ParseURL reads it:
	// redis://[user:password@]host:port/db or rediss://… for TLS, with
	// query options such as pool_size. The Broker makes its client from
	// it, with no retries (see the package doc), and closes it on Close.
	// Empty: Client must be set.
	URL string
	// Client is used instead of URL, for what a URL cannot say (TLS
	// settings, Sentinel, Cluster). The Broker does not close it. Its
	// retries may duplicate a message, and unless ContextTimeoutEnabled
	// is set its own read and write timeouts, not OpTimeout, bound each
	// call. Nil: URL must be set.
	Client goredis.UniversalClient
	// Node is this node's id (see session.Broker.Node). Empty: a random
	// id of 12 letters and digits, new on every New.
	Node string
	// Prefix starts every key and channel the Broker uses, so that
	// several services can share one Redis. Empty: DefaultPrefix.
	Prefix string
	// LeaseTTL is how long the node's lease lasts unless refreshed.
	// Zero: DefaultLeaseTTL. It must exceed Refresh + OpTimeout, or a
	// live node could lapse between two refreshes.
	LeaseTTL time.Duration
	// Refresh is how often the lease is renewed and the live set read.
	// Zero: DefaultRefresh.
	Refresh time.Duration
	// OpTimeout bounds every call to Redis, a Send's included. Zero:
	// DefaultOpTimeout.
	OpTimeout time.Duration
	// Logger receives what goes wrong with Redis, at most once per
	// logEvery while it stays wrong. Nil: slog.Default().
	Logger *slog.Logger
}

// logEvery is how often a failure that persists is logged again.
const logEvery = 30 * time.Second

// config is Options with its defaults filled in.
type config struct {
	Options
	ownClient bool // the Broker made Client from URL, and closes it
	// leaseClient refreshes the lease: a client of one connection of its
	// own when the Broker made Client, else Client.
	leaseClient goredis.UniversalClient
}

func newConfig(opts *Options) (*config, error) {
	var c config
	if opts != nil {
		c.Options = *opts
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.Refresh == 0 {
		c.Refresh = DefaultRefresh
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = DefaultOpTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Node == "" {
		c.Node = randomNode()
	}
	switch {
	case !session.ValidNode(c.Node):
		return nil, fmt.Errorf("comet/redis: invalid node id %q: 1 to 32 bytes of [A-Za-z0-9_-]", c.Node)
	case c.LeaseTTL < 0 || c.Refresh < 0 || c.OpTimeout < 0:
		return nil, errors.New("comet/redis: negative LeaseTTL, Refresh or OpTimeout")
	case c.LeaseTTL <= c.Refresh+c.OpTimeout:
		return nil, fmt.Errorf("comet/redis: LeaseTTL %v must exceed Refresh + OpTimeout (%v)", c.LeaseTTL, c.Refresh+c.OpTimeout)
	case c.URL != "" && c.Client != nil:
		return nil, errors.New("comet/redis: both URL and Client set; set one")
	case c.URL == "" && c.Client == nil:
		return nil, errors.New("comet/redis: neither URL nor Client set; set one")
	}
	if c.URL != "" {
		o, err := goredis.ParseURL(c.URL)
		if err != nil {
			return nil, fmt.Errorf("comet/redis: URL: %w", err)
		}
		// A retried PUBLISH whose reply was lost delivers twice; the
		// lease script is idempotent, but nothing gains from retrying
		// it within one period either.
		o.MaxRetries = -1
		// Without it go-redis bounds a call by ReadTimeout, not by the
		// context's deadline, and a Send outlasts OpTimeout.
		o.ContextTimeoutEnabled = true
		o.DialTimeout = c.OpTimeout
		// go-redis opens connections past PoolSize when all are busy
		// unless MaxActiveConns caps them: cap them, so that a burst of
		// Sends waits for a connection rather than opening hundreds.
		if o.PoolSize == 0 {
			o.PoolSize = 10 * runtime.GOMAXPROCS(0)
		}
		if o.MaxActiveConns == 0 {
			o.MaxActiveConns = o.PoolSize
		}
		// Redis 7 does not know the handshake of maintenance
		// notifications; asking for it only logs an error per conn.
		o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
		c.Client = goredis.NewClient(o)
		c.ownClient = true
		// The lease has a connection of its own: a burst of calls that
		// holds the whole pool (a thousand subscribers reading a topic's
		// history) must not starve the refresh into a lapsed lease and
		// the node into refusing sessions.
		lo := *o
		lo.PoolSize, lo.MaxActiveConns, lo.MinIdleConns = 1, 1, 0
		c.leaseClient = goredis.NewClient(&lo)
	} else {
		c.leaseClient = c.Client
	}
	return &c, nil
}

// randomNode returns 12 characters of lowercase base32: 60 random bits,
// enough that the nodes alive at once never share one.
func randomNode() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	b := make([]byte, 12)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[b[i]&31]
	}
	return string(b)
}
