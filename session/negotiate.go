package session

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/seed-544bbf9f/comet/internal/hostport"
	"github.com/seed-544bbf9f/comet/internal/logid"
	"github.com/seed-544bbf9f/comet/transport"
)

// overloadRetry is the Retry-After of a refusal for a full server.
const overloadRetry = 5 * time.Second

// negotiate makes a session (PROTOCOL.md section 3), after the checks
// that protect the server: shutdown, the per-address rate and session
// cap, the session cap and the outbound buffer budget.
func (h *Handler) negotiate(w http.ResponseWriter, r *http.Request) {
	c, refused := h.admit(w, r, r.URL.Query())
	if refused != "" {
		h.counters.refused(refused)
		return
	}
	key, ok := h.gate(w, c)
	if !ok {
		return
	}
	var req transport.NegotiateRequest
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(h.opts.ReadTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, transport.MaxNegotiateBody))
	if err == nil && len(body) > 0 {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		h.refuse(w, http.StatusBadRequest, errorBody(transport.CodeBadRequest, "negotiate body: %v", err), 0)
		return
	}
	if _, resp := h.open(w, r, c, key, req); resp != nil {
		writeJSON(w, resp)
	}
}

// negotiateAttach makes a session in the attach that asks for one
// (PROTOCOL.md section 3, "Negotiating in the first attach"): the checks
// and answers of negotiate, then the negotiate response in a header of the
// attach's answer (a WebSocket upgrade's 101, or the HTTP transports'
// 200), and the attach is the session's first attachment. A redirect is
// answered as negotiate answers it, with no attachment.
func (h *Handler) negotiateAttach(w http.ResponseWriter, r *http.Request, q url.Values, c client, adapter transport.Adapter) {
	switch {
	case adapter.Name() == transport.WebSocket && !isUpgrade(r):
		h.refuse(w, http.StatusBadRequest, errorBody(transport.CodeBadRequest, "n (a negotiate body) on the WebSocket path needs an upgrade"), 0)
		return
	case adapter.Name() != transport.WebSocket && r.Header.Get(transport.NegotiateHeader) == "":
		// A page cannot send this header to another site without a
		// preflight, which transport paths do not grant: a cross-site
		// GET cannot make a session with the user's cookies.
		h.refuse(w, http.StatusBadRequest, errorBody(transport.CodeBadRequest,
			"n (a negotiate body) on an HTTP transport needs the %s request header", transport.NegotiateHeader), 0)
		return
	}
	key, ok := h.gate(w, c)
	if !ok {
		return
	}
	params, req, err := transport.ParseNegotiatingAttach(q)
	if err != nil {
		h.refuse(w, http.StatusBadRequest, errorBody(transport.CodeBadRequest, "%v", err), 0)
		return
	}
	s, resp := h.open(w, r, c, key, req)
	switch {
	case resp == nil:
		return
	case s == nil:
		writeJSON(w, resp) // a redirect
		return
	}
	header, err := json.Marshal(resp)
	if err != nil {
		panic("comet: a negotiate response does not marshal: " + err.Error()) // plain strings and numbers
	}
	params.Session = s.id
	w.Header().Set(transport.NegotiateHeader, string(header))
	w.Header().Set("Cache-Control", "no-store, no-transform")
	a := s.newAttachment(adapter.Name(), params)
	adapter.ServeAttach(w, r, a)
	select {
	case <-a.Started():
	default:
		// The attach failed: nobody holds the session's secret, and no
		// close could be delivered.
		s.finishWith(transport.CloseSessionExpired, "the attach that made the session failed")
	}
}

// isUpgrade reports whether r asks for a WebSocket upgrade (RFC 6455
// section 4.2.1): Upgrade: websocket, and upgrade among the Connection
// options. The upgrader checks the rest.
func isUpgrade(r *http.Request) bool {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		return false
	}
	for _, v := range r.Header.Values("Connection") {
		for opt := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(opt), "upgrade") {
				return true
			}
		}
	}
	return false
}

// gate checks what protects the server before a negotiate is read:
// shutdown, the per-address rate, the session cap and the outbound buffer
// budget. It answers a refusal itself and returns false; else the key of
// the client's address for its per-address limits.
func (h *Handler) gate(w http.ResponseWriter, c client) (key netip.Prefix, ok bool) {
	if h.closing.Load() {
		h.refuse(w, http.StatusServiceUnavailable, errorBody(transport.CodeShuttingDown, "server is shutting down"), h.opts.ShutdownRetry)
		return key, false
	}
	if h.cluster != nil {
		// A session made now could be reached on this node only.
		if err := h.cluster.available(); err != nil {
			h.refuse(w, http.StatusServiceUnavailable, errorBody(transport.CodeBrokerUnavailable, "%v", err), time.Second)
			return key, false
		}
	}
	key = h.addrKey(c.addr)
	if ok, retry := h.limits.allowNegotiate(key); !ok {
		h.refuse(w, http.StatusTooManyRequests, errorBody(transport.CodeRateLimited, "too many sessions from this address"), retry)
		return key, false
	}
	if h.sessions.len() >= h.opts.MaxSessions {
		h.refuse(w, http.StatusServiceUnavailable, errorBody(transport.CodeOverloaded, "session limit reached"), overloadRetry)
		return key, false
	}
	if budget := h.opts.MaxBufferedBytes; budget > 0 && h.buffered.Load() >= int64(budget) {
		h.refuse(w, http.StatusServiceUnavailable, errorBody(transport.CodeOverloaded,
			"outbound buffers are full (%d bytes across sessions)", budget), overloadRetry)
		return key, false
	}
	return key, true
}

// open makes a session for the negotiate request req of r, from client c
// whose address has key, after gate; it returns it with the negotiate response to give: its id and secret;
// or, with no session, a redirect. It answers a refusal itself and
// returns nothing.
func (h *Handler) open(w http.ResponseWriter, r *http.Request, c client, key netip.Prefix, req transport.NegotiateRequest) (
	*Session, *transport.NegotiateResponse) {
	if req.Target != "" {
		if _, err := hostport.Parse(req.Target); err != nil {
			h.refuse(w, http.StatusBadRequest, errorBody(transport.CodeBadRequest, "negotiate body: target: %v", err), 0)
			return nil, nil
		}
	}
	if err := transport.CheckProtocols(req.Protocols); err != nil {
		h.refuse(w, http.StatusBadRequest, errorBody(transport.CodeBadRequest, "negotiate body: protocols: %v", err), 0)
		return nil, nil
	}
	d, err := h.decide(&Negotiation{Request: r, ClientAddr: c.addr, Transports: req.Transports, Target: req.Target,
		Protocols: req.Protocols})
	if err != nil {
		h.refuseAuth(w, err)
		return nil, nil
	}
	if d.RedirectURL != "" {
		return nil, &transport.NegotiateResponse{Version: transport.Version, URL: d.RedirectURL, Token: d.RedirectToken}
	}
	if d.Protocol, err = h.selectProtocol(req.Protocols, d.Protocol); err != nil {
		h.logger.Error("comet: negotiate refused", "error", err)
		h.refuse(w, http.StatusInternalServerError, errorBody(transport.CodeInternalError, "the server chose a subprotocol the client did not offer"), 0)
		return nil, nil
	}
	if len(req.Protocols) > 0 && d.Protocol == "" {
		supported := fmt.Sprintf("this server supports %q", h.opts.Protocols)
		if len(h.opts.Protocols) == 0 {
			supported = "this server supports none"
		}
		h.refuse(w, http.StatusBadRequest, errorBody(transport.CodeNoProtocol,
			"no subprotocol in common: the client offers %q, %s", req.Protocols, supported), 0)
		return nil, nil
	}
	resp := h.opts.negotiateResponse()
	for _, name := range h.offered {
		if len(req.Transports) == 0 || slices.Contains(req.Transports, name) {
			resp.Transports = append(resp.Transports, name)
		}
	}
	if len(resp.Transports) == 0 {
		h.refuse(w, http.StatusBadRequest, errorBody(transport.CodeBadRequest, "no transport in common; this server offers %v", h.offered), 0)
		return nil, nil
	}

	if !h.limits.addSession(key) {
		h.refuse(w, http.StatusTooManyRequests, errorBody(transport.CodeRateLimited,
			"this address holds %d sessions, the most allowed", h.opts.MaxSessionsPerAddress), overloadRetry)
		return nil, nil
	}
	info := h.requestInfo(r, c, d)
	for topic, pos := range req.Topics {
		if checkTopic(topic) == nil {
			if info.Topics == nil {
				info.Topics = make(map[string]transport.TopicPosition, len(req.Topics))
			}
			info.Topics[topic] = pos
		}
	}
	id := uuid.NewString()
	if h.cluster != nil {
		id = h.cluster.node + "." + id
	}
	secret := randomToken()
	agreed := agreement{
		Binary:     req.Binary && !h.opts.NoBinaryFrames,
		NoStatus:   req.NoStatus && !h.opts.LegacyClose,
		BrokerCode: slices.Contains(req.Codes, int(transport.CloseBrokerUnavailable)),
		LostCode:   slices.Contains(req.Codes, int(transport.CloseStateLost)),
		Positions:  req.Positions,
		Replies:    req.Replies && h.opts.ReplyWait > 0,
	}
	var dur *durable
	// A session with a target carries a connection of its node's (the TCP
	// relay's), which no other node can continue: it ends with its node.
	if h.cluster != nil && h.cluster.store != nil && info.Target == "" {
		if dur, err = h.cluster.create(r.Context(), id, secret, info, agreed); err != nil {
			h.limits.removeSession(key)
			h.refuse(w, http.StatusServiceUnavailable, errorBody(transport.CodeBrokerUnavailable, "%v", err), time.Second)
			return nil, nil
		}
	}
	s := newSession(h, id, secret, info)
	resp.Binary, resp.NoStatus, resp.Positions, resp.Replies = agreed.Binary, agreed.NoStatus, agreed.Positions, agreed.Replies
	resp.Protocol = d.Protocol
	if req.LazyAcks {
		resp.LazyAcks = h.opts.lazyAcks()
	}
	s.mu.Lock()
	s.agree(agreed)
	s.dur = dur
	s.addrKey, s.counted = key, true
	resp.Tickets = []string{s.tickets.mint(), s.tickets.mint()}
	s.mu.Unlock()
	resp.SessionID, resp.Secret = s.id, s.secret
	h.sessions.add(s)
	if f := h.opts.Observer.SessionOpened; f != nil {
		f(s)
	}
	h.logger.Debug("comet: session opened", "session", logid.Short(s.id), "client", c.addr)
	h.serving.Add(1)
	go h.runApplication(s)
	return s, &resp
}

// selectProtocol returns the subprotocol of a session whose client
// offered offered: chosen, the negotiate hook's choice, if it made one,
// or else the first offered that Options.Protocols lists; "" if none.
// A choice the client did not offer is an error, the hook's.
func (h *Handler) selectProtocol(offered []string, chosen string) (string, error) {
	if chosen != "" {
		if !slices.Contains(offered, chosen) {
			return "", fmt.Errorf("comet: Options.Negotiate chose the subprotocol %q, which the client did not offer (it offered %q)", chosen, offered)
		}
		return chosen, nil
	}
	for _, p := range offered {
		if slices.Contains(h.opts.Protocols, p) {
			return p, nil
		}
	}
	return "", nil
}

func (h *Handler) refuseAuth(w http.ResponseWriter, err error) {
	status, code, msg := http.StatusForbidden, transport.CodeForbidden, "forbidden"
	var ae *AuthError
	if errors.As(err, &ae) {
		msg = ae.Message
		if ae.Status == http.StatusUnauthorized {
			status, code = http.StatusUnauthorized, transport.CodeUnauthorized
		}
	}
	h.refuse(w, status, transport.ErrorBody{Code: code, Message: msg}, 0)
}

// refuse answers a negotiate with an error, counted by its code.
func (h *Handler) refuse(w http.ResponseWriter, status int, body transport.ErrorBody, retry time.Duration) {
	h.counters.refused(body.Code)
	transport.WriteError(w, status, body, retry)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store, no-transform")
	json.NewEncoder(w).Encode(v)
}

// runApplication runs Options.Serve for s and closes s when it returns.
func (h *Handler) runApplication(s *Session) {
	defer h.serving.Done()
	if h.opts.Serve == nil {
		s.closeInternal(transport.CloseInternalError, "no application is serving sessions")
		return
	}
	defer func() {
		if p := recover(); p != nil {
			h.logger.Error("comet: Serve panicked", "session", logid.Short(s.id), "panic", p)
			s.closeInternal(transport.CloseInternalError, "internal error")
			return
		}
		s.closeInternal(transport.CloseNormal, "")
	}()
	h.opts.Serve(s)
}

// closeInternal closes s with any code, for the library's own closes.
func (s *Session) closeInternal(code transport.CloseCode, reason string) {
	s.mu.Lock()
	s.closeLocked(code, reason, 0)
	s.mu.Unlock()
}
