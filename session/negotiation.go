package session

import (
	"net/http"
	"net/netip"
)

// Negotiation is what Options.Negotiate sees of a negotiate request.
type Negotiation struct {
	// Request is the negotiate request: its headers, cookies and URL. Its
	// body has been read already; the fields below hold what it said.
	Request *http.Request
	// ClientAddr is the client's address, after Options.TrustedProxies
	// (see RequestInfo.ClientAddr).
	ClientAddr netip.Addr
	// Transports are the transports the body lists; empty means all.
	Transports []string
	// Target is the relay target the client asked for, "host:port", or
	// "". The server has checked its syntax only (PROTOCOL.md section 3).
	Target string
	// Protocols are the subprotocols the client offers, best first, or
	// none. The server has checked them (RFC 6455 tokens, none twice).
	Protocols []string
}

// Decision is Options.Negotiate's answer for an admitted request.
type Decision struct {
	// Auth is kept as RequestInfo.Auth.
	Auth any
	// Target is the relay target granted, kept as RequestInfo.Target;
	// "" grants none. A relay still applies its own policy to it.
	Target string
	// Protocol is the subprotocol selected, kept as RequestInfo.Protocol:
	// it must be one of Negotiation.Protocols, or the client gets a 500
	// (the hook's mistake, logged). "" leaves the choice to
	// Options.Protocols; a client that offered subprotocols and gets none
	// is refused with 400 no_protocol.
	Protocol string
	// RedirectURL, if not empty, answers with a redirect to that mount URL
	// and RedirectToken instead of a session (PROTOCOL.md section 3).
	RedirectURL, RedirectToken string
}

// decide asks Options.Negotiate, or else Authorize and Redirect, what to
// do with a negotiate request.
func (h *Handler) decide(n *Negotiation) (Decision, error) {
	if f := h.opts.Negotiate; f != nil {
		return f(n)
	}
	d := Decision{Target: n.Target}
	if f := h.opts.Authorize; f != nil {
		auth, err := f(n.Request)
		if err != nil {
			return d, err
		}
		d.Auth = auth
	}
	if f := h.opts.Redirect; f != nil {
		d.RedirectURL, d.RedirectToken = f(n.Request)
	}
	return d, nil
}
