package session

import (
	"fmt"
	"net/http"

	"github.com/seed-544bbf9f/comet/transport"
)

// AuthError is returned by Options.Authorize to choose the refusal:
// Status 401 or 403 (anything else is sent as 403) and a message for the
// client.
type AuthError struct {
	Status  int
	Message string
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("comet: authorization refused (%d): %s", e.Status, e.Message)
}

// writeError answers a request with a status and the JSON error body of
// PROTOCOL.md section 2, without a Retry-After.
func writeError(w http.ResponseWriter, status int, body transport.ErrorBody) {
	transport.WriteError(w, status, body, 0)
}

func errorBody(code, format string, args ...any) transport.ErrorBody {
	return transport.ErrorBody{Code: code, Message: fmt.Sprintf(format, args...)}
}
