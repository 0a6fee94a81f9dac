package session

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/seed-544bbf9f/comet/transport"
)

// The sub-requests of a carrier (PROTOCOL.md section 16): each served by
// ServeHTTP as the same request alone, its response written as frames.

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
	ca.h.counters.subRequests.Add(1)
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
	want := http.MethodGet // an attach
	if name == "" {
		want = http.MethodPost // /send
	}
	if op.method != want {
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
