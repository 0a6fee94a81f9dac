package conformance

import (
	"net"
	"net/http"
	"testing"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// Server is a running Comet service under test: one handler, or several
// nodes behind one URL.
type Server struct {
	// URL is the base URL clients dial, the handlers' prefix included:
	// http://127.0.0.1:port/comet.
	URL string
	// Client is the HTTP client to reach URL with; nil means the clients'
	// default, which is right unless the server needs its own (HTTP/2 over
	// TLS with a test certificate).
	Client *http.Client
	// Handlers is every node's handler; one node has Handlers[0] alone.
	// The suite reads them (Sessions, Range) and shuts them down.
	Handlers []*session.Handler
}

// EnvOptions are the settings that few tests need. A factory that cannot
// honour one of them calls t.Skip, saying why; it never ignores one.
type EnvOptions struct {
	// Wrap, if set, wraps the handler of every node (a recorder, a
	// fault): it sees each request as the node that serves it does, so a
	// recorder learns what the nodes did, not what a proxy in front of
	// them made of it. It is called once per node.
	Wrap func(http.Handler) http.Handler
	// Adapters, if set, are the transports every node serves instead of
	// comet.NewHandler's; NewHandler honours them.
	Adapters []transport.Adapter
	// HTTP2 asks for HTTP/2 over TLS all the way to the nodes, which a
	// test may check with Wrap; the client that trusts the server's
	// certificate goes in Server.Client.
	HTTP2 bool
	// Listener, if set, wraps the listener that accepts the clients'
	// connections (a wirecount.Listener). It is called once.
	Listener func(net.Listener) net.Listener
}

// Factory starts a server with opts and the settings of eo, and registers
// its cleanup with t.Cleanup. The suite has wrapped opts.Serve, which
// every node must run for the sessions it makes, and set opts.Logger,
// which routes to t; a factory copies opts before changing it, and may
// give each node a logger of its own derived from opts.Logger.
//
// The suite closes leftover sessions and shuts every handler down before
// the factory's cleanups run, so those need only close the servers.
type Factory func(t *testing.T, opts *session.Options, eo EnvOptions) *Server

// NewHandler returns one node's handler for opts as SingleNode makes it:
// comet.NewHandler's transports, or eo.Adapters if set. A cluster factory
// calls it for each node, with opts copied and amended for the node.
func NewHandler(opts *session.Options, eo EnvOptions) *session.Handler {
	if eo.Adapters != nil {
		return session.NewHandler(opts, eo.Adapters...)
	}
	return comet.NewHandler(opts)
}

// suite is the conformance suite bound to the factory of its servers.
type suite struct{ factory Factory }

// Run runs every conformance test, each on every transport it concerns,
// against servers made by f, as subtests of t: t.Run("Echo/websocket").
// Every transport of a test runs in parallel with the others; the tests
// themselves run one after another, except those marked parallel.
func Run(t *testing.T, f Factory) {
	su := suite{factory: f}
	for _, tc := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"Echo", perTransport(su.testEcho)},
		{"Ordering", perTransport(su.testOrdering)},
		{"Replies", perTransport(su.testReplies)},
		{"BufferingProxyAtConnect", su.testBufferingProxyAtConnect},
		{"BufferingProxyMidSession", su.testBufferingProxyMidSession},
		{"ServerClose", perTransport(su.testServerClose)},
		{"ClientClose", perTransport(su.testClientClose)},
		{"CloseWhileDetached", perTransport(su.testCloseWhileDetached)},
		{"Compression", su.testCompression},
		{"CompressionElsewhere", su.testCompressionElsewhere},
		{"Oversize", perTransport(su.testOversize)},
		{"InvalidUTF8", perTransport(su.testInvalidUTF8)},
		{"Duplicates", perTransport(su.testDuplicates)},
		{"ProofRequired", perTransport(su.testProofRequired)},
		{"SlowConsumer", perTransport(su.testSlowConsumer)},
		{"Protocol", perTransport(su.testProtocol)},
		{"NoProtocol", su.testNoProtocol},
		{"CloseNoStatus", perTransport(su.testCloseNoStatus)},
		{"CloseEcho", perTransport(su.testCloseEcho)},
		{"NoReuse", perTransport(su.testNoReuse)},
		{"KillResume", perTransport(su.testKillResume)},
		{"Shutdown", perTransport(su.testShutdown)},
		{"Recycling", su.testRecycling},
		{"SSEOverHTTP2", su.testSSEOverHTTP2},
	} {
		t.Run(tc.name, tc.run)
	}
}

// transports is every transport the conformance suite runs on.
var transports = []string{transport.WebSocket, transport.SSE, transport.Streaming, transport.LongPoll}

// perTransport returns a test that runs test on every transport, in
// parallel.
func perTransport(test func(t *testing.T, name string)) func(*testing.T) {
	return func(t *testing.T) { runTransports(t, test) }
}

// runTransports runs one conformance test on every transport.
func runTransports(t *testing.T, test func(t *testing.T, name string)) {
	t.Helper()
	for _, name := range transports {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, name)
		})
	}
}
