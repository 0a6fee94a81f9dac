package session

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// Options configures a Handler. A nil *Options, and every zero field, means
// the default named in the field's comment. NewHandler copies the struct,
// so changing it afterwards has no effect.
type Options struct {
	// Prefix is the path the handler is mounted at, without a trailing
	// slash, e.g. "/comet". The handler serves Prefix+"/negotiate" and the
	// other paths of PROTOCOL.md section 2. Default "/comet".
	Prefix string

	// Serve runs the application's side of each new session, on its own
	// goroutine. When it returns, the session is closed with 1000 unless it
	// was closed already. Nil closes every session at once with 1011.
	Serve func(s *Session)

	// Authorize runs on every negotiate before a session is made. A nil
	// error admits the request and its value is kept as RequestInfo.Auth.
	// An *AuthError chooses the status (401 or 403) and message; any other
	// error answers 403. Nil admits everyone.
	Authorize func(r *http.Request) (any, error)

	// Redirect, if set, runs on every negotiate after Authorize; a non-empty
	// url answers with a redirect to that mount URL and token (PROTOCOL.md
	// section 3). Nil never redirects.
	Redirect func(r *http.Request) (url, token string)

	// AllowedOrigins lists the cross-origin pages allowed to connect, as
	// "scheme://host[:port]" (compared exactly, case-insensitively). Same-
	// origin requests are always allowed. Default none.
	AllowedOrigins []string
	// InsecureAllowAnyOrigin allows every Origin. It exposes sessions to any
	// web page the user visits; use it only for public, unauthenticated data.
	InsecureAllowAnyOrigin bool
	// AllowCredentials adds Access-Control-Allow-Credentials: true to
	// responses for allowed cross-origin requests, for cookie-based auth.
	// Default false.
	AllowCredentials bool
	// TrustForwardedHost compares Origin with X-Forwarded-Host instead of
	// Host. Set it only behind a reverse proxy that sets or strips that
	// header; otherwise clients can forge it. Default false.
	TrustForwardedHost bool

	// Heartbeat is the downstream heartbeat interval. Default 25s.
	Heartbeat time.Duration
	// MinHeartbeat is the shortest heartbeat or hold a client may ask for.
	// Default 1s.
	MinHeartbeat time.Duration
	// Hold is how long a long-poll waits for a message. Default 25s.
	Hold time.Duration
	// Grace is how long a detached session waits for its client to attach
	// again before it ends with 3000. Default 30s.
	Grace time.Duration
	// AttachTimeout ends a negotiated session that never attaches.
	// Default 10s.
	AttachTimeout time.Duration
	// AckDelay is the longest a client may hold an ack. Default 200ms.
	AckDelay time.Duration
	// MinClientTimeout and MaxClientTimeout bound the attach timeout a
	// client derives from its round trip. Defaults 300ms and 10s.
	MinClientTimeout, MaxClientTimeout time.Duration
	// WriteTimeout bounds each write to a client. Default 10s.
	WriteTimeout time.Duration
	// ReadTimeout bounds reading a POST body. Default 10s.
	ReadTimeout time.Duration

	// MaxMessage is the largest message payload in bytes (after base64
	// decoding). A larger inbound message closes the session with 1009; a
	// larger Send fails. Default 64 KiB.
	MaxMessage int
	// MaxBatch is the largest encoded batch in bytes (a POST body, a
	// WebSocket message). It is raised to 6*MaxMessage+64 if lower, so that
	// any message fits. Default 1 MiB.
	MaxBatch int
	// WindowMessages and WindowBytes bound each session's outbound buffer,
	// which is also its replay window: messages sent and not yet
	// acknowledged. When it is full, Send waits. Defaults 1024 and 1 MiB;
	// WindowBytes is raised to MaxMessage if lower.
	WindowMessages, WindowBytes int
	// InboundMessages and InboundBytes bound each session's buffer of
	// received messages not yet returned by Recv. When it is full the
	// server stops acknowledging; the client waits. Defaults 256 and 1 MiB.
	InboundMessages, InboundBytes int
	// CloseSlowConsumers makes Send close the session with 3002 instead of
	// waiting when the outbound window is full. Default false.
	CloseSlowConsumers bool

	// MaxSessions caps the sessions a handler holds; negotiate answers 503
	// beyond it. Default 100,000.
	MaxSessions int
	// NegotiateRate is the sustained negotiates per second allowed from one
	// IP address, NegotiateBurst the burst. Defaults 10 and 40. A negative
	// NegotiateRate disables the limit.
	NegotiateRate  float64
	NegotiateBurst int
	// ShutdownRetry is the longest reconnect hint Shutdown gives; each
	// session gets a random hint up to it. Default 5s.
	ShutdownRetry time.Duration

	// Transports lists the transports offered, in order of preference.
	// Default: every adapter given to NewHandler, in transport.Order.
	Transports []string

	// Registry holds the sessions. Default an in-memory registry.
	Registry Registry
	// Observer receives lifecycle events. Default none.
	Observer *Observer
	// Logger receives the handler's logs. Default slog.Default().
	Logger *slog.Logger
}

func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	setDefault(&c.Prefix, "/comet")
	setDefault(&c.Heartbeat, 25*time.Second)
	setDefault(&c.MinHeartbeat, time.Second)
	setDefault(&c.Hold, 25*time.Second)
	setDefault(&c.Grace, 30*time.Second)
	setDefault(&c.AttachTimeout, 10*time.Second)
	setDefault(&c.AckDelay, 200*time.Millisecond)
	setDefault(&c.MinClientTimeout, 300*time.Millisecond)
	setDefault(&c.MaxClientTimeout, 10*time.Second)
	setDefault(&c.WriteTimeout, 10*time.Second)
	setDefault(&c.ReadTimeout, 10*time.Second)
	setDefault(&c.MaxMessage, 64<<10)
	setDefault(&c.MaxBatch, 1<<20)
	setDefault(&c.WindowMessages, 1024)
	setDefault(&c.WindowBytes, 1<<20)
	setDefault(&c.InboundMessages, 256)
	setDefault(&c.InboundBytes, 1<<20)
	setDefault(&c.MaxSessions, 100_000)
	setDefault(&c.NegotiateRate, 10)
	setDefault(&c.NegotiateBurst, 40)
	setDefault(&c.ShutdownRetry, 5*time.Second)
	c.MaxBatch = max(c.MaxBatch, 6*c.MaxMessage+64)
	c.WindowBytes = max(c.WindowBytes, c.MaxMessage)
	c.InboundBytes = max(c.InboundBytes, c.MaxMessage)
	c.MinHeartbeat = min(c.MinHeartbeat, c.Heartbeat, c.Hold)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Observer == nil {
		c.Observer = &Observer{}
	}
	if c.Registry == nil {
		c.Registry = NewMemoryRegistry()
	}
	c.AllowedOrigins = append([]string(nil), c.AllowedOrigins...)
	c.Transports = append([]string(nil), c.Transports...)
	return c
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// negotiateResponse fills the limits part of a negotiate response.
func (o *Options) negotiateResponse() transport.NegotiateResponse {
	return transport.NegotiateResponse{
		Version:        transport.Version,
		Heartbeat:      int(o.Heartbeat.Milliseconds()),
		MinHeartbeat:   int(o.MinHeartbeat.Milliseconds()),
		Hold:           int(o.Hold.Milliseconds()),
		Grace:          int(o.Grace.Milliseconds()),
		AckDelay:       int(o.AckDelay.Milliseconds()),
		MinTimeout:     int(o.MinClientTimeout.Milliseconds()),
		MaxTimeout:     int(o.MaxClientTimeout.Milliseconds()),
		MaxMessage:     o.MaxMessage,
		MaxBatch:       o.MaxBatch,
		WindowMessages: o.WindowMessages,
		WindowBytes:    o.WindowBytes,
	}
}
