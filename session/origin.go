package session

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/seed-544bbf9f/comet/transport"
)

// checkOrigin applies the Origin policy of PROTOCOL.md section 11. It
// returns the Origin to echo in CORS headers ("" for same-origin and
// origin-less requests), or the refusal to send.
func (h *Handler) checkOrigin(r *http.Request) (cors string, refusal *transport.ErrorBody) {
	origin := r.Header.Get("Origin")
	host := r.Host
	if h.opts.TrustForwardedHost {
		if fh := r.Header.Get("X-Forwarded-Host"); fh != "" {
			host, _, _ = strings.Cut(fh, ",")
			host = strings.TrimSpace(host)
		}
	}
	if origin == "" {
		// Browsers send no Origin on same-origin GETs; non-browser clients
		// send none at all. A browser still says where a request came from.
		if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
			return "", &transport.ErrorBody{Code: transport.CodeOriginRefused,
				Message: "cross-site request without an Origin header", Host: host}
		}
		return "", nil
	}
	if h.opts.InsecureAllowAnyOrigin {
		return origin, nil
	}
	if u, err := url.Parse(origin); err == nil && u.Host != "" &&
		strings.EqualFold(stripDefaultPort(u.Scheme, u.Host), stripDefaultPort(u.Scheme, host)) {
		return "", nil
	}
	for _, allowed := range h.opts.AllowedOrigins {
		if strings.EqualFold(strings.TrimSuffix(allowed, "/"), origin) {
			return origin, nil
		}
	}
	return "", &transport.ErrorBody{Code: transport.CodeOriginRefused,
		Message: "origin is neither same-origin nor allowed; add it to AllowedOrigins",
		Origin:  origin, Host: host}
}

func stripDefaultPort(scheme, host string) string {
	switch {
	case scheme == "http" && strings.HasSuffix(host, ":80"):
		return strings.TrimSuffix(host, ":80")
	case scheme == "https" && strings.HasSuffix(host, ":443"):
		return strings.TrimSuffix(host, ":443")
	}
	return host
}

// setCORS adds the headers that let an allowed cross-origin page read the
// response. Never "*": an exact origin, so credentials can be allowed.
func (h *Handler) setCORS(w http.ResponseWriter, cors string) {
	if cors == "" {
		return
	}
	hd := w.Header()
	hd.Set("Access-Control-Allow-Origin", cors)
	hd.Add("Vary", "Origin")
	if h.opts.AllowCredentials {
		hd.Set("Access-Control-Allow-Credentials", "true")
	}
}
