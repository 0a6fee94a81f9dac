package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// errNotDirect is a first attach that did not negotiate: a server that
// predates it, a proxy that dropped the answer's header, a redirect. Dial
// then negotiates as usual.
var errNotDirect = errors.New("comet: the first attach did not negotiate")

// negotiatesInAttach reports whether Dial negotiates in the first attach:
// when the client has one transport and Options.SeparateNegotiate is off.
func negotiatesInAttach(o Options) bool {
	return !o.SeparateNegotiate && len(o.Transports) == 1
}

// dialDirect opens a session on the client's one transport in one round
// trip: the first attach carries the negotiate request and its answer the
// negotiate response (PROTOCOL.md section 3, "Negotiating in the first
// attach"), and the attach is the session's first attachment. It returns
// errNotDirect when Dial should negotiate as usual instead; the server's
// refusal that negotiating again would only repeat (401, 403, 429, 503, no
// subprotocol in common) is returned as negotiate returns it.
func dialDirect(ctx context.Context, o Options, hc *http.Client, own *http.Transport, base *url.URL,
	nr transport.NegotiateRequest) (*Conn, error) {
	body, err := json.Marshal(nr)
	if err != nil {
		return nil, err
	}
	name := o.Transports[0]
	// A delivering poll would be held until there is something to
	// deliver; a probe poll is answered at once (PROTOCOL.md section 5).
	p := transport.AttachParams{Attempt: 1, Deliver: name != transport.LongPoll, Heartbeat: uint64(o.Heartbeat.Milliseconds())}
	q := url.Values{"v": {strconv.Itoa(transport.Version)}, "z": {cacheBuster()}, "n": {string(body)}}
	p.Encode(q)
	q.Del("s")
	q.Del("t")
	u, _ := url.Parse(endpoint(base, "/"+name, q)) // endpoint's output always parses

	// As any attach of a forced transport, this one waits for
	// LastResortTimeout at the most.
	dctx, cancel := context.WithTimeout(ctx, o.LastResortTimeout)
	defer cancel()
	c, err := dialDirectWith(dctx, o, hc, own, base, u, p)
	switch {
	case err == nil || errors.Is(err, errNotDirect) && dctx.Err() == nil:
		return c, err
	case ctx.Err() != nil:
		return nil, fmt.Errorf("comet: dial: %w", ctx.Err())
	case dctx.Err() != nil:
		ce := &transport.CloseError{Code: transport.CloseUnreachable, Reason: "no transport reached the server"}
		return nil, fmt.Errorf("%w: %s within %v", ce, name, o.LastResortTimeout)
	}
	return nil, err
}

// dialDirectWith runs the first attach that negotiates, to u with the
// attach parameters p, bounded by ctx.
func dialDirectWith(ctx context.Context, o Options, hc *http.Client, own *http.Transport, base, u *url.URL,
	p transport.AttachParams) (*Conn, error) {
	name := o.Transports[0]
	deadline, _ := ctx.Deadline()
	start := time.Now()
	switch name {
	case transport.WebSocket:
		return dialDirectWebSocket(ctx, o, hc, own, base, u, p, start, deadline)
	case transport.SSE:
		return dialDirectStream(ctx, o, hc, own, base, u, p, sseFormat)
	case transport.Streaming:
		return dialDirectStream(ctx, o, hc, own, base, u, p, streamingFormat)
	}
	return dialDirectPoll(ctx, o, hc, own, base, u, p, start)
}

// dialDirectPoll runs the probe poll that negotiates, to u with the attach
// parameters p; its answer, the open frame, comes at once.
func dialDirectPoll(ctx context.Context, o Options, hc *http.Client, own *http.Transport, base, u *url.URL,
	p transport.AttachParams, start time.Time) (*Conn, error) {
	req, err := directRequest(ctx, o, u, "")
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, directFailed(nil)
	}
	data, err := readBody(resp)
	if err != nil {
		return nil, errNotDirect
	}
	if resp.StatusCode != http.StatusOK {
		return nil, directFailed(httpError(resp, data))
	}
	neg, err := directResponse(o, resp.Header)
	if err != nil {
		return nil, err
	}
	c := newConn(o, hc, own, base, neg, time.Since(start), []string{transport.LongPoll})
	c.attempt, c.postAttempt = p.Attempt, p.Attempt
	p.Session = neg.SessionID
	first := &poll{opened: make(chan struct{}), done: make(chan error, 1), cancel: func() {}}
	err = c.applyPoll(ctx, bytes.NewReader(data), p, first.opened)
	select {
	case <-first.opened:
		first.done <- err
		c.first = &longPoll{c: c, first: first}
		return c, nil
	default:
		c.cancel()
		return nil, errNotDirect
	}
}

// directRequest is the GET of a first attach that negotiates on an HTTP
// transport, to u, accepting accept if not "".
func directRequest(ctx context.Context, o Options, u *url.URL, accept string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	for k, v := range o.Header {
		req.Header[k] = slices.Clone(v)
	}
	req.Header.Set(transport.NegotiateHeader, "1")
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	return req, nil
}

// dialDirectStream runs the GET of an SSE or XHR stream (format f) that
// negotiates, to u with the attach parameters p. The stream outlives the
// dial: its request is bound by ctx only until its open frame arrives,
// then by the Conn.
func dialDirectStream(ctx context.Context, o Options, hc *http.Client, own *http.Transport, base, u *url.URL,
	p transport.AttachParams, f *streamFormat) (*Conn, error) {
	rctx, cancelReq := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, cancelReq)
	defer stop()
	req, err := directRequest(rctx, o, u, f.accept)
	if err != nil {
		cancelReq()
		return nil, err
	}
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		cancelReq()
		return nil, directFailed(nil)
	}
	if resp.StatusCode != http.StatusOK {
		data, _ := readBody(resp)
		cancelReq()
		return nil, directFailed(httpError(resp, data))
	}
	neg, err := directResponse(o, resp.Header)
	if err != nil {
		resp.Body.Close()
		cancelReq()
		return nil, err
	}
	c := newConn(o, hc, own, base, neg, time.Since(start), []string{f.name})
	c.attempt, c.postAttempt = p.Attempt, p.Attempt
	p.Session = neg.SessionID
	context.AfterFunc(c.ctx, cancelReq)
	s := &streamAttachment{c: c, format: f, params: p, cancel: cancelReq, done: make(chan error, 1),
		demote: c.canDemote(f.name), start: start}
	opened := make(chan struct{})
	go func() {
		defer cancelReq()
		s.done <- s.readResponse(rctx, resp, opened)
	}()
	deadline, _ := ctx.Deadline()
	a, err := c.awaitStream(s, opened, time.Until(deadline))
	if err != nil {
		c.cancel()
		return nil, errNotDirect
	}
	c.first = a
	return c, nil
}

// dialDirectWebSocket runs the WebSocket upgrade that negotiates, to u
// with the attach parameters p.
func dialDirectWebSocket(ctx context.Context, o Options, hc *http.Client, own *http.Transport, base, u *url.URL,
	p transport.AttachParams, start, deadline time.Time) (*Conn, error) {
	u.Scheme = "ws"
	if base.Scheme == "https" {
		u.Scheme = "wss"
	}
	d := o.wsDialer()
	if u.Scheme == "ws" {
		d.NetDialContext = framed(d.NetDialContext)
	}
	ws, resp, err := d.DialContext(ctx, u.String(), o.Header)
	if err != nil {
		if resp == nil {
			return nil, directFailed(nil)
		}
		data, _ := readBody(resp)
		return nil, directFailed(httpError(resp, data))
	}
	neg, err := directResponse(o, resp.Header)
	if err != nil {
		ws.Close()
		return nil, err
	}
	c := newConn(o, hc, own, base, neg, time.Since(start), []string{transport.WebSocket})
	c.attempt = p.Attempt
	p.Session = neg.SessionID
	a, err := c.adoptWebSocket(ws, o.agreedDeflate(resp.Header), p, deadline)
	if err != nil {
		c.cancel() // adoptWebSocket closed ws
		return nil, errNotDirect
	}
	c.first = a
	return c, nil
}

// directFailed returns what a first attach that negotiated but failed
// means for Dial: the server's refusal he, or errNotDirect.
func directFailed(he *transport.HTTPError) error {
	switch {
	case he == nil:
		return errNotDirect // the negotiate reports what is wrong
	case he.Body.Code == transport.CodeNoProtocol:
		return fmt.Errorf("%w: comet: negotiate refused: %w", ErrNoProtocol, he)
	case he.Body.Code != "" && (he.Status == http.StatusUnauthorized || he.Status == http.StatusForbidden ||
		he.Status == http.StatusTooManyRequests || he.Status == http.StatusServiceUnavailable):
		// The server's own refusal (a proxy's has no JSON body of ours).
		return fmt.Errorf("comet: negotiate refused: %w", he)
	}
	return errNotDirect
}

// directResponse reads the negotiate response from the header of the
// answer to a first attach that negotiated; errNotDirect if it has none.
func directResponse(o Options, h http.Header) (*transport.NegotiateResponse, error) {
	v := h.Get(transport.NegotiateHeader)
	if v == "" {
		return nil, errNotDirect
	}
	neg, err := transport.ParseNegotiateResponse([]byte(v))
	if err == nil && neg.URL != "" {
		err = fmt.Errorf("%w: a redirect in the answer to an attach", transport.ErrMalformed)
	}
	if err == nil {
		err = checkProtocol(o.Protocols, neg.Protocol)
	}
	if err != nil {
		return nil, err
	}
	return neg, nil
}
