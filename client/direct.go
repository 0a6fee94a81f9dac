package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// errNotDirect is a WebSocket upgrade that did not negotiate: a server
// that predates it, a proxy that dropped the answer's header, a redirect.
// Dial then negotiates as usual.
var errNotDirect = errors.New("comet: the upgrade did not negotiate")

// dialDirect opens a session whose only transport is WebSocket in one
// round trip: the upgrade carries the negotiate request and its 101 the
// negotiate response (PROTOCOL.md section 3, "Negotiating in the
// upgrade"), and the upgraded connection is the session's first
// attachment. It returns errNotDirect when Dial should negotiate as usual
// instead; the server's refusal that negotiating again would only repeat
// (401, 403, 429, 503, no subprotocol in common) is returned as negotiate
// returns it.
func dialDirect(ctx context.Context, o Options, hc *http.Client, own *http.Transport, base *url.URL,
	nr transport.NegotiateRequest) (*Conn, error) {
	body, err := json.Marshal(nr)
	if err != nil {
		return nil, err
	}
	p := transport.AttachParams{Attempt: 1, Deliver: true, Heartbeat: uint64(o.Heartbeat.Milliseconds())}
	q := url.Values{"v": {strconv.Itoa(transport.Version)}, "z": {cacheBuster()}, "n": {string(body)}}
	p.Encode(q)
	q.Del("s")
	q.Del("t")
	u, _ := url.Parse(endpoint(base, "/websocket", q)) // endpoint's output always parses
	u.Scheme = "ws"
	if base.Scheme == "https" {
		u.Scheme = "wss"
	}

	ctx, cancel := context.WithTimeout(ctx, o.LastResortTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	d := o.wsDialer()
	start := time.Now()
	ws, resp, err := d.DialContext(ctx, u.String(), o.Header)
	if err != nil {
		if resp == nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("comet: dial: %w", ctx.Err())
			}
			return nil, errNotDirect // the negotiate reports what is wrong
		}
		data, _ := readBody(resp)
		he := httpError(resp, data)
		switch {
		case he.Body.Code == transport.CodeNoProtocol:
			return nil, fmt.Errorf("%w: comet: negotiate refused: %w", ErrNoProtocol, he)
		case he.Body.Code != "" && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden ||
			resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable):
			// The server's own refusal (a proxy's has no JSON body of ours).
			return nil, fmt.Errorf("comet: negotiate refused: %w", he)
		}
		return nil, errNotDirect
	}
	header := resp.Header.Get(transport.NegotiateHeader)
	if header == "" {
		ws.Close()
		return nil, errNotDirect
	}
	neg, err := transport.ParseNegotiateResponse([]byte(header))
	if err == nil && neg.URL != "" {
		err = fmt.Errorf("%w: a redirect in the answer to an upgrade", transport.ErrMalformed)
	}
	if err == nil {
		err = checkProtocol(o.Protocols, neg.Protocol)
	}
	if err != nil {
		ws.Close()
		return nil, err
	}
	c := newConn(o, hc, own, base, neg, time.Since(start), []string{transport.WebSocket})
	c.attempt = p.Attempt
	p.Session = neg.SessionID
	a, err := c.adoptWebSocket(ws, p, deadline)
	if err != nil {
		c.cancel() // adoptWebSocket closed ws
		return nil, errNotDirect
	}
	c.first = a
	return c, nil
}
