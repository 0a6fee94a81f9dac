// Package session is Comet's transport-agnostic core: the Session, which
// keeps one client's conversation ordered and lossless across transport
// drops, and the Handler, which negotiates sessions and routes transport
// requests to them.
//
// Applications usually build a Handler with the root package comet, which
// adds every transport, and receive sessions in Options.Serve:
//
//	h := comet.NewHandler(&session.Options{
//		Serve: func(s *session.Session) {
//			for {
//				typ, p, err := s.Recv(s.Context())
//				if err != nil {
//					return
//				}
//				s.Send(s.Context(), typ, p)
//			}
//		},
//	})
//
// Concurrency: Send, TrySend, Close, CloseNow and the accessors of a
// Session may be called from any goroutine; only one goroutine may call
// Recv at a time. A cancelled ctx ends only the call it was passed to;
// Close ends the session. Handler methods are safe for concurrent use.
//
// Transports plug in as Adapters. An adapter has no Read: it gives the
// session a transport.Downstream to write to, and feeds what it reads to
// the Attachment (WebSocket) or lets the handler's POST path do it.
package session
