// Package session is Comet's transport-agnostic engine: the Session, which
// keeps one client's conversation ordered and lossless across transport
// drops, and the Handler, which negotiates sessions, checks every request
// (version, Origin, tickets, secrets) and hands attach requests to the
// transports.
//
// Applications use it through the root package comet, which names its
// types (comet.Session is session.Session) and builds a Handler with every
// transport; this package documents their methods. NewHandler here takes
// the transports explicitly, for a server that offers a different set.
//
// Concurrency: Send, TrySend, Close, CloseNow and the accessors of a
// Session may be called from any goroutine; only one goroutine may call
// Recv at a time. A cancelled ctx ends only the call it was passed to;
// Close ends the session. Handler methods are safe for concurrent use.
//
// Writes: where a transport's writes never wait on the client (WebSocket,
// and SSE or XHR streaming on HTTP/1.1, over plain TCP), Send, TrySend and
// Broadcast write a message from the calling goroutine when no write is
// in flight, with no hand-off to another goroutine; bytes the socket does
// not take at once go from a goroutine that lives until they have, within
// the session's window. Messages sent in a tight loop go to a writer
// goroutine instead, which batches them. Either way Send waits only for
// room in the window, never for the client to read.
//
// Reads: a WebSocket over plain TCP is read by the goroutine that waits
// in Recv, and a message reaches it with no hand-off to another
// goroutine; an idle session then costs its application's goroutine and
// no other. Whenever nobody waits in Recv (the application is elsewhere
// for more than 50 ms, Send waits for room in the window, the session is
// closing), a goroutine of the session's reads instead, until the
// application is back in Recv; the client's acks, heartbeats and close
// are read either way. Elsewhere (TLS terminated by the
// server, a node forwarding to another) the connection has a reader
// goroutine of its own, as the other transports' requests have theirs.
//
// Transports plug in through the seam in package transport: a
// transport.Adapter is given a transport.Attachment per attach request,
// which this package implements. The adapter gives the attachment a
// transport.Downstream to write to, and either feeds what it reads to
// the attachment, hands it the reading of its connection
// (transport.ReadingAttachment: the WebSocket), or leaves upstream frames
// to the handler's POST path.
//
// Several nodes: with Options.Broker, handlers in several processes serve
// one service behind a load balancer without affinity. The node that
// negotiates a session owns it; another node forwards that session's
// requests to it through the broker (cluster.go says how, and why this
// design). Topics (Session.Subscribe, Handler.Publish) reach the
// subscribers of every node, with a history from which a client resumes
// in a fresh session (topics.go). Without a broker, topics live in the
// handler's memory and nothing else changes.
//
// Failover: with Options.Failover as well, a session outlives its node.
// Its node keeps a log of it in the broker's store (SessionStore) and, once
// that node is lost or shuts down, another takes the session over, with
// the same id and no close for its client, and runs Serve again with
// Session.Resumed true. The contract with the application:
//
//   - Send returns once the log keeps the message: a message whose Send
//     returned reaches the client, whatever node is lost. TrySend waits
//     for the log too; Broadcast does not, and a broadcast message the log
//     has not kept when the node is lost is not delivered.
//   - A message Recv returned is committed when Recv is called again (or
//     by Session.Commit); the log learns it with the session's next
//     write, or at once when Recv has nothing to return. The new Serve receives again, in order, the
//     messages the old one took and did not commit, with their numbers
//     (Session.Received): an application that records the number of each
//     message it has acted on skips those it has seen, and acts on each
//     message once.
//   - The application's own state of the session (its Serve's variables)
//     is not kept: the new Serve rebuilds it, from its own store if it has
//     one. Topic subscriptions are not kept either; a resumed Serve
//     subscribes again. The session's Request (headers, cookies, and Auth
//     through Options.SaveAuth and LoadAuth) is.
//   - A session negotiated with a target (a TCP relay's) is not taken
//     over: the connection it carries ends with its node, and so does it.
//
// Shared attachments: the tabs of a page (comet-share.js) may send their
// sessions' attaches and POSTs through one carrier, a stream or polls at
// {Prefix}/share, which delivers their responses; each is served as the
// same request alone would be, so every check applies to each session on
// its own (share.go). In a cluster a carrier lives on one node, which the
// others forward its requests to (share_cluster.go). Options.NoSharing
// turns it off.
package session
