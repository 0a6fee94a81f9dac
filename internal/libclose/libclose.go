// Package libclose lets this module's own packages that serve sessions for
// an application (tcprelay) close a session with a code of the library's
// range, 3000–3999, which Session.Close refuses to applications: those
// codes tell a client what went wrong in the library, and a client acts on
// them (3003 stops it for good, 3006 makes it back off).
package libclose

import "github.com/seed-544bbf9f/comet/transport"

// Close closes s, a *session.Session, gracefully with code and reason (cut
// to transport.MaxReasonBytes). Package session sets it when it loads.
var Close func(s any, code transport.CloseCode, reason string)
