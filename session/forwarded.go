package session

import (
	"net/http"
	"net/netip"
	"strings"
)

// client is where a request came from, as the trusted proxies in front of
// the handler recorded it (Options.TrustedProxies): the client's address,
// and the scheme and host it asked for, which the Origin check compares.
type client struct {
	addr   netip.Addr // invalid if RemoteAddr and the headers name none
	scheme string     // "http" or "https"
	host   string     // host[:port]
}

// clientOf reads r's client. Forwarded headers count only from a trusted
// peer: anyone else could forge them. The address is the rightmost hop of
// X-Forwarded-For (or, without it, of Forwarded's for=) that is not itself
// a trusted proxy, since each proxy appends the peer it saw and only the
// hops our own proxies added can be believed. Scheme and host come from
// X-Forwarded-Proto and X-Forwarded-Host (or Forwarded's proto= and host=),
// first value: the one the client-facing proxy set.
func (h *Handler) clientOf(r *http.Request) client {
	c := client{addr: parseHop(r.RemoteAddr), scheme: "http", host: r.Host}
	if r.TLS != nil {
		c.scheme = "https"
	}
	trusted := h.trustedPeer(c.addr)
	if !trusted && !h.opts.TrustForwardedHost {
		return c
	}
	var fwd []forwardedElement
	if vs := r.Header.Values("Forwarded"); len(vs) > 0 {
		fwd = parseForwarded(vs)
	}
	if v := firstValue(r.Header.Values("X-Forwarded-Proto")); v != "" {
		c.scheme = v
	} else if len(fwd) > 0 && fwd[0].proto != "" {
		c.scheme = fwd[0].proto
	}
	c.scheme = strings.ToLower(c.scheme)
	if v := firstValue(r.Header.Values("X-Forwarded-Host")); v != "" {
		c.host = v
	} else if len(fwd) > 0 && fwd[0].host != "" {
		c.host = fwd[0].host
	}
	if !trusted {
		// TrustForwardedHost, deprecated, trusts the host and scheme from
		// any peer, never the address.
		return c
	}
	var hops []string
	if vs := r.Header.Values("X-Forwarded-For"); len(vs) > 0 {
		for _, v := range vs {
			for hop := range strings.SplitSeq(v, ",") {
				hops = append(hops, strings.TrimSpace(hop))
			}
		}
	} else {
		for _, e := range fwd {
			hops = append(hops, e.addr)
		}
	}
	c.addr = h.rightmostUntrusted(hops, c.addr)
	return c
}

// rightmostUntrusted walks hops from the right, past trusted proxies, and
// returns the first address that is not one; when a hop does not parse,
// the last trusted one before it, which is the last address vouched for.
// When every hop is trusted, it is the leftmost.
func (h *Handler) rightmostUntrusted(hops []string, peer netip.Addr) netip.Addr {
	last := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a := parseHop(hops[i])
		if !a.IsValid() {
			return last
		}
		if !h.trustedPeer(a) {
			return a
		}
		last = a
	}
	return last
}

func (h *Handler) trustedPeer(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range h.opts.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHop parses an address as proxies write it: "192.0.2.1",
// "192.0.2.1:4711", "2001:db8::1", "[2001:db8::1]:4711", with IPv4-mapped
// IPv6 unmapped and any zone dropped. It returns the zero Addr for
// anything else ("unknown", an obfuscated name).
func parseHop(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	// Bare first: "::%]" is "::" with the zone "]", not a bracketed "::%".
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone("")
	}
	if inner, ok := strings.CutPrefix(s, "["); ok {
		if inner, ok := strings.CutSuffix(inner, "]"); ok {
			if a, err := netip.ParseAddr(inner); err == nil {
				return a.Unmap().WithZone("")
			}
		}
	}
	return netip.Addr{}
}

// firstValue returns the first comma-separated value of a header that may
// be repeated, trimmed.
func firstValue(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	v, _, _ := strings.Cut(vs[0], ",")
	return strings.TrimSpace(v)
}

// forwardedElement is one proxy's record in a Forwarded header (RFC 7239).
type forwardedElement struct {
	addr, proto, host string // the for=, proto= and host= parameters
}

// parseForwarded parses the Forwarded header's values into elements, in
// order. Parameters other than for, proto and host are skipped; a value may
// be a token or a quoted string (RFC 7230 section 3.2.6). An element that
// does not parse ends the list: what follows it cannot be attributed.
func parseForwarded(values []string) []forwardedElement {
	var out []forwardedElement
	for _, v := range values {
		var e forwardedElement
		for rest := v; ; {
			key, val, after, ok := forwardedPair(rest)
			if !ok {
				return out
			}
			switch strings.ToLower(key) {
			case "for":
				e.addr = val
			case "proto":
				e.proto = val
			case "host":
				e.host = val
			}
			after = strings.TrimLeft(after, " \t")
			if after == "" {
				out = append(out, e)
				break
			}
			switch after[0] {
			case ';':
			case ',':
				out = append(out, e)
				e = forwardedElement{}
			default:
				return out
			}
			rest = after[1:]
		}
	}
	return out
}

// forwardedPair reads one key=value pair from the start of s, after any
// spaces, and returns what follows it.
func forwardedPair(s string) (key, val, rest string, ok bool) {
	s = strings.TrimLeft(s, " \t")
	key, s, ok = strings.Cut(s, "=")
	if !ok || key == "" || strings.ContainsAny(key, " \t,;\"") {
		return "", "", "", false
	}
	if !strings.HasPrefix(s, `"`) {
		end := strings.IndexAny(s, ",; \t")
		if end < 0 {
			end = len(s)
		}
		return key, s[:end], s[end:], true
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 == len(s) {
				return "", "", "", false
			}
			i++
			b.WriteByte(s[i])
		case '"':
			return key, b.String(), s[i+1:], true
		default:
			b.WriteByte(c)
		}
	}
	return "", "", "", false
}
