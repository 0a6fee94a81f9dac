package session

import (
	"net/http"
	"net/netip"

	"github.com/seed-544bbf9f/comet/transport"
)

// RequestInfo describes the negotiate request that made a session: what
// the application's Serve may want of it. It is a bounded copy (see
// Options.RequestHeaders and Options.MaxRequestInfo): a session lives long,
// and a client chooses the size of its request.
type RequestInfo struct {
	// RemoteAddr is the negotiate request's RemoteAddr: the immediate
	// peer, a proxy if there is one.
	RemoteAddr string
	// ClientAddr is the client's address: RemoteAddr's, or behind trusted
	// proxies the one they recorded (Options.TrustedProxies). It is the
	// zero Addr if neither names an IP address.
	ClientAddr netip.Addr
	// Header holds the negotiate request's headers named in
	// Options.RequestHeaders, within Options.MaxRequestInfo.
	Header http.Header
	// Cookies are the negotiate request's cookies, within
	// Options.MaxRequestInfo.
	Cookies []*http.Cookie
	// Auth is what Options.Negotiate (Decision.Auth) or Options.Authorize
	// returned for the request.
	Auth any
	// Target is the relay target granted at negotiate, "host:port", or ""
	// (see Decision.Target).
	Target string
	// Protocol is the subprotocol selected at negotiate, or "" if the
	// client offered none (see Options.Protocols).
	Protocol string
	// Topics are the topic positions the client presented at negotiate
	// (PROTOCOL.md section 15), which Session.Subscribe resumes from.
	Topics map[string]transport.TopicPosition
}

// requestInfo copies what a session keeps of its negotiate request r from
// client c, with what the decision d keeps: the headers Options.RequestHeaders names, then the cookies,
// each value whole or not at all, until Options.MaxRequestInfo bytes.
func (h *Handler) requestInfo(r *http.Request, c client, d Decision) RequestInfo {
	info := RequestInfo{RemoteAddr: r.RemoteAddr, ClientAddr: c.addr, Auth: d.Auth, Target: d.Target, Protocol: d.Protocol}
	budget := h.opts.MaxRequestInfo
	for _, name := range h.opts.RequestHeaders {
		name = http.CanonicalHeaderKey(name)
		for _, v := range r.Header[name] {
			if len(name)+len(v) > budget {
				continue
			}
			budget -= len(name) + len(v)
			if info.Header == nil {
				info.Header = make(http.Header, len(h.opts.RequestHeaders))
			}
			info.Header[name] = append(info.Header[name], v)
		}
	}
	for _, ck := range r.Cookies() {
		if n := len(ck.Name) + len(ck.Value); n <= budget {
			budget -= n
			info.Cookies = append(info.Cookies, &http.Cookie{Name: ck.Name, Value: ck.Value, Quoted: ck.Quoted})
		}
	}
	return info
}
