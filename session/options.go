package session

import (
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// Options configures a Handler. A nil *Options, and every zero field, means
// the default named in the field's comment. NewHandler copies the struct,
// so changing it afterwards has no effect.
type Options struct {
	// Prefix is the path the handler is mounted at, without a trailing
	// slash, e.g. "/comet". The handler serves Prefix+"/negotiate" and the
	// other paths of PROTOCOL.md section 2. Default "/comet".
	Prefix string

	// Serve runs the application's side of each new session, on its own
	// goroutine. When it returns, the session is closed with 1000 unless it
	// was closed already. Nil closes every session at once with 1011.
	Serve func(s *Session)

	// Negotiate runs on every negotiate request that passed the server's
	// own checks (Origin, version, rate and session limits, a well-formed
	// body), before a session is made, and decides: admit, refuse,
	// redirect, and which relay target to grant. A nil error admits the
	// request with the Decision (see Decision); an *AuthError chooses the
	// refusal's status (401 or 403) and message, any other error answers
	// 403. It replaces Authorize and Redirect, which are shorthands for
	// its two most common uses: setting it together with either is a
	// configuration error, and NewHandler panics. Nil decides with
	// Authorize and Redirect, and grants the target the client asked for
	// (the application, such as a relay, applies its own policy to it).
	Negotiate func(n *Negotiation) (Decision, error)

	// Protocols lists the subprotocols the server supports, as RFC 6455
	// tokens (an entry that is not one is logged and ignored). A client
	// that offers subprotocols gets the first of its own list that is
	// here (unless Negotiate chooses, see Decision.Protocol), or, if none
	// is, a 400 no_protocol refusal, as a WebSocket handshake fails. A
	// client that offers none gets none. Default none.
	Protocols []string

	// Authorize runs on every negotiate before a session is made. A nil
	// error admits the request and its value is kept as RequestInfo.Auth.
	// An *AuthError chooses the status (401 or 403) and message; any other
	// error answers 403. Nil admits everyone. It is a shorthand for
	// Negotiate returning Decision{Auth: value}.
	Authorize func(r *http.Request) (any, error)

	// Redirect, if set, runs on every negotiate after Authorize; a non-empty
	// url answers with a redirect to that mount URL and token (PROTOCOL.md
	// section 3). Nil never redirects. It is a shorthand for Negotiate
	// returning Decision{RedirectURL: url, RedirectToken: token}.
	Redirect func(r *http.Request) (url, token string)

	// AllowedOrigins lists the cross-origin pages allowed to connect, as
	// serialized origins, "scheme://host[:port]" (compared by scheme, host
	// and port, the scheme's default port implied). Same-origin requests
	// are always allowed. An entry that is not an origin is logged and
	// ignored. Default none.
	AllowedOrigins []string
	// InsecureAllowAnyOrigin allows every Origin. It exposes sessions to any
	// web page the user visits; use it only for public, unauthenticated
	// data. It never sends credentials to an origin outside AllowedOrigins,
	// even with AllowCredentials (NewHandler logs a warning for that pair).
	InsecureAllowAnyOrigin bool
	// InsecureAllowAnyOriginWithCredentials allows every Origin and adds
	// Access-Control-Allow-Credentials for each: any page the user visits
	// can then act with the user's cookies. Almost never what you want.
	InsecureAllowAnyOriginWithCredentials bool
	// AllowCredentials adds Access-Control-Allow-Credentials: true to
	// responses for AllowedOrigins, for cookie-based auth. Default false.
	AllowCredentials bool

	// TrustedProxies lists the networks of the reverse proxies and load
	// balancers in front of the handler. For a request whose immediate
	// peer is in one of them, the client's address (for the per-address
	// limits and RequestInfo.ClientAddr) is the rightmost address of
	// X-Forwarded-For (or, without it, of Forwarded's for=) that is not
	// itself in TrustedProxies, and the Origin check compares with the
	// scheme and host of X-Forwarded-Proto and X-Forwarded-Host (or
	// Forwarded's proto= and host=), first value. Have each proxy set or
	// overwrite those headers: one that passes a client's own copies
	// through lets the client choose its address. Default none: the
	// address is the peer's, the scheme the connection's, the host Host.
	TrustedProxies []netip.Prefix
	// TrustForwardedHost compares Origin with X-Forwarded-Host and
	// X-Forwarded-Proto from any peer (never the client address).
	//
	// Deprecated: list the proxies in TrustedProxies, which trusts those
	// headers from them only; anyone can send them.
	TrustForwardedHost bool
	// IPv6Prefix is how many leading bits of an IPv6 client address name
	// one client for the per-address limits (NegotiateRate, NegotiateBurst,
	// MaxSessionsPerAddress): one host usually owns a whole /64. Values
	// outside 1–128 are clamped. Default 64.
	IPv6Prefix int

	// Heartbeat is the downstream heartbeat interval. Default 25s.
	Heartbeat time.Duration
	// MinHeartbeat is the shortest heartbeat or hold a client may ask for.
	// Default 1s.
	MinHeartbeat time.Duration
	// Hold is how long a long-poll waits for a message. Default 25s.
	Hold time.Duration
	// PollRelease is how long a long-poll waits for a message on its
	// request's goroutine. A poll still parked then, on HTTP/1.1, takes
	// its connection over from net/http, as a stream does at once: the
	// request's goroutine, net/http's background reader and the
	// connection's buffers are let go, and the poll's answer, when it
	// comes, closes the connection (the client's next poll opens another).
	// An idle long-polling session then costs less memory than a parked
	// request; the price is a new connection per poll that waited longer
	// than PollRelease. Default 500ms; a negative value never releases.
	PollRelease time.Duration
	// Grace is how long a detached session waits for its client to attach
	// again before it ends with 3000. Default 30s.
	Grace time.Duration
	// AttachTimeout ends a negotiated session that never attaches.
	// Default 10s.
	AttachTimeout time.Duration
	// AckDelay is the longest a client may hold an ack. Default 200ms.
	AckDelay time.Duration
	// LazyAckDelay is the longest a client that asked for lazy acks
	// (PROTOCOL.md section 6), as the Go client does, may hold one, as
	// long as its unacknowledged messages stay below LazyAckMessages and
	// their payloads below LazyAckBytes; at either it acks at once. A
	// client receiving a message at a time then acks about once per
	// LazyAckDelay rather than once per message: a broadcast costs the
	// server one write per session, not a write and a read. What a
	// session keeps for resending is bounded by the thresholds (tighter
	// than the half window a client without lazy acks may hold), and a
	// client that only listens still acks every heartbeat. Default the
	// heartbeat interval, and at most that; negative grants no lazy
	// acks. The Go client holds each ack for between half and all of the
	// delay, drawn once per connection, so that the clients of one
	// broadcast do not all ack at once.
	LazyAckDelay time.Duration
	// LazyAckMessages and LazyAckBytes are the thresholds of lazy acks,
	// at most half the outbound window. Defaults 64 and 64 KiB.
	LazyAckMessages, LazyAckBytes int
	// MinClientTimeout and MaxClientTimeout bound the attach timeout a
	// client derives from its round trip. Defaults 300ms and 10s.
	MinClientTimeout, MaxClientTimeout time.Duration
	// ReplyWait is the longest a POST from a client that asked for replies
	// in POST answers (PROTOCOL.md section 6) waits, once its messages are
	// applied, for a downstream message to become due, which its answer
	// then carries instead of the poll or the stream: a long-polling
	// request/response round trip is then one request, not two. Only a
	// POST that carried a new message waits, and never longer, whatever
	// the application does: a reply sent later goes by the poll or the
	// stream as before. Default 1ms; a negative value never agrees to
	// replies in POST answers.
	ReplyWait time.Duration
	// WriteTimeout bounds each write to a client. Default 10s.
	WriteTimeout time.Duration
	// ReadTimeout bounds reading a POST body. Default 10s.
	ReadTimeout time.Duration

	// MaxMessage is the largest message payload in bytes (after base64
	// decoding). A larger inbound message closes the session with 1009; a
	// larger Send fails. Default 64 KiB.
	MaxMessage int
	// MaxBatch is the largest encoded batch in bytes (a POST body, a
	// WebSocket message). It is raised to 6*MaxMessage+64 if lower, so that
	// any message fits. Default 1 MiB.
	MaxBatch int
	// WindowMessages and WindowBytes bound each session's outbound buffer,
	// which is also its replay window: messages sent and not yet
	// acknowledged. When it is full, Send waits. Defaults 1024 and 1 MiB;
	// WindowBytes is raised to MaxMessage if lower.
	WindowMessages, WindowBytes int
	// InboundMessages and InboundBytes bound each session's buffer of
	// received messages not yet returned by Recv. When it is full the
	// server stops acknowledging; the client waits. Defaults 256 and 1 MiB.
	InboundMessages, InboundBytes int
	// CloseSlowConsumers makes Send close the session with 3002 instead of
	// waiting when the outbound window is full. Default false.
	CloseSlowConsumers bool
	// NoBinaryFrames keeps binary messages base64 in text frames on
	// WebSocket too, as before raw binary WebSocket messages (PROTOCOL.md
	// section 4). Default false: a client that asks for them at negotiate
	// gets them on WebSocket.
	NoBinaryFrames bool
	// NoSharing refuses shared attachments (PROTOCOL.md section 16), by
	// which a page's tabs send their sessions' attaches and POSTs through
	// one connection that one tab holds: GET and POST {Prefix}/share
	// answer 404, and every tab connects on its own. Default false. In a
	// cluster (Broker set) a node forwards a carrier's polls and POSTs to
	// the node that holds it, as it forwards a session's requests.
	NoSharing bool
	// Compression, if set, offers permessage-deflate (RFC 7692) at every
	// WebSocket handshake. A client that asks for it too (browsers do; the
	// Go client with its own Options.Compression) gets every WebSocket
	// message of at least transport.DeflateMinSize bytes compressed, both
	// ways, each on its own (no context takeover). The open frame, which
	// carries an attach ticket, always travels alone in an uncompressed
	// message: compressed beside text an attacker chooses, a secret leaks
	// through the compressed size (BREACH). Messages written together
	// share one compressed WebSocket message, so an application that sends
	// its own secrets on a session that also carries text others choose
	// should leave this off. Costs: CPU on every large message, several
	// times what sending it uncompressed takes; a compressor of 1.2 MB
	// (0.8 MB above level 1), from a shared pool, while a message is
	// compressed, and a 44 KB decompressor while one is read; none while
	// a session is idle. Inflated messages are held to MaxBatch. Other
	// transports never compress. Default nil: no compression, and the
	// handshake answers no Sec-WebSocket-Extensions. Figures and the
	// reasoning: docs/compression.md.
	Compression *transport.Compression
	// LegacyClose refuses what negotiate's noStatus asks for (PROTOCOL.md
	// section 10), as servers did before it: a client's close without a
	// code (1005) is then a protocol error (1002), and a client's close is
	// answered with its code and an empty reason. Default false: a client
	// that asks may close without a code, and its close is answered with
	// its own code and reason, as an RFC 6455 server echoes a close.
	LegacyClose bool

	// MaxSessions caps the sessions a handler holds; negotiate answers 503
	// beyond it. Default 100,000.
	MaxSessions int
	// MaxSessionsPerAddress caps the open sessions of one client address
	// (see TrustedProxies and IPv6Prefix); negotiate answers 429 beyond it.
	// Thousands of users can share an address behind a corporate proxy or
	// a carrier's NAT, so the default is high: 10,000. Negative: no cap.
	MaxSessionsPerAddress int
	// NegotiateRate is the sustained negotiates per second allowed from one
	// client address, NegotiateBurst the burst. Defaults 10 and 40. A
	// negative NegotiateRate disables the limit.
	NegotiateRate  float64
	NegotiateBurst int
	// MaxBufferedBytes caps the outbound bytes buffered across every
	// session's window; while it is reached, negotiate answers 503, so that
	// new sessions cannot push the process out of memory (open sessions
	// keep their windows, whose Send waits as usual). Default 1 GiB.
	// Negative: no cap.
	MaxBufferedBytes int
	// InboundRate is the sustained messages per second one client may send
	// on a session, InboundBurst the burst (default max(1, InboundRate));
	// a client that sends faster is closed with 3007 (inbound rate
	// exceeded). Zero means no limit, the default: the inbound buffer
	// bounds memory whatever the rate, and pushes back on a fast client.
	InboundRate  float64
	InboundBurst int

	// RequestHeaders names the negotiate request's headers that a session
	// keeps in RequestInfo.Header for the application. Authorize sees the
	// whole request and may keep anything else in its value. Default
	// User-Agent, Accept-Language, Referer and Origin.
	RequestHeaders []string
	// MaxRequestInfo caps the bytes of header values and cookies a session
	// keeps in RequestInfo (Authorize's value aside); values past it are
	// left out whole. Default 8 KiB.
	MaxRequestInfo int
	// ShutdownRetry is the longest reconnect hint Shutdown gives; each
	// session gets a random hint up to it. Default 5s.
	ShutdownRetry time.Duration
	// DrainDelay is how long Shutdown goes on serving as usual, with
	// Handler.Ready failing, before it closes or hands over its sessions:
	// long enough for the load balancer's health check to take the node
	// out (two checks of haproxy's, say), so that the requests of a
	// session handed over reach the nodes that take it over. Default 0.
	DrainDelay time.Duration

	// Transports lists the transports offered, in order of preference.
	// Default: every adapter given to NewHandler, in transport.Order().
	Transports []string

	// Broker joins this handler to the other nodes of a cluster: with one,
	// any node serves any request of any session, so a load balancer
	// needs no affinity (see Broker). Default nil: a single node, which
	// consults no broker.
	Broker Broker
	// BrokerTimeout bounds every wait on the Broker: a request forwarded
	// to the session's node that has no answer by then gets 503
	// broker_unavailable, and a node whose broker has been unreachable
	// that long (as its watch sees it, ten times per BrokerTimeout)
	// closes its sessions with 3008, for its lease has lapsed and the
	// other nodes no longer send it their requests. Default 10s.
	BrokerTimeout time.Duration
	// Failover makes each session outlive its node: the session's log is
	// kept in the Broker, which must then be a SessionStore too (the
	// Redis broker is, and so are a MemoryCluster's nodes), and when the node is lost another takes the
	// session over and runs Serve again (see Session.Resumed). It costs
	// a store write per burst of traffic: Send returns once the log
	// keeps the message, and the client's messages are acknowledged once
	// it keeps them. Default false: a session ends with its node.
	Failover bool
	// SaveAuth encodes a session's Auth (Decision.Auth) for its log, and
	// LoadAuth decodes it on the node that takes the session over, for
	// Session.Request. They matter only with Failover, and only for a
	// non-nil Auth: a session whose Auth is not nil and cannot be saved
	// (no SaveAuth, or an error) is not taken over when its node is
	// lost; it ends, with close code 3009 (state lost).
	SaveAuth func(auth any) ([]byte, error)
	LoadAuth func(data []byte) (any, error)
	// TopicHistory is how many of a topic's latest messages its history
	// keeps, for clients that resume the topic in a fresh session
	// (Session.Subscribe). Default 1000. Every node of a cluster, and a
	// worker's Publish, should give the same.
	TopicHistory int
	// TopicHistoryAge is how long a topic's history keeps a message.
	// Default 10 minutes.
	TopicHistoryAge time.Duration
	// Observer receives lifecycle events. Default none.
	Observer *Observer
	// Logger receives the handler's logs. Default slog.Default().
	Logger *slog.Logger
}

func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	setDefault(&c.Prefix, "/comet")
	setDefault(&c.Heartbeat, 25*time.Second)
	setDefault(&c.MinHeartbeat, time.Second)
	setDefault(&c.Hold, 25*time.Second)
	setDefault(&c.PollRelease, 500*time.Millisecond)
	setDefault(&c.Grace, 30*time.Second)
	setDefault(&c.AttachTimeout, 10*time.Second)
	setDefault(&c.AckDelay, 200*time.Millisecond)
	setDefault(&c.LazyAckDelay, c.Heartbeat)
	setDefault(&c.LazyAckMessages, 64)
	setDefault(&c.LazyAckBytes, 64<<10)
	setDefault(&c.ReplyWait, time.Millisecond)
	setDefault(&c.MinClientTimeout, 300*time.Millisecond)
	setDefault(&c.MaxClientTimeout, 10*time.Second)
	setDefault(&c.WriteTimeout, 10*time.Second)
	setDefault(&c.BrokerTimeout, 10*time.Second)
	setDefault(&c.TopicHistory, 1000)
	setDefault(&c.TopicHistoryAge, 10*time.Minute)
	setDefault(&c.ReadTimeout, 10*time.Second)
	setDefault(&c.MaxMessage, 64<<10)
	setDefault(&c.MaxBatch, 1<<20)
	setDefault(&c.WindowMessages, 1024)
	setDefault(&c.WindowBytes, 1<<20)
	setDefault(&c.InboundMessages, 256)
	setDefault(&c.InboundBytes, 1<<20)
	setDefault(&c.MaxSessions, 100_000)
	setDefault(&c.MaxSessionsPerAddress, 10_000)
	setDefault(&c.MaxBufferedBytes, 1<<30)
	setDefault(&c.IPv6Prefix, 64)
	setDefault(&c.MaxRequestInfo, 8<<10)
	setDefault(&c.NegotiateRate, 10)
	setDefault(&c.NegotiateBurst, 40)
	setDefault(&c.ShutdownRetry, 5*time.Second)
	c.IPv6Prefix = min(max(c.IPv6Prefix, 1), 128)
	if c.InboundRate > 0 && c.InboundBurst <= 0 {
		c.InboundBurst = max(1, int(c.InboundRate))
	}
	if c.RequestHeaders == nil {
		c.RequestHeaders = []string{"User-Agent", "Accept-Language", "Referer", "Origin"}
	}
	c.MaxBatch = max(c.MaxBatch, 6*c.MaxMessage+64)
	c.WindowBytes = max(c.WindowBytes, c.MaxMessage)
	c.InboundBytes = max(c.InboundBytes, c.MaxMessage)
	c.MinHeartbeat = min(c.MinHeartbeat, c.Heartbeat, c.Hold)
	c.LazyAckDelay = min(c.LazyAckDelay, c.Heartbeat)
	c.LazyAckMessages = max(1, min(c.LazyAckMessages, c.WindowMessages/2))
	c.LazyAckBytes = max(1, min(c.LazyAckBytes, c.WindowBytes/2))
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Observer == nil {
		c.Observer = &Observer{}
	}
	c.AllowedOrigins = append([]string(nil), c.AllowedOrigins...)
	c.Transports = append([]string(nil), c.Transports...)
	c.Protocols = append([]string(nil), c.Protocols...)
	c.TrustedProxies = append([]netip.Prefix(nil), c.TrustedProxies...)
	c.RequestHeaders = append([]string(nil), c.RequestHeaders...)
	if c.Compression != nil {
		cc := *c.Compression
		c.Compression = &cc
	}
	return c
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// lazyAcks returns the lazy acks granted to a client that asks, or nil.
func (o *Options) lazyAcks() *transport.LazyAcks {
	if o.LazyAckDelay <= 0 {
		return nil
	}
	return &transport.LazyAcks{Delay: max(1, int(o.LazyAckDelay.Milliseconds())), Messages: o.LazyAckMessages, Bytes: o.LazyAckBytes}
}

// negotiateResponse fills the limits part of a negotiate response.
func (o *Options) negotiateResponse() transport.NegotiateResponse {
	return transport.NegotiateResponse{
		Version:        transport.Version,
		Heartbeat:      int(o.Heartbeat.Milliseconds()),
		MinHeartbeat:   int(o.MinHeartbeat.Milliseconds()),
		Hold:           int(o.Hold.Milliseconds()),
		Grace:          int(o.Grace.Milliseconds()),
		AckDelay:       int(o.AckDelay.Milliseconds()),
		MinTimeout:     int(o.MinClientTimeout.Milliseconds()),
		MaxTimeout:     int(o.MaxClientTimeout.Milliseconds()),
		MaxMessage:     o.MaxMessage,
		MaxBatch:       o.MaxBatch,
		WindowMessages: o.WindowMessages,
		WindowBytes:    o.WindowBytes,
	}
}
