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

// suite is the conformance suite bound to the factory of its servers,
// and the transports its per-transport tests run on.
type suite struct {
	factory Factory
	names   []string
}

// Run runs every conformance test, each on every transport it concerns,
// against servers made by f, as subtests of t: t.Run("Echo/websocket").
// Every transport of a test runs in parallel with the others; the tests
// themselves run one after another, except those marked parallel.
func Run(t *testing.T, f Factory) { suite{factory: f, names: transports}.run(t, false) }

// RunOn runs the tests that concern each transport, on the named
// transports only, against servers made by f: for a factory whose servers
// differ from another's in one transport only, such as long-polls taken
// over from net/http at once.
func RunOn(t *testing.T, f Factory, names ...string) { suite{factory: f, names: names}.run(t, true) }

// run runs the suite's tests, or only those that run per transport.
func (su suite) run(t *testing.T, perTransportOnly bool) {
	for _, tc := range []struct {
		name  string
		each  func(t *testing.T, name string) // run on each transport
		whole func(*testing.T)                // or once
	}{
		{"Echo", su.testEcho, nil},
		{"Ordering", su.testOrdering, nil},
		{"Replies", su.testReplies, nil},
		{"BufferingProxyAtConnect", nil, su.testBufferingProxyAtConnect},
		{"BufferingProxyMidSession", nil, su.testBufferingProxyMidSession},
		{"ServerClose", su.testServerClose, nil},
		{"ClientClose", su.testClientClose, nil},
		{"CloseWhileDetached", su.testCloseWhileDetached, nil},
		{"Compression", nil, su.testCompression},
		{"CompressionElsewhere", nil, su.testCompressionElsewhere},
		{"Oversize", su.testOversize, nil},
		{"InvalidUTF8", su.testInvalidUTF8, nil},
		{"Duplicates", su.testDuplicates, nil},
		{"ProofRequired", su.testProofRequired, nil},
		{"SlowConsumer", su.testSlowConsumer, nil},
		{"Protocol", su.testProtocol, nil},
		{"NoProtocol", nil, su.testNoProtocol},
		{"CloseNoStatus", su.testCloseNoStatus, nil},
		{"CloseEcho", su.testCloseEcho, nil},
		{"NoReuse", su.testNoReuse, nil},
		{"KillResume", su.testKillResume, nil},
		{"Shutdown", su.testShutdown, nil},
		{"Recycling", nil, su.testRecycling},
		{"SSEOverHTTP2", nil, su.testSSEOverHTTP2},
	} {
		switch {
		case tc.each != nil:
			t.Run(tc.name, su.perTransport(tc.each))
		case !perTransportOnly:
			t.Run(tc.name, tc.whole)
		}
	}
}

// transports is every transport the conformance suite runs on.
var transports = []string{transport.WebSocket, transport.SSE, transport.Streaming, transport.LongPoll}

// perTransport returns a test that runs test on each of the suite's
// transports, in parallel.
func (su suite) perTransport(test func(t *testing.T, name string)) func(*testing.T) {
	return func(t *testing.T) { su.runTransports(t, test) }
}

// runTransports runs one conformance test on each of the suite's
// transports.
func (su suite) runTransports(t *testing.T, test func(t *testing.T, name string)) {
	t.Helper()
	for _, name := range su.names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, name)
		})
	}
}
