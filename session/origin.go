package session

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/seed-544bbf9f/comet/transport"
)

// checkOrigin applies the Origin policy of PROTOCOL.md section 11 to a
// request from c. It returns the Origin to echo in CORS headers ("" for
// same-origin and origin-less requests) and whether credentials may go
// with it, or the refusal to send.
func (h *Handler) checkOrigin(r *http.Request, c client) (cors string, creds bool, refusal *transport.ErrorBody) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		// Browsers send no Origin on same-origin GETs; non-browser clients
		// send none at all. A browser still says where a request came from.
		if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
			return "", false, &transport.ErrorBody{Code: transport.CodeOriginRefused,
				Message: "cross-site request without an Origin header", Host: c.host}
		}
		return "", false, nil
	}
	o, ok := canonicalOrigin(origin)
	if ok {
		if self, ok := canonicalOrigin(c.scheme + "://" + c.host); ok && o == self {
			return "", false, nil
		}
		if h.allowed[o] {
			return origin, h.opts.AllowCredentials, nil
		}
	}
	if h.opts.InsecureAllowAnyOrigin || h.opts.InsecureAllowAnyOriginWithCredentials {
		return origin, h.opts.InsecureAllowAnyOriginWithCredentials, nil
	}
	// Behind a proxy that rewrites Host or terminates TLS, a same-origin
	// page looks foreign until the proxy is trusted: the usual first
	// refusal a newcomer meets, so the message names the recipes.
	msg := "origin is neither same-origin nor allowed; add it to AllowedOrigins, or, behind a reverse proxy, " +
		"see docs/proxies.md (TrustedProxies)"
	switch {
	case !ok:
		msg = "Origin is not a serialized origin (scheme://host[:port], nothing else)"
	case sameHostOtherScheme(o, c):
		msg = "origin's scheme differs from the request's (" + c.scheme + "): behind a TLS-terminating proxy, " +
			"list the proxy in TrustedProxies so that its X-Forwarded-Proto is read (see docs/proxies.md)"
	}
	return "", false, &transport.ErrorBody{Code: transport.CodeOriginRefused, Message: msg, Origin: origin, Host: c.host}
}

// sameHostOtherScheme reports whether origin o names c's host, only by
// another scheme: the sign of a TLS proxy the handler does not trust. An
// origin of c's own scheme is not one, even on c's host: a proxy that
// rewrote Host to its upstream's address (another port) looks like that.
func sameHostOtherScheme(o string, c client) bool {
	other := "https"
	if c.scheme == "https" {
		other = "http"
	}
	self, ok := canonicalOrigin(other + "://" + c.host)
	return ok && strings.HasPrefix(o, other+"://") && hostOf(o) == hostOf(self)
}

// hostOf returns the host of a canonical origin, without its port.
func hostOf(canonical string) string {
	_, rest, _ := strings.Cut(canonical, "://")
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		return rest[:i]
	}
	return rest
}

// canonicalOrigin parses a serialized origin (RFC 6454 section 6.2, as
// browsers send it): scheme "://" host [":" port], with no userinfo, path,
// query or fragment. It returns it as "scheme://host:port", lower case,
// with the scheme's default port made explicit, so that two spellings of
// one origin compare equal; ok is false for anything else, including
// "null" (an opaque origin, shared by every sandboxed document).
func canonicalOrigin(s string) (canonical string, ok bool) {
	scheme, rest, found := strings.Cut(s, "://")
	if !found || !validScheme(scheme) || rest == "" {
		return "", false
	}
	scheme = strings.ToLower(scheme)
	host, port := rest, ""
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return "", false
		}
		a, err := netip.ParseAddr(rest[1:end])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", false
		}
		host = "[" + a.String() + "]"
		switch after := rest[end+1:]; {
		case after == "":
		case after[0] == ':':
			port = after[1:]
			if port == "" {
				return "", false
			}
		default:
			return "", false
		}
	} else {
		if i := strings.LastIndexByte(rest, ':'); i >= 0 {
			host, port = rest[:i], rest[i+1:]
			if port == "" {
				return "", false
			}
		}
		if !validHost(host) {
			return "", false
		}
		host = strings.ToLower(host)
	}
	if port == "" {
		switch scheme {
		case "http", "ws":
			port = "80"
		case "https", "wss":
			port = "443"
		default:
			return "", false // no default port to compare with
		}
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 || port[0] == '0' {
		return "", false
	}
	return scheme + "://" + host + ":" + port, true
}

// validScheme reports whether s is an RFC 3986 scheme.
func validScheme(s string) bool {
	if s == "" || !isLetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isLetter(c) && !isDigit(c) && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// validHost reports whether s is a host name or an IPv4 address as a
// browser serializes it: letters, digits, hyphens and dots (a name with
// other characters arrives as punycode). Userinfo, paths, queries,
// fragments and percent-escapes all fall outside.
func validHost(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isLetter(c) && !isDigit(c) && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool  { return '0' <= c && c <= '9' }

// setCORS adds the headers that let an allowed cross-origin page read the
// response. Never "*": an exact origin, so credentials can be allowed.
func setCORS(w http.ResponseWriter, cors string, creds bool) {
	if cors == "" {
		return
	}
	hd := w.Header()
	hd.Set("Access-Control-Allow-Origin", cors)
	hd.Add("Vary", "Origin")
	if creds {
		hd.Set("Access-Control-Allow-Credentials", "true")
	}
}
