package session

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// Shared attachments (PROTOCOL.md section 16). A browser opens at most six
// HTTP/1.1 connections to a host, so that a page open in many tabs, each
// with its own stream and POSTs, starves: behind a proxy that refuses
// WebSocket the seventh tab never opens. The tabs' sessions therefore
// share one carrier, held by one tab: a stream (or, where a proxy holds
// streams back, a run of polls) that delivers the responses of their
// attaches and POSTs, and a POST that starts several of them at once.
//
// A carrier is a tunnel for its sub-requests, not a session: each
// sub-request is served by ServeHTTP exactly as the same request alone,
// with the headers and client address of the request that opened the
// carrier, so that every check (Origin, version, session, ticket, secret,
// limits) applies to each one on its own, and one session's proof never
// admits another's frames. Only the session paths of this handler may be
// requested: the HTTP transports' attaches and /send.
const (
	// shareMaxSubs bounds the sub-requests open at once on a carrier: a
	// page's tabs need one attach and at most a POST or two each.
	shareMaxSubs = 256
	// shareMaxQueued bounds the bytes of frames a carrier holds that its
	// client has not taken (a stream) or acknowledged (polls); a
	// sub-request's writes wait while it is full, which the session's
	// own window turns into backpressure.
	shareMaxQueued = 1 << 20
	// sharePart is the largest piece of a sub-request's body in a frame.
	sharePart = 32 << 10
	// shareMaxTarget bounds the path and query of a sub-request.
	shareMaxTarget = 4096
)

// sharePad opens a carrier stream, for proxies and browsers that hold
// back the first bytes of a response (as the XHR streaming preamble).
var sharePad = strings.Repeat(" ", 2048) + "\n"

// shares holds the handler's carriers by id.
type shares struct {
	mu sync.Mutex
	m  map[string]*carrier
}

func (s *shares) get(id string) *carrier {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[id]
}

// endAll ends every carrier, for Shutdown.
func (s *shares) endAll() {
	s.mu.Lock()
	all := make([]*carrier, 0, len(s.m))
	for _, ca := range s.m {
		all = append(all, ca)
	}
	s.mu.Unlock()
	for _, ca := range all {
		ca.end()
	}
}

func (s *shares) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// carrier is one shared attachment: the frames it has still to deliver,
// and the sub-requests it delivers for.
type carrier struct {
	h      *Handler
	id     string
	stream bool
	key    netip.Prefix  // the opening client's address, for the per-address cap
	base   *http.Request // the opening request, bodiless: what every sub-request inherits
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	frames  [][]byte      // encoded lines not yet delivered (stream) or acknowledged (polls)
	first   uint64        // the number of frames[0]
	queued  int           // bytes in frames
	changed chan struct{} // closed and replaced when frames are added or taken
	subs    map[uint64]context.CancelFunc
	started uint64        // the highest sub-request number started
	poll    chan struct{} // closed to end the parked poll (polls)
	idle    *time.Timer   // ends a carrier nobody polls (polls)
	ended   bool
}

// share serves GET {prefix}/share: without c, it opens a carrier (a
// stream with s=1, polls otherwise); with c, it is the carrier's next
// poll, which acknowledges the frames numbered up to n.
func (h *Handler) share(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !h.shareOffered(w) {
		return
	}
	c, refused := h.admit(w, r, q)
	if refused != "" {
		return
	}
	w.Header().Set("Cache-Control", "no-store, no-transform")
	if id := q.Get("c"); id != "" {
		ack, err := strconv.ParseUint(q.Get("n"), 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, errorBody(transport.CodeBadRequest, "n (the last frame received) must be a number"))
			return
		}
		ca := h.shares.get(id)
		if ca == nil {
			if node := h.carrierNode(id); node != "" {
				h.cluster.forwardPoll(w, r, node, id, ack)
				return
			}
		}
		if ca == nil || ca.stream {
			writeError(w, http.StatusNotFound, errorBody(transport.CodeShareNotFound, "no carrier %q here polls: open another", id))
			return
		}
		ca.servePoll(w, r, ack)
		return
	}
	ca := h.openCarrier(w, r, c, q.Get("s") == "1")
	if ca == nil {
		return
	}
	if ca.stream {
		ca.serveStream(w, r)
		return
	}
	ca.mu.Lock()
	ca.idle = time.AfterFunc(h.opts.Hold+h.opts.Grace, ca.end)
	ca.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(ca.hello())
}

// shareOffered answers 404 and returns false where sharing is off
// (Options.NoSharing).
func (h *Handler) shareOffered(w http.ResponseWriter) bool {
	if h.opts.NoSharing {
		writeError(w, http.StatusNotFound, errorBody(transport.CodeNotFound, "this server does not share attachments"))
		return false
	}
	return true
}

// openCarrier makes a carrier for r, or answers the refusal and returns
// nil: carriers count against the same caps as sessions.
func (h *Handler) openCarrier(w http.ResponseWriter, r *http.Request, c client, stream bool) *carrier {
	if h.closing.Load() {
		writeError(w, http.StatusServiceUnavailable, errorBody(transport.CodeShuttingDown, "server shutting down"))
		return nil
	}
	if max := h.opts.MaxSessions; max > 0 && h.shares.len() >= max {
		writeError(w, http.StatusServiceUnavailable, errorBody(transport.CodeOverloaded, "this server holds %d carriers, the most allowed", max))
		return nil
	}
	key := h.addrKey(c.addr)
	if !h.limits.addSession(key) {
		writeError(w, http.StatusTooManyRequests, errorBody(transport.CodeRateLimited,
			"this address holds %d sessions, the most allowed", h.opts.MaxSessionsPerAddress))
		return nil
	}
	var b [16]byte
	rand.Read(b[:])
	id := base64.RawURLEncoding.EncodeToString(b[:])
	if h.cluster != nil {
		// The node that holds it first: the others forward to it.
		id = h.cluster.node + "." + id
	}
	ca := &carrier{
		h:       h,
		id:      id,
		stream:  stream,
		key:     key,
		first:   1,
		changed: make(chan struct{}),
		subs:    make(map[uint64]context.CancelFunc),
	}
	ca.base = r.Clone(context.Background())
	ca.base.Body = http.NoBody
	ca.base.ContentLength = 0
	ca.ctx, ca.cancel = context.WithCancel(h.baseCtx)
	h.counters.carriers[ca.kind()].Add(1)
	h.shares.mu.Lock()
	h.shares.m[ca.id] = ca
	h.shares.mu.Unlock()
	return ca
}

// hello is a carrier's first line: its id, and the largest body of a
// POST of sub-requests this handler takes.
func (ca *carrier) hello() []byte {
	b := append([]byte(`["o",`), transport.AppendString(nil, ca.id)...)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(ca.h.shareMaxBody()), 10)
	return append(b, "]\n"...)
}

// shareMaxBody is the largest POST of sub-requests: a POST's largest
// body, escaped as a JSON string at its worst (six bytes a byte), and
// room for the other sub-requests.
func (h *Handler) shareMaxBody() int { return 6*h.opts.MaxBatch + 64<<10 }

// shareOps serves POST {prefix}/share?c=: the sub-requests to start or
// abort, and pings. A retried POST starts nothing twice: a sub-request
// numbered at or below the highest started is skipped.
func (h *Handler) shareOps(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !h.shareOffered(w) {
		return
	}
	if _, refused := h.admit(w, r, q); refused != "" {
		return
	}
	id := q.Get("c")
	ca := h.shares.get(id)
	node := ""
	if ca == nil {
		if node = h.carrierNode(id); node == "" {
			writeError(w, http.StatusNotFound, errorBody(transport.CodeShareNotFound, "no carrier %q here: open another", id))
			return
		}
	}
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(h.opts.ReadTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(h.shareMaxBody())))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, errorBody(transport.CodeTooLarge, "body exceeds %d bytes", h.shareMaxBody()))
			return
		}
		writeError(w, http.StatusBadRequest, errorBody(transport.CodeBadRequest, "reading body: %v", err))
		return
	}
	if node != "" {
		h.cluster.forwardOps(w, r, node, id, body)
		return
	}
	if status, eb := ca.applyBody(r.Context(), body); status != http.StatusOK {
		writeError(w, status, eb)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store, no-transform")
	w.Write([]byte("{}"))
}

// applyBody parses a POST's ops and carries them out, in order; it
// returns 200, or the refusal: nothing is started from a malformed body.
func (ca *carrier) applyBody(ctx context.Context, body []byte) (int, transport.ErrorBody) {
	ops, err := parseShareOps(body)
	if err != nil {
		return http.StatusBadRequest, errorBody(transport.CodeMalformed, "share body: %v", err)
	}
	for _, op := range ops {
		if err := ca.apply(ctx, op); err != nil {
			return http.StatusNotFound, errorBody(transport.CodeShareNotFound, "carrier %q has ended: open another", ca.id)
		}
	}
	return http.StatusOK, transport.ErrorBody{}
}
