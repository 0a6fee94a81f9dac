// Package leakcheck fails tests that leave goroutines running.
//
// A test binary checks itself from TestMain:
//
//	func TestMain(m *testing.M) { leakcheck.Main(m) }
//
// and a single test can check itself with Check, called first so that its
// cleanup runs after the test's others.
//
// A goroutine counts as leaked when it did not exist before the tests
// started, is not one of the Go runtime's, the testing package's or
// os/signal's (those live as long as the process by design), and is still
// there after the tests passed. Goroutines exit asynchronously and signal
// nothing when they do, so the comparison is retried with a doubling backoff
// from 1 ms, for at most 5 s in all; a clean run costs one comparison.
//
// Before comparing, the idle keep-alive connections of http.DefaultTransport
// and of every transport passed to CloseIdle are closed: net/http keeps them
// open (http.DefaultTransport for 90 s), each with a reading and a writing
// goroutine. The
// goroutines of a connection still in use, say one whose response body was
// never closed, are reported: that is a real leak.
//
// Nothing is checked after a failure: a failing test often leaves goroutines
// behind, and their stacks would bury the failure itself.
//
// Check compares against every goroutine alive when it is called, so the
// goroutines that tests running in parallel start meanwhile count as its
// leaks: use it only in a test that runs alone. CloseIdle may be called from
// any goroutine.
package leakcheck
