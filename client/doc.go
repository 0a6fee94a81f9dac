// Package client is Comet's Go client: one ordered, lossless session with
// a Comet server, carried by WebSocket where it works, by Server-Sent
// Events or XHR streaming where a proxy refuses WebSocket, and by
// long-polling where a proxy buffers streams too, and resumed across
// dropped connections without losing or repeating a message in either
// direction. Transports are tried in that order; a stream that could be
// left for long-polling is checked by probes throughout its life, and one
// found buffered is left (PROTOCOL.md section 8).
//
// A client application imports this package, and package comet for the
// names both ends share: message types (comet.Text), close codes
// (comet.CloseNormal) and comet.CloseError. Dial negotiates a session at
// the server's mount URL and attaches to it:
//
//	c, err := client.Dial(ctx, srv.URL+"/comet", nil)
//	if err != nil {
//		fmt.Println("dial:", err)
//		return
//	}
//	if err := c.Send(ctx, comet.Text, []byte("hello")); err != nil {
//		fmt.Println("send:", err)
//		return
//	}
//	_, p, err := c.Recv(ctx)
//
// (an excerpt of ExampleDial, which a test keeps it equal to).
//
// A dropped transport is not an error the application sees: the client
// attaches again, to the same session, for as long as the server's grace
// period allows, and only then reports the end of the session (unless
// Options.Reconnect opens a fresh one: see GapError). Every end
// is reported by Recv and Send as a *comet.CloseError; use
// comet.CloseStatus to read its code. Besides the codes of a close by
// either side, the client reports (with Remote false) 1001 after CloseNow;
// 1002, 1007 or 1009 when the server broke the protocol; 3000 when the
// session could not be resumed within the grace period or the server no
// longer knows it; 3003 when an attach is refused as unauthorized; and
// 3005 when the server refuses the client's Origin.
//
// The wire protocol is PROTOCOL.md at the root of this module.
//
// # Compared with the browser shim
//
// The client makes the judgements of the browser shim (js/src) where a Go
// program needs them, and differs where a process is not a page. Each row
// reads: what; the shim; the Go client.
//
//   - First transport. Shim: WebSocket alone for max(250 ms, 3×RTT), then
//     raced by an HTTP transport; beside them, from the start, a long-poll
//     probe, and once it has been answered three times the session
//     delivers by long-polling until the race is won (early delivery,
//     PROTOCOL.md section 8). Go: WebSocket, SSE, XHR streaming,
//     long-polling, tried in turn, with no early delivery: a WebSocket
//     that a proxy black-holes or leaves hanging costs the attach
//     timeout; a stream held back (stream_buffered) skips the other
//     stream.
//   - Negotiate. Shim: a POST, then the attaches. Go: the same, except
//     that a client with one transport negotiates in its first attach, one
//     round trip (Options.SeparateNegotiate turns that off).
//   - Attach with nothing left to fall back to (a forced transport). Shim:
//     the attach timeout, minTimeout + 4×RTT. Go: Options.LastResortTimeout
//     (30 s), and Dial's ctx.
//   - Buffered stream. Both: a probe that is not echoed in time, or
//     heartbeats in a burst, leave streams for long-polling
//     (stream_buffered).
//   - Idle cut (two drops after the same silence). Both: the next attach
//     asks for heartbeats at half that silence (idle_cut).
//   - Early deaths (three attachments in a row dead within 10 s). Both:
//     the next transport in the order (early_death); a forced one is kept.
//   - Back to WebSocket. Shim: a background probe when a page starts on a
//     transport it remembered. Go: a background probe after any fallback,
//     from Options.UpgradeDelay (10 s) doubling to 5 min, for the Conn's
//     life. Both commit a WebSocket whose probe was echoed (upgraded).
//   - Memory. Shim: per network, in localStorage, for a day (transport,
//     heartbeat, no WebSocket). Go: none across runs; what a Conn learns
//     lasts for the Conn, its fresh sessions included.
//   - Resume backoff. Shim: at once after a first drop, then capped and
//     jittered. Go: at once after an attachment that lived 10 s, otherwise
//     capped and jittered (100 ms to 5 s).
//   - A lost session (3000 and the other codes of PROTOCOL.md section 10
//     that allow a reconnect). Shim: the reconnect option and the gap
//     event. Go: Options.Reconnect and a *GapError from Recv. Both wait
//     1 s doubling to 30 s, at least the server's retry hint.
//   - Late timers. Shim: a timer that fires late (a background tab) gives
//     no verdict. Go: not needed, a process's timers are not throttled.
//   - Page lifecycle. Shim: a beacon close on pagehide, an immediate resume
//     on the online event. Go: none; CloseNow or Close.
//   - Flow control. Shim: send never blocks, and throws past maxBuffered
//     (8 MiB unacknowledged). Go: Send waits on a full window, and Recv's
//     full buffer stops reading.
//
// The end-to-end tests of this package (e2e_*_test.go) check the Go side
// against a real server on loopback, each fault injected on the way.
//
// Reads: a WebSocket over plain TCP is read by the goroutine waiting in
// Recv, so that a message reaches it with no hand-off to another
// goroutine; a cancelled ctx still ends Recv at once. While nobody waits
// in Recv for more than 50 ms, or Send waits for room, a goroutine of
// the Conn's reads instead, so the server's messages, acks and close are
// taken in all the same.
//
// Concurrency: Send, Close and CloseNow may be called from any goroutine;
// only one goroutine may call Recv at a time. Transport, Protocol,
// SessionID and Done may be called from any goroutine.
package client
