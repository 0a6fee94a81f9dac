package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"

	"github.com/seed-544bbf9f/comet/js"
	"github.com/seed-544bbf9f/comet/transport"
)

// Adapter serves one transport: it adapts the transport's wire format to
// the session's Attachment, and nothing more. The handler has already
// checked the version, the Origin, the session and the ticket.
type Adapter interface {
	// Name is the transport name, also the last path segment it serves.
	Name() string
	// ServeAttach serves an attach request. It calls a.Serve (or a.Start)
	// with its Downstream, or answers with an error if it cannot start.
	ServeAttach(w http.ResponseWriter, r *http.Request, a *attachment)
}

// Handler is the http.Handler that negotiates sessions and routes
// transport requests to them. Mount it under Options.Prefix:
//
//	mux.Handle("/comet/", h)
//
// Sessions are invisible to http.Server.Shutdown (hijacked WebSockets and
// long-lived streams are not idle connections, and functions registered
// with RegisterOnShutdown are not waited for), so call Shutdown first,
// with a bounded ctx, then the server's:
//
//	h.Shutdown(ctx)
//	srv.Shutdown(ctx)
//
// A WebSocket attach returns from ServeHTTP once the connection is
// hijacked, so that an idle session does not keep the request's goroutine
// and net/http's buffers for its connection; the session goes on. A
// middleware in front that times requests, or tracks connections by the
// requests in flight on them, sees a WebSocket only until its upgrade.
type Handler struct {
	opts     Options
	logger   *slog.Logger
	router   *mux.Router
	direct   map[string]string // the paths ServeHTTP routes itself: see ServeHTTP
	adapters map[string]transport.Adapter
	offered  []string
	allowed  map[string]bool // Options.AllowedOrigins, canonical
	limits   *addrLimits
	buffered stripedCounter // outbound bytes in every session's window, a stripe per session (Session.stripe)
	stripe   atomic.Uint32  // the stripe of the next session
	ackHolds ackHolds       // ends the holds of acks (ackHold)
	counters counters       // read by Stats
	cluster  *cluster       // nil on a single node
	topics   *topics
	sessions *registry
	shares   shares // carriers of shared attachments (share.go)

	baseCtx   context.Context
	cancelAll context.CancelFunc
	closing   atomic.Bool
	// draining is set when Shutdown begins, DrainDelay before closing.
	draining atomic.Bool
	finished chan struct{} // a session finished; Shutdown counts down
	serving  sync.WaitGroup
}

// NewHandler returns a handler offering the given transports. opts may be
// nil. The root package comet offers every transport of this module.
//
// It panics if opts sets Negotiate together with Authorize or Redirect:
// Negotiate replaces both, and which should decide is not for the handler
// to guess.
func NewHandler(opts *Options, adapters ...transport.Adapter) *Handler {
	if opts != nil && opts.Negotiate != nil && (opts.Authorize != nil || opts.Redirect != nil) {
		panic("comet: Options.Negotiate replaces Authorize and Redirect; set Negotiate alone, or those two")
	}
	h := &Handler{
		opts:     opts.withDefaults(),
		adapters: make(map[string]transport.Adapter, len(adapters)),
		finished: make(chan struct{}, 1),
		sessions: newRegistry(),
		shares:   shares{m: make(map[string]*carrier)},
	}
	h.logger = h.opts.Logger
	h.limits = newAddrLimits(h.opts.NegotiateRate, h.opts.NegotiateBurst, h.opts.MaxSessionsPerAddress)
	h.allowed = make(map[string]bool, len(h.opts.AllowedOrigins))
	for _, o := range h.opts.AllowedOrigins {
		c, ok := canonicalOrigin(strings.TrimSuffix(o, "/"))
		if !ok {
			h.logger.Error("comet: AllowedOrigins entry ignored: not scheme://host[:port]", "entry", o)
			continue
		}
		h.allowed[c] = true
	}
	h.opts.Protocols = slices.DeleteFunc(h.opts.Protocols, func(p string) bool {
		if transport.ValidProtocol(p) {
			return false
		}
		h.logger.Error("comet: Protocols entry ignored: not an RFC 6455 token", "entry", p)
		return true
	})
	if h.opts.InsecureAllowAnyOrigin && h.opts.AllowCredentials && !h.opts.InsecureAllowAnyOriginWithCredentials {
		h.logger.Warn("comet: InsecureAllowAnyOrigin allows credentials only for AllowedOrigins; " +
			"set InsecureAllowAnyOriginWithCredentials to send them to every site, if you must")
	}
	h.baseCtx, h.cancelAll = context.WithCancel(context.Background())
	for _, a := range adapters {
		h.adapters[a.Name()] = a
	}
	order := h.opts.Transports
	if len(order) == 0 {
		order = transport.Order()
	}
	for _, name := range order {
		if h.adapters[name] != nil && !slices.Contains(h.offered, name) {
			h.offered = append(h.offered, name)
		}
	}

	notAllowed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, errorBody(transport.CodeMethodNotAllowed, "%s is not allowed on %s", r.Method, r.URL.Path))
	})
	r := mux.NewRouter()
	sub := r.PathPrefix(h.opts.Prefix).Subrouter()
	sub.HandleFunc("/negotiate", h.negotiate).Methods(http.MethodPost)
	sub.HandleFunc("/negotiate", h.preflight).Methods(http.MethodOptions)
	sub.HandleFunc("/send", h.send).Methods(http.MethodPost)
	// Any other method there is a wrong method (405), not an attach to a
	// transport named "negotiate" or "send" (404 transport_disabled).
	sub.Handle("/negotiate", notAllowed)
	sub.Handle("/send", notAllowed)
	// The browser shim, the TCP relay's helper and their TypeScript
	// declarations, before /{transport}, which would take their names for
	// transports. No Origin check: a page of any origin may load a script,
	// and the scripts themselves grant nothing.
	// Shared attachments (share.go), before /{transport} too.
	sub.HandleFunc("/share", h.share).Methods(http.MethodGet)
	sub.HandleFunc("/share", h.shareOps).Methods(http.MethodPost)
	shim := js.Handler()
	for _, name := range js.Names() {
		sub.Handle("/"+name, shim).Methods(http.MethodGet, http.MethodHead)
	}
	sub.HandleFunc("/{transport}", func(w http.ResponseWriter, r *http.Request) {
		h.attach(w, r, mux.Vars(r)["transport"])
	}).Methods(http.MethodGet)
	h.direct = map[string]string{h.opts.Prefix + "/send": ""}
	for name := range h.adapters {
		if !slices.Contains(js.Names(), name) {
			h.direct[h.opts.Prefix+"/"+name] = name
		}
	}
	notFound := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, errorBody(transport.CodeNotFound, "no such path: %s", r.URL.Path))
	})
	r.NotFoundHandler = notFound
	sub.NotFoundHandler = notFound
	r.MethodNotAllowedHandler = notAllowed
	sub.MethodNotAllowedHandler = notAllowed
	h.router = r
	var store topicStore
	if h.opts.Broker != nil {
		store = h.opts.Broker
	}
	h.topics = newTopics(h, store)
	if b := h.opts.Broker; b != nil {
		if !ValidNode(b.Node()) {
			panic(fmt.Sprintf("comet: Broker.Node() %q is not a valid node id: 1 to 32 of [A-Za-z0-9_-]", b.Node()))
		}
		h.cluster = newCluster(h, b)
		h.cluster.start()
	}
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.cluster != nil {
		// Every answer names the node that gave it, for operators and
		// for tests that prove a session's requests spread over nodes.
		w.Header().Set(NodeHeader, h.cluster.node)
	}
	// The paths of every session's requests, the transports' and /send,
	// are routed here as the router would route them: its matching (a
	// regular expression per route, the variables in a copy of the
	// request) costs more than the rest of a POST's routing.
	if name, ok := h.direct[r.URL.Path]; ok {
		switch {
		case name == "" && r.Method == http.MethodPost:
			h.send(w, r)
			return
		case name != "" && r.Method == http.MethodGet:
			h.attach(w, r, name)
			return
		}
	}
	h.router.ServeHTTP(w, r)
}

// NodeHeader is the response header that names the node that served a
// request, in a cluster (see Options.Broker).
const NodeHeader = "Comet-Node"

// Sessions returns the number of sessions the handler holds.
func (h *Handler) Sessions() int { return h.sessions.len() }

// Options returns the options in force, defaults filled in.
func (h *Handler) Options() Options { return h.opts }

// admit checks what every request must pass: the protocol version in q,
// the request's query, and the Origin policy. It writes the refusal and
// returns its error code, or sets the CORS headers and returns "".
func (h *Handler) admit(w http.ResponseWriter, r *http.Request, q url.Values) (c client, refused string) {
	c = h.clientOf(r)
	cors, creds, refusal := h.checkOrigin(r, c)
	if refusal != nil {
		h.logger.Info("comet: origin refused", "origin", refusal.Origin, "host", refusal.Host, "path", r.URL.Path)
		// The refused page may read the refusal (and only that), so that
		// its client reports a forbidden origin rather than an unreachable
		// server and does not retry.
		if refusal.Origin != "" {
			w.Header().Set("Access-Control-Allow-Origin", refusal.Origin)
			w.Header().Add("Vary", "Origin")
		}
		writeError(w, http.StatusForbidden, *refusal)
		return c, refusal.Code
	}
	// CORS headers first, so that an allowed cross-origin page can read
	// the version refusal and its list of supported versions.
	setCORS(w, cors, creds)
	if v := q.Get("v"); v != strconv.Itoa(transport.Version) {
		body := errorBody(transport.CodeUnsupportedVersion, "protocol version %q is not supported", v)
		body.Supported = []int{transport.Version}
		writeError(w, http.StatusBadRequest, body)
		return c, body.Code
	}
	return c, ""
}

func (h *Handler) preflight(w http.ResponseWriter, r *http.Request) {
	cors, creds, refusal := h.checkOrigin(r, h.clientOf(r))
	if refusal != nil {
		writeError(w, http.StatusForbidden, *refusal)
		return
	}
	setCORS(w, cors, creds)
	hd := w.Header()
	hd.Set("Access-Control-Allow-Methods", "POST")
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		hd.Set("Access-Control-Allow-Headers", req)
	}
	hd.Set("Access-Control-Max-Age", "600")
	hd.Set("Cache-Control", "no-store, no-transform")
	w.WriteHeader(http.StatusNoContent)
}

// attach serves an attach to the transport name. It is kept apart from
// the checks (prepareAttach), whose frame is large: a poll, or a stream
// that keeps its request, waits in ServeAttach for its whole life, on the
// stack beneath it, and the runtime halves a goroutine's stack only while
// a quarter of it holds what is in use. A poll parked under the checks'
// frame kept a stack twice the size.
func (h *Handler) attach(w http.ResponseWriter, r *http.Request, name string) {
	if adapter, a := h.prepareAttach(w, r, name); a != nil {
		adapter.ServeAttach(w, r, a)
	}
}

// prepareAttach checks an attach and returns its adapter and attachment;
// a nil attachment if it answered the request itself: a refusal, an
// attach that negotiates, or one forwarded to the session's node.
func (h *Handler) prepareAttach(w http.ResponseWriter, r *http.Request, name string) (transport.Adapter, *attachment) {
	adapter := h.adapters[name]
	if adapter == nil || !slices.Contains(h.offered, name) {
		writeError(w, http.StatusNotFound, errorBody(transport.CodeTransportDisabled, "transport %q is not offered; this server offers %v", name, h.offered))
		return nil, nil
	}
	q := r.URL.Query() // parsed once: every parse allocates the whole query again
	c, refused := h.admit(w, r, q)
	if refused != "" {
		if q.Has("n") {
			h.counters.refused(refused) // a negotiate refused
		}
		return nil, nil
	}
	if q.Has("n") {
		h.negotiateAttach(w, r, q, c, adapter)
		return nil, nil
	}
	params, err := transport.ParseAttach(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, errorBody(transport.CodeBadRequest, "%v", err))
		return nil, nil
	}
	s := h.sessions.get(params.Session)
	for try := 0; s == nil; try++ {
		var owner string
		if s, owner = h.route(w, r, params.Session); s != nil {
			break
		}
		// With failover, an owner found gone before the link was made
		// is looked for again, once: the session is taken over.
		if owner == "" || h.cluster.forward(w, r, adapter, owner, params, try == 0) {
			return nil, nil
		}
	}
	if status, body, ok := s.useTicket(params.Ticket); !ok {
		writeError(w, status, body)
		return nil, nil
	}
	w.Header().Set("Cache-Control", "no-store, no-transform")
	return adapter, s.newAttachment(name, params)
}

// useTicket spends an attach ticket, or returns the refusal.
func (s *Session) useTicket(t string) (int, transport.ErrorBody, bool) {
	s.mu.Lock()
	ok := s.tickets.use(t)
	s.mu.Unlock()
	if !ok {
		return http.StatusForbidden, errorBody(transport.CodeBadTicket, "attach ticket is unknown, used or expired; get a fresh one"), false
	}
	return 0, transport.ErrorBody{}, true
}

// route finds a session this node does not hold: the session, when
// failover takes it over here, or the node that owns it. Otherwise it
// answers the request and returns neither.
func (h *Handler) route(w http.ResponseWriter, r *http.Request, id string) (*Session, string) {
	if h.cluster != nil && h.cluster.store != nil {
		return h.locate(w, r.Context(), id)
	}
	return nil, h.foreignOwner(w, id)
}

// foreignOwner returns the node that owns a session this node does not
// hold, when a cluster's broker can reach it; otherwise it answers the
// request and returns "": 404 for a session that is not another node's, or
// whose node is gone; 503 while the broker is unavailable.
func (h *Handler) foreignOwner(w http.ResponseWriter, id string) string {
	owner := ""
	if h.cluster != nil {
		owner = ownerOf(id)
	}
	if owner == "" || owner == h.cluster.node {
		writeError(w, http.StatusNotFound, notFound)
		return ""
	}
	if err := h.cluster.available(); err != nil {
		h.writeCallError(w, err)
		return ""
	}
	if !h.cluster.awaitAlive(owner) {
		writeError(w, http.StatusNotFound, notFound)
		return ""
	}
	return owner
}

func (s *Session) newAttachment(name string, p transport.AttachParams) *attachment {
	return &attachment{s: s, name: name, tidx: transportIndex(name), params: p, wakeCh: make(chan struct{}, 1), doneCh: make(chan struct{}),
		startedCh: make(chan struct{})}
}

func (h *Handler) send(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if _, refused := h.admit(w, r, q); refused != "" {
		return
	}
	id := q.Get("s")
	if id == "" {
		writeError(w, http.StatusBadRequest, errorBody(transport.CodeBadRequest, "s (the session id) is required"))
		return
	}
	s := h.sessions.get(id)
	owner := ""
	if s == nil {
		if s, owner = h.route(w, r, id); s == nil && owner == "" {
			return
		}
	}
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(h.opts.ReadTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(h.opts.MaxBatch)))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, errorBody(transport.CodeTooLarge, "body exceeds %d bytes", h.opts.MaxBatch))
			return
		}
		writeError(w, http.StatusBadRequest, errorBody(transport.CodeBadRequest, "reading body: %v", err))
		return
	}
	// a names the attachment the client delivers by, for replies in the
	// answer (PROTOCOL.md section 6); absent or not a number, none.
	attempt, _ := strconv.ParseUint(q.Get("a"), 10, 64)
	var reply []byte
	for try := 0; s == nil; try++ {
		ctx, cancel := context.WithTimeout(r.Context(), h.opts.BrokerTimeout)
		rep, err := h.cluster.call(ctx, owner, &envelope{kind: kindPost, a: id, num: attempt, data: body})
		cancel()
		switch {
		case errors.Is(err, errNodeGone) && h.cluster.store != nil && try == 0:
			// Its owner is gone: with failover the session is taken
			// over, here or by another node.
			if s, owner = h.route(w, r, id); s == nil && owner == "" {
				return
			}
			continue
		case err != nil:
			h.writeCallError(w, err)
			return
		case rep.num != http.StatusOK:
			writeReply(w, rep)
			return
		}
		reply = rep.data
		break
	}
	if s != nil {
		status, eb, rep := h.applyPost(s, body, attempt)
		if status != http.StatusOK {
			writeError(w, status, eb)
			return
		}
		reply = rep
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store, no-transform")
	w.Write(reply)
}

// applyPost applies a POST's body to s and returns its answer: 200 and
// the reply, or the refusal.
func (h *Handler) applyPost(s *Session, body []byte, attempt uint64) (int, transport.ErrorBody, []byte) {
	reply, err := s.post(body, attempt)
	var pe *protocolError
	switch {
	case errors.Is(err, errBadSecret):
		return http.StatusForbidden, errorBody(transport.CodeBadSecret, "the body must start with a key frame holding the session secret"), nil
	case errors.As(err, &pe):
		return http.StatusBadRequest, errorBody(pe.errorCode(), "%v", err), nil
	case err != nil:
		return http.StatusBadRequest, errorBody(transport.CodeMalformed, "%v", err), nil
	}
	return http.StatusOK, transport.ErrorBody{}, reply
}

// sessionFinished tells a waiting Shutdown that a session has gone.
func (h *Handler) sessionFinished() {
	select {
	case h.finished <- struct{}{}:
	default:
	}
}
