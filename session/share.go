package session

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

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

// CodeShareNotFound is the error code of a request for a carrier this
// handler does not hold: unknown, ended, or another node's.
const CodeShareNotFound = "share_not_found"

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
			writeError(w, http.StatusNotFound, errorBody(CodeShareNotFound, "no carrier %q here polls: open another", id))
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

// end ends the carrier and every sub-request it delivers for.
func (ca *carrier) end() {
	ca.mu.Lock()
	if ca.ended {
		ca.mu.Unlock()
		return
	}
	ca.ended = true
	if ca.idle != nil {
		ca.idle.Stop()
	}
	if ca.poll != nil {
		close(ca.poll)
		ca.poll = nil
	}
	ca.frames, ca.queued = nil, 0
	ca.signalLocked()
	ca.mu.Unlock()
	ca.cancel()
	ca.h.shares.mu.Lock()
	delete(ca.h.shares.m, ca.id)
	ca.h.shares.mu.Unlock()
	ca.h.limits.removeSession(ca.key)
}

func (ca *carrier) signalLocked() {
	close(ca.changed)
	ca.changed = make(chan struct{})
}

// add queues one frame, numbering it: the line is built by frame from
// its number. It waits while the queue is full, until ctx ends.
func (ca *carrier) add(ctx context.Context, frame func(n uint64) []byte) error {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	for {
		if ca.ended {
			return context.Canceled
		}
		if err := ctx.Err(); err != nil {
			return err // an aborted sub-request's frames are of no use
		}
		n := ca.first + uint64(len(ca.frames))
		line := frame(n)
		if ca.queued == 0 || ca.queued+len(line) <= shareMaxQueued {
			ca.frames = append(ca.frames, line)
			ca.queued += len(line)
			ca.signalLocked()
			return nil
		}
		ch := ca.changed
		ca.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			ca.mu.Lock()
			return ctx.Err()
		}
		ca.mu.Lock()
	}
}

// ackLocked drops the frames numbered up to n (with n = ^0, all).
func (ca *carrier) ackLocked(n uint64) {
	for len(ca.frames) > 0 && ca.first <= n {
		ca.queued -= len(ca.frames[0])
		ca.frames[0] = nil
		ca.frames = ca.frames[1:]
		ca.first++
	}
	if len(ca.frames) == 0 {
		ca.frames = nil
	}
	ca.signalLocked()
}

// joinedLocked returns the queued frames as one body.
func (ca *carrier) joinedLocked() []byte {
	var b []byte
	for _, f := range ca.frames {
		b = append(b, f...)
	}
	return b
}

// servePoll answers a poll: every frame not acknowledged, at once if
// there is one, otherwise the first to come, or none after Hold. A newer
// poll ends this one, empty.
func (ca *carrier) servePoll(w http.ResponseWriter, r *http.Request, ack uint64) {
	body, ok := ca.await(r.Context(), ack)
	if !ok {
		writeError(w, http.StatusNotFound, errorBody(CodeShareNotFound, "carrier %q has ended: open another", ca.id))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(body)
}

// await waits for a poll's answer, until ctx ends at the latest (see
// servePoll); ok is false if the carrier has ended.
func (ca *carrier) await(ctx context.Context, ack uint64) (body []byte, ok bool) {
	ca.mu.Lock()
	if ca.ended {
		ca.mu.Unlock()
		return nil, false
	}
	if ca.poll != nil {
		close(ca.poll)
	}
	mine := make(chan struct{})
	ca.poll = mine
	ca.idle.Stop()
	ca.ackLocked(ack)
	ca.mu.Unlock()
	hold := time.NewTimer(ca.h.opts.Hold)
	defer hold.Stop()
wait:
	for {
		ca.mu.Lock()
		if len(ca.frames) > 0 {
			body = ca.joinedLocked()
			ca.mu.Unlock()
			break
		}
		ch := ca.changed
		ca.mu.Unlock()
		select {
		case <-ch:
		case <-mine:
			break wait
		case <-hold.C:
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	ca.mu.Lock()
	if ca.poll == mine {
		ca.poll = nil
		if !ca.ended {
			ca.idle.Reset(ca.h.opts.Hold + ca.h.opts.Grace)
		}
	}
	ca.mu.Unlock()
	return body, true
}

// serveStream serves a carrier's stream for its whole life: the pad and
// the hello, then every frame as it comes, and a heartbeat frame when
// nothing came for a Heartbeat. The carrier ends with the stream.
func (ca *carrier) serveStream(w http.ResponseWriter, r *http.Request) {
	defer ca.end()
	rc := http.NewResponseController(w)
	hd := w.Header()
	hd.Set("Content-Type", "text/plain; charset=utf-8")
	hd.Set("X-Accel-Buffering", "no")
	if r.ProtoMajor == 1 {
		hd.Set("Connection", "keep-alive")
	}
	write := func(b []byte) bool {
		rc.SetWriteDeadline(time.Now().Add(ca.h.opts.WriteTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write(append([]byte(sharePad), ca.hello()...)) {
		return
	}
	beat := time.NewTicker(ca.h.opts.Heartbeat)
	defer beat.Stop()
	for {
		ca.mu.Lock()
		body := ca.joinedLocked()
		ca.ackLocked(^uint64(0))
		ch := ca.changed
		ca.mu.Unlock()
		if len(body) > 0 {
			if !write(body) {
				return
			}
			beat.Reset(ca.h.opts.Heartbeat)
		}
		select {
		case <-ch:
		case <-beat.C:
			ca.add(r.Context(), func(n uint64) []byte { return carrierFrame(n, 0, "k") })
		case <-r.Context().Done():
			return
		case <-ca.ctx.Done():
			return
		}
	}
}

// partFrame encodes a part of a sub-request's body: [n,sub,"d",text].
func partFrame(n, sub uint64, text string) []byte {
	b := carrierFrame(n, sub, "d")
	b = append(b[:len(b)-2], ',')
	b = transport.AppendString(b, text)
	return append(b, "]\n"...)
}

// carrierFrame encodes a frame of the carrier itself or a sub-request's
// head or end: [n,sub,kind] or [n,sub,"h",status].
func carrierFrame(n, sub uint64, kind string, status ...int) []byte {
	b := append([]byte{'['}, strconv.AppendUint(nil, n, 10)...)
	b = append(b, ',')
	b = strconv.AppendUint(b, sub, 10)
	b = append(b, ",\""...)
	b = append(b, kind...)
	b = append(b, '"')
	for _, s := range status {
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(s), 10)
	}
	return append(b, "]\n"...)
}

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
			writeError(w, http.StatusNotFound, errorBody(CodeShareNotFound, "no carrier %q here: open another", id))
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
			return http.StatusNotFound, errorBody(CodeShareNotFound, "carrier %q has ended: open another", ca.id)
		}
	}
	return http.StatusOK, transport.ErrorBody{}
}

// apply carries out one op. It fails only when the carrier has ended.
func (ca *carrier) apply(ctx context.Context, op shareOp) error {
	switch op.kind {
	case shareOpPing:
		return ca.add(ctx, func(n uint64) []byte { return carrierFrame(n, 0, "p") })
	case shareOpAbort:
		ca.mu.Lock()
		cancel := ca.subs[op.sub]
		ca.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		return nil
	}
	ca.mu.Lock()
	if ca.ended {
		ca.mu.Unlock()
		return context.Canceled
	}
	if op.sub <= ca.started {
		ca.mu.Unlock()
		return nil
	}
	ca.started = op.sub
	full := len(ca.subs) >= shareMaxSubs
	sctx, cancel := context.WithCancel(ca.ctx)
	if !full {
		ca.subs[op.sub] = cancel
	}
	ca.mu.Unlock()
	sw := &subWriter{ca: ca, sub: op.sub, ctx: sctx, header: make(http.Header)}
	if full {
		defer cancel()
		writeError(sw, http.StatusTooManyRequests, errorBody(transport.CodeRateLimited, "this carrier has %d sub-requests open, the most allowed", shareMaxSubs))
		return sw.finish()
	}
	req, refusal := ca.request(sctx, op)
	ca.h.serving.Add(1)
	go func() {
		defer ca.h.serving.Done()
		if refusal != nil {
			refusal(sw)
		} else {
			ca.h.ServeHTTP(sw, req)
		}
		sw.finish()
		cancel()
		ca.mu.Lock()
		delete(ca.subs, op.sub)
		ca.mu.Unlock()
	}()
	return nil
}

// request makes the sub-request of op: the opening request's headers
// and address, op's method, target and body. A target that is not a
// session path of this handler gets instead the refusal to write.
func (ca *carrier) request(ctx context.Context, op shareOp) (*http.Request, func(http.ResponseWriter)) {
	u, err := url.ParseRequestURI(op.target)
	if err != nil || u.Host != "" || u.Scheme != "" {
		return nil, func(w http.ResponseWriter) {
			writeError(w, http.StatusBadRequest, errorBody(transport.CodeBadRequest, "sub-request target %q is not a path", op.target))
		}
	}
	name, ok := ca.h.direct[u.Path]
	if !ok || name == transport.WebSocket {
		return nil, func(w http.ResponseWriter) {
			writeError(w, http.StatusNotFound, errorBody(transport.CodeNotFound, "%s is not a session path a carrier serves", u.Path))
		}
	}
	if want := map[bool]string{true: http.MethodPost, false: http.MethodGet}[name == ""]; op.method != want {
		return nil, func(w http.ResponseWriter) {
			writeError(w, http.StatusMethodNotAllowed, errorBody(transport.CodeMethodNotAllowed, "%s is not allowed on %s", op.method, u.Path))
		}
	}
	req := ca.base.Clone(ctx)
	req.Method = op.method
	req.URL = u
	req.RequestURI = op.target
	req.Header.Del("Content-Type")
	req.Header.Del("Content-Length")
	if op.method == http.MethodPost {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
		req.Body = io.NopCloser(strings.NewReader(op.body))
		req.ContentLength = int64(len(op.body))
	}
	return req, nil
}

// subWriter is a sub-request's ResponseWriter: its head, its body in
// parts and its end become the carrier's frames. A part ends at a
// character's boundary, so that each is valid text on its own.
type subWriter struct {
	ca     *carrier
	sub    uint64
	ctx    context.Context
	header http.Header
	status int
	buf    []byte
	err    error
}

func (w *subWriter) Header() http.Header { return w.header }

func (w *subWriter) WriteHeader(status int) {
	if w.status != 0 || w.err != nil {
		return
	}
	w.status = status
	w.err = w.ca.add(w.ctx, func(n uint64) []byte { return carrierFrame(n, w.sub, "h", status) })
}

func (w *subWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if w.err != nil {
		return 0, w.err
	}
	w.buf = append(w.buf, p...)
	if len(w.buf) >= sharePart {
		w.flush(false)
	}
	return len(p), w.err
}

// Flush sends what was written as a part, up to the last whole character.
func (w *subWriter) Flush() { w.flush(false) }

func (w *subWriter) flush(last bool) {
	w.WriteHeader(http.StatusOK)
	for len(w.buf) > 0 && w.err == nil {
		n := min(len(w.buf), sharePart)
		if !last || n < len(w.buf) {
			n = wholeRunes(w.buf[:n])
		}
		if n == 0 {
			return
		}
		part := string(w.buf[:n])
		w.err = w.ca.add(w.ctx, func(num uint64) []byte { return partFrame(num, w.sub, part) })
		w.buf = w.buf[n:]
	}
	if len(w.buf) == 0 {
		w.buf = nil
	}
}

// finish sends the rest of the body and the end, unless the sub-request
// was aborted or the carrier ended.
func (w *subWriter) finish() error {
	w.flush(true)
	if w.err == nil {
		w.err = w.ca.add(w.ctx, func(n uint64) []byte { return carrierFrame(n, w.sub, "e") })
	}
	if w.ctx.Err() != nil && w.ca.ctx.Err() == nil {
		return nil // aborted: the carrier goes on
	}
	return w.err
}

// wholeRunes returns the length of b without a character cut at its end.
func wholeRunes(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if utf8.FullRune(b[i:]) {
				return len(b)
			}
			return i
		}
	}
	return len(b)
}
