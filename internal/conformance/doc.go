// Package conformance is Comet's conformance suite: every test of what a
// Comet service promises a client (echo, ordering, close codes, limits,
// proof of ownership, resume across cuts, shutdown, buffering proxies,
// compression, subprotocols), run on every transport against servers that
// a Factory makes. It is imported by tests only, of this module and of
// nested modules; it imports testing.
//
// A test package runs the suite against its kind of server:
//
//	func TestConformance(t *testing.T) { conformance.Run(t, conformance.SingleNode) }
//
// SingleNode serves one handler on an httptest server. A cluster factory
// starts several nodes, each with a handler that NewHandler makes from its
// own copy of the options the suite passes, and puts one URL in front of
// them, say an httptest server running RoundRobin over the nodes' URLs;
// it returns every node's handler in Server.Handlers. The suite never
// assumes one process: it reads the sessions of all the handlers, shuts
// them all down, and takes the server side of each session from whichever
// node ran Serve for it. A factory that cannot honour an EnvOptions field
// skips that test with t.Skip and the reason.
//
// Run calls t.Run once per test, each running its transports in parallel;
// each test starts servers of its own, and the servers' logs go to the
// test that started them.
package conformance
