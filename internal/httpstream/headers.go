package httpstream

import "net/http"

// setHeaders sets the headers of a response that carries frames; the
// package doc says why each one is there.
func setHeaders(w http.ResponseWriter, r *http.Request, contentType string) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-store, no-transform")
	h.Set("X-Accel-Buffering", "no")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	if r.ProtoMajor == 1 {
		h.Set("Connection", "keep-alive")
	} else {
		h.Del("Connection")
	}
}
