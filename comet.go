// Package comet gives Go services and browser apps one socket-like session
// that works on every network: WebSocket where it works, Server-Sent
// Events, XHR streaming or long-polling where a proxy or firewall breaks
// it, with lossless resume across transport drops. This package wires every
// transport into a session.Handler; the session package holds the API, the
// client package the Go client, and PROTOCOL.md the wire format.
package comet

import (
	"github.com/seed-544bbf9f/comet/longpoll"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/sse"
	"github.com/seed-544bbf9f/comet/streaming"
	"github.com/seed-544bbf9f/comet/websocket"
)

// NewHandler returns a session.Handler offering every transport, best
// first: WebSocket, SSE, XHR streaming, long-polling (or
// session.Options.Transports). opts may be nil; see session.Options for
// each setting. Mount it outside any compression middleware: one that
// buffers its output stalls the streaming transports.
func NewHandler(opts *session.Options) *session.Handler {
	return session.NewHandler(opts, websocket.New(nil), sse.New(), streaming.New(nil), longpoll.New())
}
