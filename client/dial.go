package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/seed-544bbf9f/comet/internal/logid"
	"github.com/seed-544bbf9f/comet/internal/window"
	"github.com/seed-544bbf9f/comet/transport"
)

// maxRedirects is how many negotiate redirects a client follows
// (PROTOCOL.md section 3).
const maxRedirects = 3

// redirectTokenHeader carries a redirect's token to the next negotiate.
const redirectTokenHeader = "Comet-Redirect-Token"

// Dial opens a session with the Comet server mounted at rawURL, an http
// or https URL such as "https://example.com/comet"; WebSocket URLs are
// derived from it. It negotiates, then tries the transports of
// opts.Transports in order until one attaches, and returns once one has;
// with one transport it negotiates in the first attach, in one round trip
// (see Options.SeparateNegotiate).
// ctx bounds the dial only: cancelling it later does not affect the
// session. opts may be nil.
//
// When the server refuses the negotiate, the error wraps its
// *HTTPError (use errors.As): Status 401 or 403 means
// unauthorized (the close code 3003 of PROTOCOL.md), 403 with Body.Code
// "origin_refused" a forbidden origin (3005), 429 and 503 an overloaded
// server (3006), whose RetryAfter says how many seconds to wait. When the
// server selects none of Options.Protocols, the error wraps
// ErrNoProtocol. When no transport attaches, the error wraps a
// *comet.CloseError with code 3004 (unreachable).
func Dial(ctx context.Context, rawURL string, opts *Options) (*Conn, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	base, err := parseMountURL(rawURL)
	if err != nil {
		return nil, err
	}
	hc, own := o.httpClient()
	mount, nr := base, transport.NegotiateRequest{
		Transports: o.Transports, Binary: !o.NoBinaryFrames, Target: o.Target,
		Protocols: o.Protocols, NoStatus: true,
		Codes:     []int{int(transport.CloseBrokerUnavailable), int(transport.CloseStateLost)},
		Positions: true, Topics: o.Topics, Replies: !o.NoPostReplies, LazyAcks: !o.NoLazyAcks,
	}
	if negotiatesInAttach(o) {
		c, err := dialDirect(ctx, o, hc, own, base, nr)
		switch {
		case err == nil:
			c.renewal.mount, c.renewal.request = mount, nr
			return c.start(ctx)
		case !errors.Is(err, errNotDirect):
			if own != nil {
				own.CloseIdleConnections()
			}
			return nil, err
		}
	}
	neg, base, rtt, err := negotiate(ctx, hc, base, o.Header, nr)
	var refused *HTTPError
	switch {
	case err == nil:
		err = checkProtocol(o.Protocols, neg.Protocol)
	case errors.As(err, &refused) && refused.Body.Code == transport.CodeNoProtocol:
		err = fmt.Errorf("%w: %w", ErrNoProtocol, err)
	}
	if err != nil {
		if own != nil {
			own.CloseIdleConnections()
		}
		return nil, err
	}
	order := offered(o.Transports, neg.Transports)
	if len(order) == 0 {
		if own != nil {
			own.CloseIdleConnections()
		}
		return nil, fmt.Errorf("comet: the server offers %v, the client uses %v", neg.Transports, o.Transports)
	}
	c := newConn(o, hc, own, base, neg, rtt, order)
	c.renewal.mount, c.renewal.request = mount, nr
	return c.start(ctx)
}

// start runs c and returns it once its first attachment began, or the
// error that ended it first; ctx bounds the wait.
func (c *Conn) start(ctx context.Context) (*Conn, error) {
	ready := make(chan error, 1)
	go c.run(ready)
	select {
	case err := <-ready:
		if err != nil {
			<-c.done
			return nil, err
		}
		return c, nil
	case <-ctx.Done():
		c.CloseNow()
		return nil, fmt.Errorf("comet: dial: %w", ctx.Err())
	}
}

func newConn(o Options, hc *http.Client, own *http.Transport, base *url.URL, neg *transport.NegotiateResponse,
	rtt time.Duration, order []string) *Conn {
	c := &Conn{
		opts:     o,
		log:      o.Logger.With("session", logid.Short(neg.SessionID)),
		http:     hc,
		idle:     own,
		wsDialer: o.wsDialer(),
		base:     base,
		// What the application gave is the start: a topic it subscribes to
		// without receiving anything keeps its position for a fresh session.
		positions: maps.Collect(maps.All(o.Topics)),
		sid:       neg.SessionID,
		secret:    neg.Secret,
		binary:    neg.Binary,
		noStatus:  neg.NoStatus,
		replies:   neg.Replies,
		protocol:  neg.Protocol,
		lim:       newLimits(neg, rtt, o.Heartbeat),
		order:     order,
		done:      make(chan struct{}),
		postSlot:  make(chan struct{}, 1),
		out:       window.New(o.WindowMessages, o.WindowBytes),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.pollHold = clampInterval(time.Duration(c.lim.hb)*time.Millisecond, c.lim.minHeartbeat, c.lim.hold)
	now := time.Now()
	for _, t := range neg.Tickets {
		c.tickets.add(t, now)
	}
	c.log.Debug("comet: negotiated", "rtt", rtt, "attachTimeout", c.lim.attachTimeout, "transports", order)
	return c
}

// parseMountURL checks a mount URL and drops its trailing slash, so that
// endpoint paths can be appended.
func parseMountURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("comet: mount URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return nil, fmt.Errorf("comet: mount URL %q is not an absolute http or https URL", rawURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	return u, nil
}

// negotiate creates a session at base with the body nr, following
// redirects, and returns
// the response, the mount URL that answered, and the round trip of that
// last request (PROTOCOL.md sections 3 and 8).
func negotiate(ctx context.Context, hc *http.Client, base *url.URL, header http.Header, nr transport.NegotiateRequest) (
	*transport.NegotiateResponse, *url.URL, time.Duration, error) {
	body, err := json.Marshal(nr)
	if err != nil {
		return nil, nil, 0, err
	}
	token := ""
	for redirects := 0; ; redirects++ {
		q := url.Values{"v": {strconv.Itoa(transport.Version)}, "z": {cacheBuster()}}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint(base, "/negotiate", q), bytes.NewReader(body))
		if err != nil {
			return nil, nil, 0, err
		}
		for k, v := range header {
			req.Header[k] = slices.Clone(v)
		}
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set(redirectTokenHeader, token)
		}
		start := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("comet: negotiate: %w", err)
		}
		data, err := readBody(resp)
		rtt := time.Since(start)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("comet: negotiate: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			return nil, nil, 0, fmt.Errorf("comet: negotiate refused: %w", httpError(resp, data))
		}
		neg, err := transport.ParseNegotiateResponse(data)
		if err != nil {
			return nil, nil, 0, err
		}
		if neg.URL == "" {
			return neg, base, rtt, nil
		}
		if redirects == maxRedirects {
			return nil, nil, 0, fmt.Errorf("comet: negotiate: more than %d redirects", maxRedirects)
		}
		next, err := parseMountURL(neg.URL)
		if err != nil {
			return nil, nil, 0, err
		}
		if base.Scheme == "https" && next.Scheme != "https" {
			// The next negotiate carries Options.Header (credentials, often)
			// and its answer the session's secret: never in the clear.
			return nil, nil, 0, fmt.Errorf("comet: negotiate: refusing a redirect from https to %s", next.Redacted())
		}
		base, token = next, neg.Token
	}
}

// checkProtocol checks the subprotocol a server selected for a client
// that offered offered (PROTOCOL.md section 3). The session the server
// made for a failed check is left to its first-attach timeout.
func checkProtocol(offered []string, selected string) error {
	switch {
	case selected == "" && len(offered) > 0:
		return fmt.Errorf("%w: the server answered without one of %q (does it predate subprotocols?)", ErrNoProtocol, offered)
	case selected != "" && !slices.Contains(offered, selected):
		return fmt.Errorf("%w: the server selected the subprotocol %q, not one of %q", transport.ErrMalformed, selected, offered)
	}
	return nil
}

// offered returns the client's transports that the server offers, in the
// client's order.
func offered(client, server []string) []string {
	var order []string
	for _, t := range client {
		if slices.Contains(server, t) {
			order = append(order, t)
		}
	}
	return order
}
