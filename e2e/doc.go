// Package e2e holds the end-to-end tests of the Comet browser shim: real
// headless Chromium, driven by chromedp, against an in-process Comet
// server on loopback. It is a module of its own so that chromedp stays out
// of the root module's dependencies. It has no API; run it with
//
//	go test ./...
//
// from this folder, with the Debian package chromium installed (or its path
// in COMET_CHROMIUM). scripts/test.sh installs chromium when it is missing.
package e2e
