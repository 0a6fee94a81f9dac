// Package comet gives Go services and browser apps one socket-like session
// that works on every network: WebSocket where it works, Server-Sent
// Events, XHR streaming or long-polling where a proxy or firewall breaks
// it, with lossless resume across transport drops.
//
// This package is the whole server-side API: NewHandler, the Handler it
// returns, the Session an application serves, their Options, and the
// message types and close codes both ends share. A server application
// imports only this package; a Go client application imports the client
// package, and this one for the shared names (Text, CloseNormal,
// CloseError, …).
//
//	h := comet.NewHandler(&comet.Options{
//		Serve: func(s *comet.Session) {
//			ctx := s.Context() // ends when the session does
//			for {
//				typ, p, err := s.Recv(ctx)
//				if err != nil {
//					return // a *comet.CloseError once closed
//				}
//				if err := s.Send(ctx, typ, p); err != nil {
//					return
//				}
//			}
//		},
//	})
//	mux := http.NewServeMux()
//	mux.Handle("/comet/", h)
//
// (an excerpt of ExampleNewHandler, which a test keeps it equal to).
//
// # Layout
//
// The implementation stays in the packages it is built from, each with
// one concern: transport holds the wire format and the seam a transport
// implements (transport.Adapter and transport.Attachment); session is the
// transport-agnostic engine that keeps a conversation ordered and
// lossless; websocket, sse, streaming and longpoll each adapt one wire
// format to the seam; client is the Go client; js embeds the browser shim.
//
// The names applications use are type aliases and constants of those
// packages, declared here. An alias is the same type, not a wrapper: a
// *comet.Session is a *session.Session, errors.As with a *comet.CloseError
// matches the *transport.CloseError the client returns, and nothing is
// copied or converted at run time. Moving the types here instead would
// merge the engine into the package that wires the transports, and a
// wrapper per type would mean a second set of methods and docs to keep in
// step, plus an allocation and an indirection per session. One
// consequence: go doc lists a type's methods under the package that
// declares it, so read `go doc session.Session` for Session's methods and
// `go doc session.Options` for every option.
//
// Concurrency: Send, TrySend, Close, CloseNow and the accessors of a
// Session may be called from any goroutine; only one goroutine may call
// Recv at a time. Handler methods are safe for concurrent use.
//
// The wire protocol is PROTOCOL.md at the root of this module.
package comet

import (
	"github.com/seed-544bbf9f/comet/longpoll"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/sse"
	"github.com/seed-544bbf9f/comet/streaming"
	"github.com/seed-544bbf9f/comet/websocket"
)

// NewHandler returns a Handler offering every transport, best first:
// WebSocket, SSE, XHR streaming, long-polling (or Options.Transports).
// opts may be nil; see Options for each setting. Mount it under
// Options.Prefix, outside any compression middleware: one that buffers its
// output stalls the streaming transports.
func NewHandler(opts *Options) *Handler {
	return session.NewHandler(opts, websocket.New(nil), sse.New(), streaming.New(nil), longpoll.New())
}
