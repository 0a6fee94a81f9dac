package transport

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// CloseCode is a session close code. The values follow WebSocket's
// registry (RFC 6455 section 7.4): 1000–1999 protocol codes, 3000–3999 this
// library's codes, 4000–4999 the application's, passed through untouched.
type CloseCode int

// Close codes. Each says in its comment whether a client may reconnect
// (open a fresh session) after it, or must stop ("terminal"). A dropped
// transport is not a close: the client resumes the same session.
const (
	CloseNormal        CloseCode = 1000 // terminal: the session is done
	CloseGoingAway     CloseCode = 1001 // terminal: the peer left (page unload)
	CloseProtocolError CloseCode = 1002 // terminal: a frame broke the protocol
	// CloseNoStatus, RFC 6455's "no status received", stands for a
	// client's close without a code (the browser's close() with no
	// argument). It travels in a close frame only once negotiate agreed
	// to it (noStatus, PROTOCOL.md section 10); the server's Recv then
	// returns a *CloseError with this code. A server sends it only in
	// answer to a client's close that carried it.
	CloseNoStatus        CloseCode = 1005 // terminal: the client closed without a code
	CloseInvalidPayload  CloseCode = 1007 // terminal: text that is not valid UTF-8
	ClosePolicyViolation CloseCode = 1008 // terminal: refused by policy
	CloseMessageTooBig   CloseCode = 1009 // terminal: a message exceeded the limit
	CloseInternalError   CloseCode = 1011 // reconnect: the server failed
	CloseSessionExpired  CloseCode = 3000 // reconnect: detached longer than the grace period
	CloseServerShutdown  CloseCode = 3001 // reconnect: after the close's retry hint
	CloseSlowConsumer    CloseCode = 3002 // reconnect: the peer did not read fast enough
	CloseUnauthorized    CloseCode = 3003 // terminal: the authorize hook refused
	CloseUnreachable     CloseCode = 3004 // reconnect: no transport could reach the server
	CloseForbiddenOrigin CloseCode = 3005 // terminal: the Origin was refused
	CloseOverloaded      CloseCode = 3006 // reconnect: session cap or rate limit hit
	CloseRateExceeded    CloseCode = 3007 // terminal: the peer sent messages faster than allowed
	// CloseBrokerUnavailable is sent only to a client that said at
	// negotiate that it understands it (NegotiateRequest.Codes); any other
	// gets CloseServerShutdown in its place.
	CloseBrokerUnavailable CloseCode = 3008 // reconnect: the cluster's broker (Redis) was unreachable too long
	// CloseStateLost is sent only to a client that said at negotiate that
	// it understands it, as CloseBrokerUnavailable is.
	CloseStateLost CloseCode = 3009 // reconnect: the session's state was lost (Redis restarted without it)

	// The TCP relay's codes (PROTOCOL.md section 13), all terminal: the
	// same target would fail the same way.
	CloseRelayNotAllowed     CloseCode = 3100 // terminal: the relay target is not allowed
	CloseRelayRefused        CloseCode = 3101 // terminal: the back-end refused the connection
	CloseRelayConnectTimeout CloseCode = 3102 // terminal: connecting to the back-end timed out
	CloseRelayDNS            CloseCode = 3103 // terminal: the back-end's name did not resolve
	CloseRelayReset          CloseCode = 3104 // terminal: the back-end reset the connection
	CloseRelayClosed         CloseCode = 3105 // terminal: the back-end closed, after all its bytes were delivered
	CloseRelayIdle           CloseCode = 3106 // terminal: no bytes either way for the idle timeout
)

// MaxReasonBytes is the longest close reason, in bytes of UTF-8: the
// browser WebSocket's limit, which the JavaScript client mirrors.
const MaxReasonBytes = 123

// Terminal reports whether a client must not open a fresh session after a
// close with this code. Application codes (4000–4999) are the application's
// to judge and report false.
func (c CloseCode) Terminal() bool {
	switch c {
	case CloseInternalError, CloseSessionExpired, CloseServerShutdown, CloseSlowConsumer,
		CloseUnreachable, CloseOverloaded, CloseBrokerUnavailable, CloseStateLost:
		return false
	}
	return c < 4000
}

// ValidForApplication reports whether an application may close a session
// with c: 1000 or 4000–4999, as with the browser's WebSocket.close (whose
// 3000–3999 range this library reserves for itself).
func (c CloseCode) ValidForApplication() bool {
	return c == CloseNormal || (c >= 4000 && c <= 4999)
}

// String returns the code and its meaning.
func (c CloseCode) String() string {
	if n, ok := closeNames[c]; ok {
		return fmt.Sprintf("%d (%s)", int(c), n)
	}
	return fmt.Sprintf("%d", int(c))
}

var closeNames = map[CloseCode]string{
	CloseNormal: "normal", CloseGoingAway: "going away", CloseProtocolError: "protocol error",
	CloseNoStatus:       "no status",
	CloseInvalidPayload: "invalid payload", ClosePolicyViolation: "policy violation",
	CloseMessageTooBig: "message too big", CloseInternalError: "internal error",
	CloseSessionExpired: "session expired", CloseServerShutdown: "server shutdown",
	CloseSlowConsumer: "slow consumer", CloseUnauthorized: "unauthorized",
	CloseUnreachable: "unreachable", CloseForbiddenOrigin: "forbidden origin",
	CloseOverloaded: "overloaded", CloseRateExceeded: "inbound rate exceeded",
	CloseBrokerUnavailable: "broker unavailable", CloseStateLost: "session state lost",
	CloseRelayNotAllowed: "relay target not allowed", CloseRelayRefused: "relay connection refused",
	CloseRelayConnectTimeout: "relay connect timeout", CloseRelayDNS: "relay DNS failure",
	CloseRelayReset: "relay connection reset", CloseRelayClosed: "relay connection closed",
	CloseRelayIdle: "relay idle timeout",
}

// CloseError is the error a session's calls return once it has closed. It
// carries the code and reason of the close, from whichever side sent it.
type CloseError struct {
	Code   CloseCode
	Reason string
	// Retry is the sender's hint, if any, of how long to wait before
	// reconnecting (sent with CloseServerShutdown).
	Retry uint64
	// Remote is true when the peer closed the session.
	Remote bool
}

func (e *CloseError) Error() string {
	who := "locally"
	if e.Remote {
		who = "by peer"
	}
	if e.Reason == "" {
		return fmt.Sprintf("comet: session closed %s: %v", who, e.Code)
	}
	return fmt.Sprintf("comet: session closed %s: %v: %s", who, e.Code, e.Reason)
}

// CloseStatus returns the close code carried by err, or -1 if err holds no
// *CloseError.
func CloseStatus(err error) CloseCode {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}

// TruncateReason shortens a reason to MaxReasonBytes at a rune boundary.
func TruncateReason(s string) string {
	if len(s) <= MaxReasonBytes {
		return s
	}
	s = s[:MaxReasonBytes]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
