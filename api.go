package comet

import (
	"context"

	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// The server's types. Their methods are documented in package session.
type (
	// Handler is the http.Handler that negotiates sessions and serves
	// every request of their transports; NewHandler makes one. Call its
	// Shutdown before http.Server.Shutdown.
	Handler = session.Handler
	// Options configures a Handler; nil, and every zero field, means the
	// default the field documents.
	Options = session.Options
	// Session is one client's ordered, lossless conversation, which
	// Options.Serve runs: Recv, Send, TrySend, Close, Context, Request.
	Session = session.Session
	// RequestInfo describes the negotiate request that made a session.
	RequestInfo = session.RequestInfo
	// Negotiation is what Options.Negotiate sees of a negotiate request.
	Negotiation = session.Negotiation
	// Decision is Options.Negotiate's answer: the session's Auth, relay
	// Target and subprotocol, or a redirect.
	Decision = session.Decision
	// AuthError is what Options.Negotiate or Options.Authorize returns to choose a refusal's
	// status (401 or 403) and message.
	AuthError = session.AuthError
	// Observer receives session lifecycle events, for metrics.
	Observer = session.Observer
	// Stats is a snapshot of a Handler's counters, made by Handler.Stats
	// and served as JSON by Handler.ServeStats; the prometheus module
	// exports it to Prometheus.
	Stats = session.Stats
	// PreparedMessage is a message encoded once for many sessions, made by
	// Handler.NewPreparedMessage.
	PreparedMessage = session.PreparedMessage
	// Broker joins a Handler to the other nodes of a cluster
	// (Options.Broker), so that any node serves any request of any
	// session; the Redis one is in the module's redis directory.
	Broker = session.Broker
	// MemoryCluster joins handlers of one process into a cluster, for
	// tests and examples; NewMemoryCluster makes one.
	MemoryCluster = session.MemoryCluster
	// MemoryNode is one node of a MemoryCluster: a Broker.
	MemoryNode = session.MemoryNode
	// HistoryLimits bound a topic's history (Options.TopicHistory and
	// TopicHistoryAge; Publish's limits).
	HistoryLimits = session.HistoryLimits
)

// ValidNode reports whether id may name a node of a cluster (Broker.Node):
// 1 to 32 bytes of [A-Za-z0-9_-].
func ValidNode(id string) bool { return session.ValidNode(id) }

// TopicPosition is a place in a topic's history: an offset in an epoch
// (Session.Subscribe, Handler.Publish, client.Conn.Positions).
type TopicPosition = transport.TopicPosition

// Publish publishes to a topic through a cluster's broker from a process
// that holds no sessions, such as a worker; see session.Publish.
func Publish(ctx context.Context, b Broker, topic string, typ MessageType, p []byte, limits HistoryLimits) (TopicPosition, error) {
	return session.Publish(ctx, b, topic, typ, p, limits)
}

// NewMemoryCluster returns an empty cluster of handlers in one process;
// its Node method makes a Broker for each.
func NewMemoryCluster() *MemoryCluster { return session.NewMemoryCluster() }

// NodeHeader is the response header that names the node of a cluster
// that served a request.
const NodeHeader = session.NodeHeader

// The types both ends share.
type (
	// MessageType says whether a message is Text or Binary.
	MessageType = transport.MessageType
	// CloseCode is a session close code; see the Close constants.
	CloseCode = transport.CloseCode
	// CloseError is how a closed session reports its end: Recv and Send
	// return it, on the server and in the Go client.
	CloseError = transport.CloseError
	// Compression turns on permessage-deflate for WebSocket: the server's
	// Options.Compression, the Go client's client.Options.Compression.
	Compression = transport.Compression
)

// Message types.
const (
	// Text is a UTF-8 text message.
	Text = transport.Text
	// Binary is a message of arbitrary bytes.
	Binary = transport.Binary
)

// Close codes, as in RFC 6455 section 7.4: 1000–1999 protocol codes,
// 3000–3999 Comet's, 4000–4999 the application's. An application closes
// with CloseNormal or a code of its own range; transport.CloseCode's
// Terminal says which codes a client may reconnect after.
const (
	CloseNormal          = transport.CloseNormal          // the session is done
	CloseGoingAway       = transport.CloseGoingAway       // the peer left (page unload)
	CloseProtocolError   = transport.CloseProtocolError   // a frame broke the protocol
	CloseNoStatus        = transport.CloseNoStatus        // the client closed without a code (the browser's close())
	CloseInvalidPayload  = transport.CloseInvalidPayload  // text that is not valid UTF-8
	ClosePolicyViolation = transport.ClosePolicyViolation // refused by policy
	CloseMessageTooBig   = transport.CloseMessageTooBig   // a message exceeded the limit
	CloseInternalError   = transport.CloseInternalError   // the server failed
	CloseSessionExpired  = transport.CloseSessionExpired  // detached longer than the grace period
	CloseServerShutdown  = transport.CloseServerShutdown  // the server is shutting down
	CloseSlowConsumer    = transport.CloseSlowConsumer    // the peer did not read fast enough
	CloseUnauthorized    = transport.CloseUnauthorized    // the authorize hook refused
	CloseUnreachable     = transport.CloseUnreachable     // no transport could reach the server
	CloseForbiddenOrigin = transport.CloseForbiddenOrigin // the Origin was refused
	CloseOverloaded      = transport.CloseOverloaded      // session cap or rate limit hit
	CloseRateExceeded    = transport.CloseRateExceeded    // the peer sent messages faster than allowed

	// CloseBrokerUnavailable: the session's node lost its cluster's broker
	// too long. Only a client that lists it at negotiate gets it.
	CloseBrokerUnavailable = transport.CloseBrokerUnavailable
	// CloseStateLost: the session's state could not outlive its node
	// (Options.Failover), as its reason says. Only a client that lists it
	// at negotiate gets it.
	CloseStateLost = transport.CloseStateLost

	CloseRelayNotAllowed     = transport.CloseRelayNotAllowed     // the relay target is not allowed
	CloseRelayRefused        = transport.CloseRelayRefused        // the back-end refused the connection
	CloseRelayConnectTimeout = transport.CloseRelayConnectTimeout // connecting to the back-end timed out
	CloseRelayDNS            = transport.CloseRelayDNS            // the back-end's name did not resolve
	CloseRelayReset          = transport.CloseRelayReset          // the back-end reset the connection
	CloseRelayClosed         = transport.CloseRelayClosed         // the back-end closed after all its bytes were delivered
	CloseRelayIdle           = transport.CloseRelayIdle           // no bytes either way for the idle timeout
)

// Transport names, for Options.Transports and Session.Transport.
const (
	WebSocket = transport.WebSocket
	SSE       = transport.SSE
	Streaming = transport.Streaming
	LongPoll  = transport.LongPoll
)

// DeflateMinSize is the smallest WebSocket message that Compression
// compresses, in bytes; smaller ones, acks and heartbeats among them, go
// as they are.
const DeflateMinSize = transport.DeflateMinSize

// NegotiateHeader is the header in which the answer to a first attach that
// negotiates names its session, as the negotiate response's JSON
// (PROTOCOL.md section 3): what middleware reads to tell which session
// such a request serves, since it has no s parameter.
const NegotiateHeader = transport.NegotiateHeader

// Errors returned before anything is sent, besides the *CloseError of a
// closed session. Test for them with errors.Is.
var (
	// ErrWouldBlock is returned by TrySend when the outbound window is full.
	ErrWouldBlock = session.ErrWouldBlock
	// ErrMessageTooBig is returned by Send for a payload above
	// Options.MaxMessage.
	ErrMessageTooBig = transport.ErrMessageTooBig
	// ErrInvalidMessageType is returned by Send for a type other than Text
	// and Binary.
	ErrInvalidMessageType = transport.ErrInvalidMessageType
	// ErrInvalidCloseCode is returned by Close for a code an application
	// may not send: anything but 1000 and 4000–4999.
	ErrInvalidCloseCode = transport.ErrInvalidCloseCode
	// ErrInvalidUTF8 is wrapped by the error Send returns for a Text
	// message that is not valid UTF-8.
	ErrInvalidUTF8 = transport.ErrInvalidUTF8
	// ErrInvalidProtocols is wrapped by the error client.Dial returns for
	// an Options.Protocols the browser's WebSocket would refuse too: an
	// entry that is not an RFC 6455 token, or one listed twice.
	ErrInvalidProtocols = transport.ErrInvalidProtocols
	// ErrBrokerUnavailable is wrapped by the errors of a Broker that
	// cannot reach its store.
	ErrBrokerUnavailable = session.ErrBrokerUnavailable
	// ErrDraining is what Handler.Ready returns once Shutdown has begun.
	ErrDraining = session.ErrDraining
)

// CloseStatus returns the code of the *CloseError in err's chain, or 0 if
// there is none.
func CloseStatus(err error) CloseCode { return transport.CloseStatus(err) }

// Broadcast offers m to each of sessions without waiting: a session whose
// window is full is skipped (or closed, with Options.CloseSlowConsumers).
// It returns how many took the message. Handler.Broadcast offers it to
// every session of a handler.
func Broadcast(sessions []*Session, m *PreparedMessage) int { return session.Broadcast(sessions, m) }
