package session

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// The frames of a carrier (PROTOCOL.md section 16): queued, numbered,
// bounded, and delivered on its stream or by its polls.

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
	ca.h.counters.carriers[ca.kind()].Add(-1)
}

// kind indexes the carrier's kind in counters.carriers.
func (ca *carrier) kind() int {
	if ca.stream {
		return 1
	}
	return 0
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
		writeError(w, http.StatusNotFound, errorBody(transport.CodeShareNotFound, "carrier %q has ended: open another", ca.id))
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
