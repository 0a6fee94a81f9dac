package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/seed-544bbf9f/comet/transport"
)

// Errors returned by Send and Close before anything is sent, besides the
// *comet.CloseError of an ended session and errors wrapping
// comet.ErrInvalidUTF8.
var (
	// ErrMessageTooBig is returned by Send for a payload larger than the
	// server's maxMessage.
	ErrMessageTooBig = transport.ErrMessageTooBig
	// ErrInvalidMessageType is returned by Send for a type other than
	// comet.Text and comet.Binary.
	ErrInvalidMessageType = transport.ErrInvalidMessageType
	// ErrInvalidCloseCode is returned by Close for a code an application
	// may not send: anything but 1000, 4000–4999 and comet.CloseNoStatus
	// (which takes no reason).
	ErrInvalidCloseCode = transport.ErrInvalidCloseCode
)

// ErrNoProtocol is wrapped by Dial's error when the server selected none
// of Options.Protocols: it refused with 400 no_protocol (the error then
// wraps its *HTTPError too, whose message lists what the server
// supports), or it answered without a subprotocol, as a server that
// predates them does. A browser's WebSocket fails the same way.
var ErrNoProtocol = errors.New("comet: the server selected no subprotocol")

// HTTPError is the error, wrapped, of a request the server refused: its
// status, JSON error body and Retry-After. Dial returns it (find it with
// errors.As) when the negotiate is refused.
type HTTPError = transport.HTTPError

// Why an attachment ended; the supervisor resumes after each.
var (
	errSuperseded = errors.New("comet: downstream superseded")
	errSilent     = errors.New("comet: downstream silent")
	errStale      = errors.New("comet: downstream opened for an abandoned attempt")
	errNoOpen     = errors.New("comet: downstream did not start with an open frame")
)

// errCloseTimeout is returned, wrapped, by Close when the server did not
// answer in time; the session has ended anyway.
var errCloseTimeout = errors.New("comet: the server did not answer the close")

// attachError is a failed attach, or a working attachment left on
// purpose (left): the transport, the why of PROTOCOL.md section 5 to
// report on the next attach ("" if none applies), and the cause, a
// *HTTPError when the server refused.
type attachError struct {
	transport string
	why       string
	err       error
	left      bool
}

func (e *attachError) Error() string {
	what := "attach failed"
	if e.left {
		what = "left"
	}
	if e.why == "" {
		return fmt.Sprintf("comet: %s %s: %v", e.transport, what, e.err)
	}
	return fmt.Sprintf("comet: %s %s (%s): %v", e.transport, what, e.why, e.err)
}

func (e *attachError) Unwrap() error { return e.err }

// whyOf returns the reason to report after err, or "".
func whyOf(err error) string {
	var ae *attachError
	if errors.As(err, &ae) {
		return ae.why
	}
	return ""
}

// httpError reads an error response: its status, the JSON body of
// PROTOCOL.md section 2 if there is one, and Retry-After in seconds.
func httpError(resp *http.Response, body []byte) *transport.HTTPError {
	e := &transport.HTTPError{Status: resp.StatusCode}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		json.Unmarshal(body, &e.Body) // a body that is not ours leaves Code empty
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		e.RetryAfter = s
	}
	return e
}

// refusal returns the server's refusal inside err, if code matches (any
// code if code is ""), or nil.
func refusal(err error, code string) *transport.HTTPError {
	var he *transport.HTTPError
	if errors.As(err, &he) && (code == "" || he.Body.Code == code) {
		return he
	}
	return nil
}

// fatal returns the close that err means for the session, or nil when the
// client should try again: a session the server no longer knows has
// expired (PROTOCOL.md section 9), and an Origin refusal will not change.
func fatal(err error) *transport.CloseError {
	he := refusal(err, "")
	switch {
	case he == nil:
		return nil
	case he.Status == http.StatusNotFound && he.Body.Code == transport.CodeSessionNotFound:
		return &transport.CloseError{Code: transport.CloseSessionExpired, Reason: "the server no longer knows the session"}
	case he.Body.Code == transport.CodeOriginRefused:
		return &transport.CloseError{Code: transport.CloseForbiddenOrigin, Reason: "the server refused this origin"}
	case he.Body.Code == transport.CodeUnauthorized || he.Body.Code == transport.CodeForbidden:
		return &transport.CloseError{Code: transport.CloseUnauthorized, Reason: "the server refused the attach"}
	}
	return nil
}

// isTimeout reports whether err is a network timeout, such as a deadline
// set on a connection.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
