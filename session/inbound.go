package session

import (
	"errors"
	"fmt"
	"time"

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

// decodeError turns a codec error into the violation it stands for.
func decodeError(err error) error {
	if errors.Is(err, transport.ErrInvalidUTF8) {
		return violation(transport.CloseInvalidPayload, "text message is not valid UTF-8")
	}
	return violation(transport.CloseProtocolError, "%v", err)
}

// failLocked closes the session for a violation.
func (s *Session) failLocked(err error) {
	var pe *protocolError
	if !errors.As(err, &pe) {
		pe = &protocolError{Code: transport.CloseInternalError, Reason: "internal error"}
	}
	s.h.logger.Info("comet: closing session on bad input", "session", shortID(s.id), "code", int(pe.Code), "reason", pe.Reason)
	s.closeLocked(pe.Code, pe.Reason, 0)
}

// Receive implements transport.Attachment: when the inbound buffer is
// full it waits for Recv to make room, and it returns errFinished once the
// attachment has ended.
func (a *attachment) Receive(batch []byte) error {
	s := a.s
	frames, err := transport.DecodeBatch(batch)
	if err != nil {
		err = decodeError(err)
		s.mu.Lock()
		s.failLocked(err)
		s.mu.Unlock()
		return err
	}
	for {
		s.mu.Lock()
		rest, err := s.receiveLocked(frames)
		if hasSequenced(frames) {
			a.ackDue = true
			a.wake()
		}
		frames = rest
		if err != nil {
			s.failLocked(err)
			s.mu.Unlock()
			return err
		}
		if len(frames) == 0 {
			s.mu.Unlock()
			return nil
		}
		space := s.inSpace.wait()
		s.mu.Unlock()
		select {
		case <-space:
		case <-a.doneCh:
			return errFinished
		}
	}
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
// violation. When the inbound buffer has no room for a message, that
// message and every sequenced frame after it are returned in rest, to be
// resent (POST) or retried once Recv makes room (WebSocket); the control
// frames after it (acks, probes, commits) still apply, so that a full
// buffer never holds up a commit or a probe echo.
func (s *Session) receiveLocked(frames []transport.Frame) (rest []transport.Frame, err error) {
	s.lastSeen = time.Now()
	for i := range frames {
		f := &frames[i]
		if rest != nil && f.Type.Sequenced() {
			rest = append(rest, *f)
			continue
		}
		switch f.Type {
		case transport.TypeText, transport.TypeBinary, transport.TypeClose:
			if f.Seq <= s.inSeq {
				continue // a resend of something we have
			}
			if f.Seq > s.inSeq+1 {
				return nil, violation(transport.CloseProtocolError, "sequence gap: %d after %d", f.Seq, s.inSeq)
			}
			if s.recvClose {
				return nil, violation(transport.CloseProtocolError, "%s after close", f.Type)
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
				continue
			}
			if len(s.in) > 0 && (len(s.in) >= s.opts.InboundMessages || s.inBytes+len(f.Payload) > s.opts.InboundBytes) {
				rest = append(make([]transport.Frame, 0, len(frames)-i), *f)
				continue
			}
			typ := transport.Text
			if f.Type == transport.TypeBinary {
				typ = transport.Binary
			}
			s.in = append(s.in, inMessage{typ: typ, p: f.Payload})
			s.inBytes += len(f.Payload)
			s.inSeq++
			s.inReady.wake()
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
	return rest, nil
}

// peerClosedLocked accepts the client's close frame f.
func (s *Session) peerClosedLocked(f *transport.Frame) error {
	code := transport.CloseCode(f.Code)
	if code < 1000 || code == 1004 || code == 1005 || code == 1006 || code == 1015 || (code > 1015 && code < 3000) {
		return violation(transport.CloseProtocolError, "invalid close code %d", f.Code)
	}
	s.inSeq++
	s.recvClose = true
	if s.sentClose != 0 {
		// Both closes exchanged: nothing is left to deliver.
		go s.finish()
		return nil
	}
	if s.closeErr == nil {
		s.closeErr = &transport.CloseError{Code: code, Reason: f.Reason, Remote: true}
	}
	s.closeLocked(code, "", 0)
	return nil
}

// ackLocked releases the outbound window up to ack.
func (s *Session) ackLocked(ack uint64) error {
	if ack <= s.outAcked {
		return nil
	}
	if ack >= s.outNext {
		return violation(transport.CloseProtocolError, "ack %d of a message never sent (last %d)", ack, s.outNext-1)
	}
	drop := int(ack - s.outAcked)
	for _, e := range s.out[:drop] {
		s.outBytes -= e.size
	}
	n := copy(s.out, s.out[drop:])
	clear(s.out[n:])
	s.out = s.out[:n]
	s.outAcked = ack
	s.outSpace.wake()
	if s.sentClose != 0 && ack >= s.sentClose {
		// Our close was delivered: the session is done.
		go s.finish()
	}
	return nil
}
