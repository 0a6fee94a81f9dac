package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet/internal/trywrite"
	"github.com/seed-544bbf9f/comet/internal/wswrite"
	"github.com/seed-544bbf9f/comet/transport"
)

// Options configures Dial. A nil *Options means every default, as does
// every zero field; Dial copies the struct, so changing it afterwards has
// no effect.
type Options struct {
	// Transports lists the transports to try, best first, among those this
	// client speaks: comet.WebSocket, comet.SSE, comet.Streaming and
	// comet.LongPoll. Nil means all four, in that order. A single entry
	// forces that transport: the client never falls back from it.
	Transports []string

	// Target asks the server for a TCP relay to this "host:port" (sent in
	// the negotiate body, PROTOCOL.md sections 3 and 13); the server's
	// policy decides. Empty asks for none.
	Target string

	// Protocols are the subprotocols the client offers, best first, as
	// with the browser's new WebSocket(url, protocols): each an RFC 6455
	// token, none twice (otherwise Dial fails with an error wrapping
	// comet.ErrInvalidProtocols), at most 32 of at most 128 bytes. The
	// server selects one, which Conn.Protocol reports, or Dial fails with
	// ErrNoProtocol. Nil offers none.
	Protocols []string

	// NoBinaryFrames keeps binary messages base64 in text frames on
	// WebSocket, as servers without raw binary WebSocket messages expect.
	// Default false: the client asks for them at negotiate and, if the
	// server agrees, sends and receives binary messages as binary
	// WebSocket messages (PROTOCOL.md section 4). Other transports always
	// carry base64.
	NoBinaryFrames bool
	// NoPostReplies keeps the server's messages off the answers to the
	// client's POSTs, as servers without replies in POST answers send
	// them. Default false: the client asks for them at negotiate and, if
	// the server agrees, reads the messages an upstream POST's answer
	// carries (PROTOCOL.md section 6), merging them with those of the
	// poll or the stream by sequence number; on long-polling a message
	// and its reply then cost one request, not two.
	NoPostReplies bool
	// NoLazyAcks makes the client ack each message within the server's
	// ackDelay (200 ms by default), as servers without lazy acks expect.
	// Default false: the client asks for lazy acks at negotiate and, if
	// the server grants them, acks at once only when its unacknowledged
	// messages reach the server's thresholds, and otherwise holds an ack
	// for the server's longer delay (PROTOCOL.md section 6): a client
	// receiving a message at a time then costs the server about one read
	// per delay rather than one per message.
	NoLazyAcks bool
	// Topics are topic positions to present at Dial, as Conn.Positions
	// returned them in an earlier connection: the server resumes each
	// topic the application subscribes this session to after its
	// position (PROTOCOL.md section 15). Nil presents none.
	Topics map[string]transport.TopicPosition

	// Compression, if set, asks for permessage-deflate (RFC 7692) at every
	// WebSocket handshake (attaches and the background upgrade probes).
	// Where the server offers it too (its Options.Compression), messages
	// of at least comet.DeflateMinSize bytes are compressed, both ways;
	// where it does not, the connection stays uncompressed. Use
	// &comet.Compression{} for the default level. Compression trades CPU
	// for bytes: worth it on slow or metered links with large, repetitive
	// messages such as JSON documents. Other transports never compress.
	// Nil asks for none.
	Compression *transport.Compression

	// HTTPClient carries negotiate, SSE and XHR streams, long-polls and
	// upstream POSTs. Nil means a client built from TLSConfig, Jar, Proxy
	// and NetDialContext. Its Timeout, if set, must exceed the long-poll
	// hold (25 s unless the server says otherwise), or polls fail; it also
	// cuts every stream when it passes, and the client attaches again, so
	// leave it zero. The WebSocket handshake does not use it; the fields
	// below configure it.
	HTTPClient *http.Client

	// TLSConfig configures TLS for https and wss URLs. Nil means the
	// crypto/tls defaults.
	TLSConfig *tls.Config

	// Jar stores the cookies of every request, the WebSocket handshake
	// included. Nil means HTTPClient's Jar if HTTPClient is set, otherwise
	// no cookies.
	Jar http.CookieJar

	// Header is sent on negotiate (and on each negotiate a server's
	// redirect leads to: another host it names, but never over plain http
	// after https, which the client refuses) and on the WebSocket
	// handshake only:
	// long-polls and POSTs stay CORS-simple, with no custom headers
	// (PROTOCOL.md section 2). Nil sends none.
	Header http.Header

	// Proxy chooses the proxy of each HTTP request and WebSocket
	// handshake. Nil means http.ProxyFromEnvironment.
	Proxy func(*http.Request) (*url.URL, error)

	// NetDialContext opens the network connections of HTTP requests and
	// WebSocket handshakes. Nil means a net.Dialer with a 30 s timeout.
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)

	// Heartbeat is the heartbeat interval (for long-polling, the hold) the
	// client asks for; the server clamps it to its own range. Ask for less
	// than a proxy's idle timeout. Zero means the server's.
	Heartbeat time.Duration

	// WindowMessages and WindowBytes bound the outbound window: messages
	// sent and not yet acknowledged by the server, kept to be sent again
	// after a drop. When it is full, Send waits. Zero means 1024 messages
	// and 1 MiB.
	WindowMessages int
	WindowBytes    int

	// ReceiveBuffer is how many received messages wait for Recv. When it is
	// full the client stops reading (WebSocket, streams) or polling
	// (long-polling) until Recv makes room: messages are never dropped, and the server's
	// window pushes back on its Send. Zero means 256.
	ReceiveBuffer int

	// LastResortTimeout bounds the attach of a transport that has nothing
	// left to fall back to: the only one of Transports (a forced
	// transport), the last one Dial tries, or the only one a resume has
	// left. Such an attach waits this long for its open frame, and no
	// longer than Dial's ctx allows, instead of the attach timeout of
	// PROTOCOL.md section 8 (minTimeout + 4×RTT), which exists to give up
	// early on a path that another transport may serve: a busy server that
	// answers late is no reason to fail when there is no other way in.
	// Zero means 30 s.
	LastResortTimeout time.Duration

	// UpgradeDelay is how long the client waits, once it carries the
	// session on another transport than WebSocket (having fallen back from
	// it), before it probes WebSocket in the background; each failed probe
	// doubles the wait, up to 5 minutes. A WebSocket that proves it works
	// both ways (its probe is echoed) takes the session over without loss
	// or duplication (PROTOCOL.md section 5), reported as "upgraded". A
	// WebSocket left after early deaths is not probed again. Zero means
	// 10 s; a negative value turns the probes off.
	UpgradeDelay time.Duration

	// SeparateNegotiate makes a client with one transport (Transports
	// forces it) negotiate with a POST, then attach, as a client with a
	// choice of transports does. By default such a client negotiates in
	// its first attach, one round trip instead of two (PROTOCOL.md section
	// 3, "Negotiating in the first attach"), and negotiates apart only when
	// that attach does not negotiate (a server that predates it, a proxy
	// that drops the answer's header, a redirect).
	SeparateNegotiate bool

	// Reconnect, when set, replaces a session that ended with a close that
	// allows it (1011, 3000 expired, 3001 server shutdown, 3002 slow
	// consumer, 3004 unreachable, 3006 overloaded: PROTOCOL.md section 10)
	// with a fresh session on the same Conn, after the server's retry hint
	// and a jittered backoff from 1 s, doubling to 30 s after each failed
	// try. Recv then returns a *GapError, once,
	// between the old session's messages and the fresh one's; Send waits
	// meanwhile; the messages the old session did not acknowledge are
	// dropped and counted in the GapError. It gives up after 100 tries in a
	// row, and then Recv reports the close; at once, with 1006, when the
	// fresh session has another subprotocol or binary framing than the
	// Conn reported at Dial, or the server selects none of Protocols. A
	// refused client (3003) or origin (3005) ends it too. False means a
	// lost session ends the Conn.
	Reconnect bool

	// CloseTimeout bounds a graceful close: how long Close waits for the
	// server's answering close before it ends the session anyway. Zero
	// means 5 s.
	CloseTimeout time.Duration

	// Logger receives the client's diagnostics: attaches, fallbacks,
	// drops, protocol errors. Nil discards them.
	Logger *slog.Logger

	// OnTransport, if set, is called when the transport in use changes,
	// including the first attach (from is then "" or the last transport
	// Dial fell back from), with the reason the client left the previous
	// one as reported to the server: "ws_refused", "ws_hung", "ws_silent",
	// "stream_buffered" (a proxy holds the stream back: its open frame or a
	// probe's echo did not arrive within the attach timeout, or its
	// heartbeats came in a burst; streams are then left for long-polling
	// for the rest of the Conn's life), "early_death" (three attachments
	// in a row died within 10 s of starting), "upgraded" (a background
	// probe of WebSocket succeeded, see UpgradeDelay), or "" (PROTOCOL.md
	// sections 5 and 8). It runs on the client's own goroutine and must
	// not block or call Close.
	OnTransport func(from, to, reason string)
}

// Defaults of Options.
const (
	defaultWindowMessages = 1024
	defaultWindowBytes    = 1 << 20
	defaultReceiveBuffer  = 256
	defaultDialTimeout    = 30 * time.Second
	defaultCloseTimeout   = 5 * time.Second
	defaultLastResort     = 30 * time.Second
	defaultUpgradeDelay   = 10 * time.Second
)

// withDefaults returns a copy of o with every zero field set.
func (o *Options) withDefaults() (Options, error) {
	var c Options
	if o != nil {
		c = *o
	}
	// This client speaks every transport of the protocol.
	supported := transport.Order()
	if c.Transports == nil {
		c.Transports = supported
	}
	c.Transports = slices.Clone(c.Transports)
	c.Topics = maps.Clone(c.Topics)
	if len(c.Transports) == 0 {
		return c, fmt.Errorf("comet: Options.Transports is empty")
	}
	for _, t := range c.Transports {
		if !slices.Contains(supported, t) {
			return c, fmt.Errorf("comet: transport %q is not supported by this client (it speaks %v)", t, supported)
		}
	}
	if err := transport.CheckProtocols(c.Protocols); err != nil {
		return c, fmt.Errorf("comet: Options.Protocols: %w", err)
	}
	c.Protocols = slices.Clone(c.Protocols)
	if c.Compression != nil {
		cc := *c.Compression
		c.Compression = &cc
	}
	if c.LastResortTimeout <= 0 {
		c.LastResortTimeout = defaultLastResort
	}
	if c.UpgradeDelay == 0 {
		c.UpgradeDelay = defaultUpgradeDelay
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = defaultCloseTimeout
	}
	c.Header = c.Header.Clone()
	if c.Jar == nil && c.HTTPClient != nil {
		c.Jar = c.HTTPClient.Jar
	}
	if c.Proxy == nil {
		c.Proxy = http.ProxyFromEnvironment
	}
	if c.NetDialContext == nil {
		c.NetDialContext = (&net.Dialer{Timeout: defaultDialTimeout, KeepAlive: 30 * time.Second}).DialContext
	}
	if c.WindowMessages <= 0 {
		c.WindowMessages = defaultWindowMessages
	}
	if c.WindowBytes <= 0 {
		c.WindowBytes = defaultWindowBytes
	}
	if c.ReceiveBuffer <= 0 {
		c.ReceiveBuffer = defaultReceiveBuffer
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// httpClient returns the client for HTTP requests and, if it built one,
// its transport, whose idle connections the Conn closes when it ends.
func (o *Options) httpClient() (*http.Client, *http.Transport) {
	if o.HTTPClient != nil {
		return o.HTTPClient, nil
	}
	t := &http.Transport{
		Proxy:                 o.Proxy,
		DialContext:           o.NetDialContext,
		TLSClientConfig:       o.TLSConfig.Clone(),
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{Transport: t, Jar: o.Jar}, t
}

// agreedDeflate reports whether the answer to a WebSocket upgrade, its
// header h, agreed to the permessage-deflate the client asked for.
func (o *Options) agreedDeflate(h http.Header) bool {
	return o.Compression != nil && wswrite.Named(h)
}

// wsDialer returns the WebSocket dialer. Its TLS configuration offers no
// ALPN protocol: a WebSocket handshake is HTTP/1.1 only.
func (o *Options) wsDialer() websocket.Dialer {
	var tc *tls.Config
	if o.TLSConfig != nil {
		tc = o.TLSConfig.Clone()
		tc.NextProtos = nil
	}
	dial := o.NetDialContext
	return websocket.Dialer{
		// A plain TCP connection's writes never wait on the server
		// (internal/trywrite), so that Send may write itself (see
		// wsAttachment.writeNow).
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			c, _ = trywrite.Wrap(c)
			return c, nil
		},
		Proxy:             o.Proxy,
		TLSClientConfig:   tc,
		Jar:               o.Jar,
		EnableCompression: o.Compression != nil,
	}
}
