// Package faultproxy is a small HTTP reverse proxy for loopback that
// misbehaves on purpose, the way the proxies, firewalls and antivirus boxes
// Comet must survive do, in ways no packaged proxy reproduces on demand:
//
//   - UpgradeBlackHole answers a WebSocket upgrade with the origin's 101 and
//     then drops every byte in both directions, keeping the connection open;
//   - UpgradeHang reads an upgrade request and never answers it;
//   - UpgradeRefuse answers every upgrade 400, as a proxy that strips the
//     Upgrade header makes the origin do;
//   - Options.Cut closes every client connection a random time after it
//     was accepted, from a seeded source so that a failing run can be
//     repeated.
//
// Everything else is proxied unchanged, streamed responses flushed as they
// arrive. It is shared by the browser tests (e2e/) and the benchmarks
// (bench/); it is not part of Comet's API.
//
// Start listens on 127.0.0.1 only. Close stops the proxy and every
// connection through it; Stats and Addr may be called from any goroutine.
package faultproxy
