package session

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"time"

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

// WriteError answers a request with a status and the JSON error body of
// PROTOCOL.md section 2. Transports use it for refusals of their own.
func WriteError(w http.ResponseWriter, status int, body transport.ErrorBody) {
	writeErrorRetry(w, status, body, 0)
}

func writeErrorRetry(w http.ResponseWriter, status int, body transport.ErrorBody, retry time.Duration) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store, no-transform")
	h.Set("X-Content-Type-Options", "nosniff")
	if retry > 0 {
		h.Set("Retry-After", fmt.Sprint(int(math.Ceil(retry.Seconds()))))
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

func errorBody(code, format string, args ...any) transport.ErrorBody {
	return transport.ErrorBody{Code: code, Message: fmt.Sprintf(format, args...)}
}
