// Package client is Comet's Go client: one ordered, lossless session with
// a Comet server, carried by WebSocket where it works, by Server-Sent
// Events or XHR streaming where a proxy refuses WebSocket, and by
// long-polling where a proxy buffers streams too, and resumed across
// dropped connections without losing or repeating a message in either
// direction. Transports are tried in that order; a stream is checked by
// probes throughout its life, and one found buffered is left for
// long-polling (PROTOCOL.md section 8).
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
// period allows, and only then reports the end of the session. Every end
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
// Concurrency: Send, Close and CloseNow may be called from any goroutine;
// only one goroutine may call Recv at a time. Transport, Protocol,
// SessionID and Done may be called from any goroutine.
package client
