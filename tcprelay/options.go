package tcprelay

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/seed-544bbf9f/comet"
)

// Options configures a Relay. A nil *Options, and every zero field, means
// the default named in the field's comment. New copies the struct.
type Options struct {
	// Allow lists the back-ends the relay may connect to; nothing else is
	// reachable. An entry is one of
	//
	//	host:port      a host name, exactly, and one port: "redis.internal:6379"
	//	IP:port        an address and one port: "10.0.0.7:6379", "[2001:db8::7]:6379"
	//	CIDR:port      a network and one port: "10.0.0.0/8:6379"
	//	CIDR:lo-hi     a network and a range of ports: "[2001:db8::/32]:8000-8099"
	//
	// (IPv6 in brackets; an IP address is a CIDR of one address, and takes
	// a range too). A name entry admits the addresses its name resolves
	// to, except special-purpose ones: loopback, private, unique-local,
	// link-local (the cloud metadata address among them), carrier-grade
	// NAT, multicast, unspecified, reserved and broadcast. Those only an
	// IP or CIDR entry lying within their network admits:
	// "127.0.0.1:6379" admits the local Redis, "0.0.0.0/0:443" does not.
	// A port of the Fetch standard's bad-port list is admitted only by an
	// entry that names it alone, not by a range. An entry that does not
	// parse is logged and left out. Default none: every target is refused.
	Allow []string

	// ConnectTimeout bounds resolving the target's name and connecting to
	// it. Default 10 s.
	ConnectTimeout time.Duration
	// IdleTimeout closes a relay (3106) through which no byte has passed,
	// either way, for that long. Default 5 min.
	IdleTimeout time.Duration
	// MaxConns caps the relayed connections the Relay holds at once;
	// MaxConnsPerClient those of one client (RequestInfo.ClientAddr: an
	// IPv4 address, or an IPv6 /64, which one host usually owns whole).
	// A session over either cap is closed with 3006 (overloaded), after
	// which the client may try again later. Defaults 10,000 and 16.
	MaxConns, MaxConnsPerClient int
	// ReadBuffer is how many bytes one read from a back-end takes, and so
	// the largest message the relay sends. It should not exceed the
	// handler's Options.MaxMessage; if it does, reads are sent in pieces
	// that fit. Default 16 KiB.
	ReadBuffer int

	// Dial opens the connection to the checked address, "ip:port" (never
	// a name: the relay resolves names itself, once, and dials what it
	// checked). Default a net.Dialer's DialContext.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Resolver resolves target names. Default net.DefaultResolver.
	Resolver Resolver

	// OnDial, if set, is called once per session with the relay's decision
	// and the result of connecting; OnClose once per relay that connected,
	// when it ends. They run on the session's goroutine and should not
	// block.
	OnDial  func(DialEvent)
	OnClose func(CloseEvent)
	// Logger receives the relay's logs: refusals and failures at Info,
	// connections at Debug. Default slog.Default().
	Logger *slog.Logger
}

// Resolver resolves a host name to its addresses; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// DialEvent reports a relay's decision and connection attempt.
type DialEvent struct {
	// Target is what the session was granted (RequestInfo.Target).
	Target string
	// Client is the client's address (RequestInfo.ClientAddr).
	Client netip.Addr
	// Addr is the address connected to, or the last one tried; the zero
	// AddrPort if none was.
	Addr netip.AddrPort
	// Allowed reports whether the policy allowed an address of the target.
	Allowed bool
	// Code is the close code of a failure (3100–3103, or 3006 for a cap);
	// 0 when the connection is open.
	Code comet.CloseCode
	// Reason says why, in more detail than the client is told.
	Reason string
	// Elapsed is the time taken to decide and connect.
	Elapsed time.Duration
}

// CloseEvent reports the end of a relayed connection.
type CloseEvent struct {
	Target string
	Client netip.Addr
	Addr   netip.AddrPort
	// BytesUp counts the bytes written to the back-end, BytesDown those
	// read from it and sent to the client.
	BytesUp, BytesDown int64
	// Duration is how long the connection was open.
	Duration time.Duration
	// Code is the session's close code: one of the relay's (3104–3106),
	// or the client's or the server's when they closed the session.
	Code comet.CloseCode
	// Reason is the close's reason, or the back-end error's text.
	Reason string
}

func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 5 * time.Minute
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 10_000
	}
	if c.MaxConnsPerClient <= 0 {
		c.MaxConnsPerClient = 16
	}
	if c.ReadBuffer <= 0 {
		c.ReadBuffer = 16 << 10
	}
	if c.Dial == nil {
		c.Dial = (&net.Dialer{}).DialContext
	}
	if c.Resolver == nil {
		c.Resolver = net.DefaultResolver
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Allow = append([]string(nil), c.Allow...)
	return c
}
