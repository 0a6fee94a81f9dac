package session

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/seed-544bbf9f/comet/internal/clock"
	"github.com/seed-544bbf9f/comet/internal/logid"
	"github.com/seed-544bbf9f/comet/internal/window"
	"github.com/seed-544bbf9f/comet/transport"
)

// protocolError is an upstream violation; the session closes with Code.
type protocolError struct {
	Code   transport.CloseCode
	Reason string
}

func (e *protocolError) Error() string {
	return fmt.Sprintf("comet: %s (close %d)", e.Reason, int(e.Code))
}

func violation(code transport.CloseCode, format string, args ...any) error {
	return &protocolError{Code: code, Reason: transport.TruncateReason(fmt.Sprintf(format, args...))}
}

// errorCode is the JSON error code of a POST the violation refuses.
func (e *protocolError) errorCode() string {
	switch e.Code {
	case transport.CloseInvalidPayload:
		return transport.CodeInvalidPayload
	case transport.CloseMessageTooBig:
		return transport.CodeTooLarge
	}
	return transport.CodeMalformed
}

// errBadSecret refuses a POST whose key frame does not prove possession of
// the session's secret.
var errBadSecret = errors.New("comet: the body must start with a key frame holding the session secret")

// decodeBatch decodes an upstream batch; a codec error becomes the
// violation it stands for.
func decodeBatch(batch []byte) ([]transport.Frame, error) {
	return appendBatch(nil, batch)
}

// appendBatch is decodeBatch appending to dst (transport.AppendBatch).
func appendBatch(dst []transport.Frame, batch []byte) ([]transport.Frame, error) {
	frames, err := transport.AppendBatch(dst, batch)
	switch {
	case err == nil:
		return frames, nil
	case errors.Is(err, transport.ErrInvalidUTF8):
		return nil, violation(transport.CloseInvalidPayload, "text message is not valid UTF-8")
	}
	return nil, violation(transport.CloseProtocolError, "%v", err)
}

// failLocked closes the session for a violation.
func (s *Session) failLocked(err error) {
	var pe *protocolError
	if !errors.As(err, &pe) {
		pe = &protocolError{Code: transport.CloseInternalError, Reason: "internal error"}
	}
	s.h.logger.Info("comet: closing session on bad input", "session", logid.Short(s.id), "code", int(pe.Code), "reason", pe.Reason)
	s.closeLocked(pe.Code, pe.Reason, 0)
}

// Receive implements transport.Attachment: when the inbound buffer is
// full it waits for Recv to make room, and it returns errFinished once the
// attachment has ended.
func (a *attachment) Receive(batch []byte) error {
	s := a.s
	s.h.counters.traffic.at(s.stripe, a.tidx).bytesIn.Add(uint64(len(batch)))
	fp := framesPool.Get().(*[]transport.Frame)
	defer putFrames(fp)
	frames, err := appendBatch((*fp)[:0], batch)
	if err != nil {
		s.mu.Lock()
		s.failLocked(err)
		s.mu.Unlock()
		return err
	}
	*fp = frames
	return a.receiveFrames(frames)
}

// framesPool holds the frame slices upstream batches are decoded into:
// receiveFrames keeps none of them (payloads are their own), so a read
// allocates only what it keeps.
var framesPool = sync.Pool{New: func() any { return new([]transport.Frame) }}

// putFrames clears a slice from framesPool, so that it holds no payload,
// and returns it unless a rare large batch grew it.
func putFrames(fp *[]transport.Frame) {
	if cap(*fp) > 64 {
		return
	}
	clear((*fp)[:cap(*fp)])
	*fp = (*fp)[:0]
	framesPool.Put(fp)
}

// ReceiveBinary implements transport.Attachment. Binary messages the
// client did not agree to fail as they always did: the session closes
// with 1002 and the attachment ends. The payload is copied: the adapter
// reuses msg.
func (a *attachment) ReceiveBinary(msg []byte) error {
	s := a.s
	s.h.counters.traffic.at(s.stripe, a.tidx).bytesIn.Add(uint64(len(msg)))
	if !s.binary {
		const reason = "binary WebSocket messages were not agreed at negotiate"
		a.Fail(transport.CloseProtocolError, reason)
		return violation(transport.CloseProtocolError, reason)
	}
	var f transport.Frame
	if err := transport.DecodeRaw(msg, &f); err != nil {
		err = violation(transport.CloseProtocolError, "%v", err)
		s.mu.Lock()
		s.failLocked(err)
		s.mu.Unlock()
		return err
	}
	f.Payload = append([]byte{}, f.Payload...)
	return a.receiveFrames([]transport.Frame{f})
}

// receiveFrames applies decoded upstream frames, waiting while the
// inbound buffer is full.
func (a *attachment) receiveFrames(frames []transport.Frame) error {
	s := a.s
	for {
		s.mu.Lock()
		rest, err := s.receiveLocked(frames, a.tidx)
		now := false
		if hasSequenced(frames) {
			a.ackDue = true
			if a.ackAloneLocked() {
				a.holdAck() // as the writer would, without waking it
			} else {
				now = a.wakeNow()
			}
		}
		frames = rest
		if err != nil {
			s.failLocked(err)
			s.mu.Unlock()
			if now {
				a.writeNow()
			}
			return err
		}
		if len(frames) == 0 {
			s.mu.Unlock()
			if now {
				a.writeNow()
			}
			return nil
		}
		if a.rdState == readInline {
			// The reader is Recv's goroutine, which alone makes room: a
			// goroutine waits with the rest, then reads on.
			a.rdState = readBackground
			s.mu.Unlock()
			if now {
				a.writeNow()
			}
			go a.readOn(frames)
			return nil
		}
		space := s.inSpace.Wait()
		s.mu.Unlock()
		if now {
			a.writeNow()
		}
		select {
		case <-space:
		case <-a.doneCh:
			return errFinished
		}
	}
}

// post applies the body of an upstream POST (PROTOCOL.md section 6): a key
// frame holding the session's secret and the client's ack, then a batch.
// It returns the answer's body: our cumulative ack and, if the key frame
// asked, a fresh ticket. Without the secret it returns errBadSecret and
// leaves the session untouched, whatever the rest holds; a violation
// closes the session and is returned as a *protocolError. Messages that
// do not fit the inbound buffer are not acknowledged: the client resends
// them. A session that agreed to replies in POST answers gets them after
// the ack, if the POST names the attachment that delivers, its attempt
// (see appendReplies).
func (s *Session) post(body []byte, attempt uint64) ([]byte, error) {
	first, rest, _ := bytes.Cut(body, []byte{'\n'})
	var key transport.Frame
	if transport.DecodeFrame(first, &key) != nil || key.Type != transport.TypeKey ||
		subtle.ConstantTimeCompare([]byte(key.Token), []byte(s.secret)) != 1 {
		return nil, errBadSecret
	}
	frames, err := decodeBatch(rest)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.h.counters.traffic.at(s.stripe, s.tidx).bytesIn.Add(uint64(len(body)))
	before := s.inSeq
	if err == nil {
		err = s.ackLocked(key.Ack)
	}
	if err == nil {
		_, err = s.receiveLocked(frames, s.tidx)
	}
	if err != nil {
		s.failLocked(err)
		return nil, err
	}
	// The answer's ack covers what the log keeps (failover). A POST that
	// will wait for a reply waits for one meanwhile, so that a reply the
	// log releases comes to it, not to the delivering attachment.
	replies := s.replies && hasSequenced(frames)
	if replies && s.dur != nil {
		s.replyWaiting++
		s.awaitUpKeptLocked(s.inSeq)
		s.replyWaiting--
		if d := s.deliverer; d != nil && s.replyWaiting == 0 && s.out.PendingAfter(d.cursor) &&
			(d.params.Attempt != attempt || s.inSeq == before) {
			d.wake() // no POST takes it: appendReplies below will not
		}
	} else {
		s.awaitUpKeptLocked(s.inSeq)
	}
	if s.everAttached && s.deliverer == nil && s.timer != nil && s.closeErr == nil {
		// A detached client that still POSTs is alive (a long-poll
		// client whose application reads slowly stops polling). One that
		// never attached is not: its first-attach deadline stands.
		s.timer.Reset(s.opts.Grace)
	}
	var b transport.Batch
	b.Append(&transport.Frame{Type: transport.TypeAck, Ack: s.ackSeq()})
	if key.WantTicket {
		b.Append(&transport.Frame{Type: transport.TypeTicket, Token: s.tickets.mint()})
	}
	if replies {
		s.appendReplies(&b, attempt, s.inSeq > before)
	}
	return b.Bytes, nil
}

func hasSequenced(frames []transport.Frame) bool {
	for i := range frames {
		if frames[i].Type.Sequenced() {
			return true
		}
	}
	return false
}

// receiveLocked applies upstream frames in order and returns the first
// violation, counting the messages taken as carried by the transport of
// index t. When the inbound buffer has no room for a message, that
// message and every sequenced frame after it are returned in rest, to be
// resent (POST) or retried once Recv makes room (WebSocket); the control
// frames after it (acks, probes, commits) still apply, so that a full
// buffer never holds up a commit or a probe echo.
func (s *Session) receiveLocked(frames []transport.Frame, t uint8) (rest []transport.Frame, err error) {
	now := clock.Now()
	s.lastSeen = now
	for i := range frames {
		f := &frames[i]
		if rest != nil && f.Type.Sequenced() {
			rest = append(rest, *f)
			continue
		}
		switch f.Type {
		case transport.TypeText, transport.TypeBinary, transport.TypeClose:
			fresh, err := window.Accept(s.inSeq, f.Seq)
			if err != nil {
				return nil, violation(transport.CloseProtocolError, "%v", err)
			}
			if !fresh {
				continue // a resend of something we have
			}
			if s.recvClose {
				return nil, violation(transport.CloseProtocolError, "%s after close", f.Type)
			}
			if f.Topic != "" {
				return nil, violation(transport.CloseProtocolError, "a topic position upstream")
			}
			if f.Type == transport.TypeClose {
				if err := s.peerClosedLocked(f); err != nil {
					return nil, err
				}
				continue
			}
			if len(f.Payload) > s.opts.MaxMessage {
				return nil, violation(transport.CloseMessageTooBig, "message of %d bytes exceeds %d", len(f.Payload), s.opts.MaxMessage)
			}
			if s.closeErr != nil {
				s.inSeq++ // closed locally: acknowledge and discard
				s.keepUp(s.inSeq, []byte{upDiscarded})
				continue
			}
			if len(s.in) > 0 && (len(s.in) >= s.opts.InboundMessages || s.inBytes+len(f.Payload) > s.opts.InboundBytes) {
				rest = append(make([]transport.Frame, 0, len(frames)-i), *f)
				continue
			}
			if !s.takeInboundToken(now) {
				s.h.counters.rateLimited.Add(1)
				return nil, violation(transport.CloseRateExceeded, "more than %v messages a second", s.opts.InboundRate)
			}
			typ := transport.Text
			if f.Type == transport.TypeBinary {
				typ = transport.Binary
			}
			s.inSeq++
			s.in = append(s.in, inMessage{typ: typ, seq: s.inSeq, p: f.Payload})
			s.inBytes += len(f.Payload)
			if s.dur != nil {
				s.keepUp(s.inSeq, encodeUp(typ, f.Payload))
			}
			s.inReady.Wake()
			s.h.counters.traffic.at(s.stripe, t).msgsIn.Add(1)
		case transport.TypeAck:
			if err := s.ackLocked(f.Ack); err != nil {
				return nil, err
			}
		case transport.TypeHeartbeat:
		case transport.TypeProbe:
			target := s.deliverer
			if f.Attempt != 0 {
				target = s.attached[f.Attempt]
			}
			if target != nil && len(target.echoes) < maxEchoes {
				target.echoes = append(target.echoes, f.Token)
				target.wake()
			}
		case transport.TypeCommit:
			if a := s.attached[f.Attempt]; a != nil && a != s.deliverer {
				change := s.takeover(a)
				if change != nil {
					// Observers run without the lock.
					go change.report(s)
				}
			}
		default:
			return nil, violation(transport.CloseProtocolError, "unexpected %s frame upstream", f.Type)
		}
	}
	if s.dur != nil && len(s.dur.up) > 0 {
		s.kickLocked()
	}
	return rest, nil
}

// takeInboundToken takes a token of Options.InboundRate's bucket for a
// message arriving at now, and reports whether there was one.
func (s *Session) takeInboundToken(now time.Time) bool {
	rate := s.opts.InboundRate
	if rate <= 0 {
		return true
	}
	if !s.inRefill.IsZero() {
		s.inTokens = min(float64(s.opts.InboundBurst), s.inTokens+now.Sub(s.inRefill).Seconds()*rate)
	}
	s.inRefill = now
	if s.inTokens < 1 {
		return false
	}
	s.inTokens--
	return true
}

// peerClosedLocked accepts the client's close frame f.
func (s *Session) peerClosedLocked(f *transport.Frame) error {
	code := transport.CloseCode(f.Code)
	if !validClientClose(code, s.noStatus) {
		return violation(transport.CloseProtocolError, "invalid close code %d", f.Code)
	}
	s.inSeq++
	if s.dur != nil {
		s.keepUp(s.inSeq, encodeUpClose(code, f.Reason))
	}
	s.recvClose = true
	if s.sentClose != 0 {
		// Both closes exchanged: nothing is left to deliver.
		go s.finish()
		return nil
	}
	if s.closeErr == nil {
		s.closeErr = &transport.CloseError{Code: code, Reason: f.Reason, Remote: true}
	}
	if code == transport.CloseGoingAway {
		// The client has left (a page's unload beacon, PROTOCOL.md section
		// 10) and reads no answer: none is queued, and the session is
		// forgotten now, not after the grace period. The application still
		// receives what came before the close.
		go s.finish()
		return nil
	}
	// The answer echoes the client's code and, once agreed, its reason,
	// as an RFC 6455 server echoes a close; a client that did not ask gets
	// the empty reason it always got, which the first shim reports as the
	// close's reason.
	reason := ""
	if s.noStatus {
		reason = transport.TruncateReason(f.Reason)
	}
	s.closeLocked(code, reason, 0)
	return nil
}

// validClientClose reports whether a client may close with code: not one
// that RFC 6455 section 7.4.1 reserves from frames (1004, 1005, 1006,
// 1015), nor one of 1016–2999, which nobody assigns; 1005 is allowed once
// negotiate agreed to closes without a code.
func validClientClose(code transport.CloseCode, noStatus bool) bool {
	switch {
	case code == transport.CloseNoStatus:
		return noStatus
	case code < 1000, code == 1004, code == 1006, code == 1015, code > 1015 && code < 3000:
		return false
	}
	return true
}

// ackLocked releases the outbound window up to ack.
func (s *Session) ackLocked(ack uint64) error {
	held := s.out.Bytes()
	released, err := s.out.Ack(ack)
	if released {
		s.ackAsked = nil
	}
	s.h.buffered.Add(s.stripe, int64(s.out.Bytes()-held))
	if err != nil {
		return violation(transport.CloseProtocolError, "%v", err)
	}
	if !released {
		return nil
	}
	s.outSpace.Wake()
	if s.sentClose != 0 && ack >= s.sentClose {
		// Our close was delivered: the session is done.
		go s.finish()
	}
	return nil
}
