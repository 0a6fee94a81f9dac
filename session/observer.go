package session

import "github.com/seed-544bbf9f/comet/transport"

// Observer receives session lifecycle events, for metrics such as sessions
// by transport and fallbacks by reason. Nil fields are skipped. Hooks run
// synchronously on the goroutine of the event and must not block; they are
// never called with a session's lock held.
type Observer struct {
	// SessionOpened is called when negotiate makes a session.
	SessionOpened func(s *Session)
	// SessionClosed is called once when a session is forgotten, with the
	// close that ended it.
	SessionClosed func(s *Session, err *transport.CloseError)
	// TransportChanged is called when a different transport starts
	// delivering to the session (from is "" the first time), with the
	// client's reason for leaving the previous one (PROTOCOL.md's why).
	TransportChanged func(s *Session, from, to, reason string)
	// TransportLost is called when a delivering transport fails (not when
	// it is superseded or a poll ends by design). The session waits for
	// its client for the grace period.
	TransportLost func(s *Session, transport string, err error)
}
