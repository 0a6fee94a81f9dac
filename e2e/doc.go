// Package e2e holds the end-to-end tests of the Comet browser shim: real
// headless Chromium, driven by chromedp, against an in-process Comet
// server on loopback. It is a module of its own so that chromedp stays out
// of the root module's dependencies. It has no API; run it with
//
//	go test ./...
//
// from this folder, with the Debian package chromium installed (or its path
// in COMET_CHROMIUM). scripts/test.sh installs chromium when it is missing.
//
// TestFallbackMatrix puts real proxies between the browser and the server:
// nginx and haproxy (Debian packages, which scripts/test.sh also installs;
// each started per case from a config written to a temporary folder, on a
// free loopback port, and stopped by its PID) and the synthetic
// misbehaving proxy of internal/faultproxy. It writes its report as
// markdown to COMET_MATRIX, or else to comet-fallback-matrix.md in the
// temporary folder, and names the file in its log; docs/fallback-matrix.md
// is a copy of one run's report.
//
// TestResumeUnderCuts keeps a session echoing for 20 s on each transport
// through a proxy that cuts every connection 1–3 s after it opened, and
// prints the share of the time with no live transport. COMET_CUT_SEED
// repeats the cut schedule of a logged run, here and in the matrix.
//
// TestCluster builds examples/cluster and runs three of its nodes, on a
// redis-server of its own, behind haproxy with the example's committed
// haproxy.cfg (ports changed): the example's page, loaded through
// haproxy, echoes 1,000 messages each way on each transport, and each
// HTTP session's requests must have been served by all three nodes.
//
// TestWebSocketFidelity runs one script (testdata/fidelity.js) against the
// browser's own WebSocket, talking to a plain Go WebSocket echo server, and
// against Comet (comet.js with comet-dom.js) on each transport, and diffs
// the recorded events and calls; fidelity_test.go lists the deviations it
// allows.
package e2e
