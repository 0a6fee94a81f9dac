package client

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/seed-544bbf9f/comet/internal/clock"
	"github.com/seed-544bbf9f/comet/internal/window"
	"github.com/seed-544bbf9f/comet/transport"
)

// inMsg is a received message waiting for Recv.
type inMsg struct {
	typ   transport.MessageType
	p     []byte
	topic string // the topic the message came from, if any
	// err, instead of a message: a fresh session replaced a lost one
	// (*GapError), or a topic's messages could not be recovered
	// (*TopicGapError).
	err error
}

// inbound is the downstream half of the session: the sequence numbers
// accepted, the acknowledgements owed for them, and the messages waiting
// for Recv. It is guarded by the Conn's mutex.
type inbound struct {
	n     uint64 // highest sequence number accepted
	acked uint64 // highest ack sent to the server

	// Messages accepted since the last ack, and when the first of them
	// arrived: what the ack cadence is decided on.
	count int
	bytes int
	since time.Time
	// ackNow asks for an ack at the next chance whatever the cadence: a
	// heartbeat, a duplicate or a close awaits one.
	ackNow bool

	queue []inMsg
	// ahead holds, in sequence order, frames that arrived before one
	// they follow, in a session whose POST answers carry messages: a
	// reply in a POST's answer and the next message on the poll or the
	// stream travel apart, and either may come first.
	ahead []transport.Frame
	// discard accepts and acknowledges messages without queueing them:
	// the application has closed the session and will not read them.
	discard bool
}

// owe records that a message of size bytes was accepted at now and awaits
// its ack.
func (in *inbound) owe(size int, now time.Time) {
	if in.count == 0 {
		in.since = now
	}
	in.count++
	in.bytes += size
}

// ackPolicy is the ack cadence of PROTOCOL.md section 6, from the server's
// outbound window and ackDelay.
type ackPolicy struct {
	messages, bytes int // half of the server's window
	delay           time.Duration
	lazy            bool // lazy acks were granted: see rides
}

func newAckPolicy(windowMessages, windowBytes int, delay time.Duration) ackPolicy {
	return ackPolicy{messages: max(1, windowMessages/2), bytes: max(1, windowBytes/2), delay: delay}
}

// ackDue decides whether to send an ack now. If not, wait is how long
// until one is due, 0 when none is owed. An ack is due at once when the
// unacknowledged messages reach half of the server's window (in messages or
// bytes), so that the server never stalls on a window the client could
// free; otherwise ackDelay after the first of them; and at once in reply
// to a heartbeat.
func (in *inbound) ackDue(now time.Time, p ackPolicy) (due bool, wait time.Duration) {
	switch {
	case in.ackNow:
		return true, 0
	case in.n <= in.acked:
		return false, 0
	case in.count >= p.messages || in.bytes >= p.bytes:
		return true, 0
	}
	if wait := in.since.Add(p.delay).Sub(now); wait > 0 {
		return false, wait
	}
	return true, 0
}

// rides reports whether an ack owed, not yet due, rides on a batch of
// messages written anyway. An eager client's always does: it costs a few
// bytes. A lazy one's waits for half of a threshold, or of the delay: the
// server reads every ack and releases what it acknowledges, so an ack on
// every message of an exchange costs it what lazy acks save, while what
// it keeps for resending stays below the thresholds either way.
func (in *inbound) rides(now time.Time, p ackPolicy) bool {
	return !p.lazy || 2*in.count >= p.messages || 2*in.bytes >= p.bytes || 2*now.Sub(in.since) >= p.delay
}

// ackSent records that the server was sent ack v, in an ack frame, a key
// frame or an attach's query.
func (in *inbound) ackSent(v uint64) {
	in.acked = max(in.acked, v)
	in.ackNow = false
	if in.acked >= in.n {
		in.count, in.bytes = 0, 0
	}
}

// opened applies the open frame f of a downstream attached with ack: the
// server's ack of upstream messages, a fresh ticket, and our ack, which
// the attach carried.
func (c *Conn) opened(f *transport.Frame, ack uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.out.Ack(f.Ack); err != nil {
		c.failLocked(transport.CloseProtocolError, err.Error())
	}
	c.tickets.add(f.Token, time.Now())
	c.in.ackSent(ack)
	c.wakeLocked()
}

// receive applies the frames of a downstream that follow its open frame,
// and reports whether ["s"] ended the downstream. A violation closes the
// session with its code and ignores the frames after it.
func (c *Conn) receive(frames []transport.Frame) (superseded bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := clock.Now()
	// Messages and acks alone give the writers nothing to do until an ack
	// is due: they are left waiting, and the ack alarm wakes them when it
	// is. Anything else wakes them at once (a violation, through the close
	// it queues).
	quiet := true
	defer func() {
		c.changed.Wake()
		if quiet && !c.in.ackNow {
			c.ackAlarmLocked(now)
		} else {
			c.control.Wake()
		}
	}()
	c.heardLocked(now)
	for i := range frames {
		f := &frames[i]
		if t := f.Type; t != transport.TypeText && t != transport.TypeBinary && t != transport.TypeAck {
			quiet = false
		}
		switch f.Type {
		case transport.TypeText, transport.TypeBinary, transport.TypeClose, transport.TypeSubscribed:
			if c.replies && f.Seq > c.in.n+1 {
				if !c.holdAheadLocked(f) {
					return false
				}
				continue
			}
			if !c.acceptLocked(f, now) {
				return false
			}
			for len(c.in.ahead) > 0 && c.in.ahead[0].Seq <= c.in.n+1 {
				g := c.in.ahead[0]
				c.in.ahead[0] = transport.Frame{}
				c.in.ahead = c.in.ahead[1:]
				if g.Seq <= c.in.n {
					continue // a resend, acknowledged with the frame it repeats
				}
				if !c.acceptLocked(&g, now) {
					return false
				}
			}
		case transport.TypeAck:
			if _, err := c.out.Ack(f.Ack); err != nil {
				c.failLocked(transport.CloseProtocolError, err.Error())
				return false
			}
		case transport.TypeHeartbeat:
			c.in.ackNow = true
		case transport.TypeSuperseded:
			return true
		case transport.TypeEcho:
			// This client sends no probes; an echo is harmless.
		default:
			c.failLocked(transport.CloseProtocolError, fmt.Sprintf("unexpected %s frame downstream", f.Type))
			return false
		}
	}
	return false
}

// ackAlarmLocked wakes the writers now if an ack is due, or sets the ack
// alarm for when one will be, unless it is set for sooner.
func (c *Conn) ackAlarmLocked(now time.Time) {
	due, wait := c.in.ackDue(now, c.lim.ack)
	switch {
	case due:
		c.control.Wake()
	case wait == 0:
	case c.ackAlarm == nil:
		c.ackAlarmAt = now.Add(wait)
		c.ackAlarm = time.AfterFunc(wait, c.ackAlarmRang)
	case c.ackAlarmAt.IsZero() || now.Add(wait).Before(c.ackAlarmAt):
		c.ackAlarmAt = now.Add(wait)
		c.ackAlarm.Reset(wait)
	}
}

// ackAlarmRang wakes the writers, for an ack that may have fallen due.
func (c *Conn) ackAlarmRang() {
	c.mu.Lock()
	c.ackAlarmAt = time.Time{}
	c.control.Wake()
	c.mu.Unlock()
}

// acceptLocked applies the sequenced frame f, received at now, by the
// sequence rules of PROTOCOL.md section 6, and reports whether the
// session goes on: a violation closes it.
func (c *Conn) acceptLocked(f *transport.Frame, now time.Time) bool {
	fresh, err := window.Accept(c.in.n, f.Seq)
	if err != nil {
		c.failLocked(transport.CloseProtocolError, err.Error())
		return false
	}
	if !fresh {
		c.in.ackNow = true // a resend: the server may have missed our ack
		return true
	}
	c.in.n = f.Seq
	if c.remoteClosed {
		c.failLocked(transport.CloseProtocolError, fmt.Sprintf("%s after close", f.Type))
		return false
	}
	if f.Type == transport.TypeClose {
		c.peerClosedLocked(f)
		return true
	}
	if f.Type == transport.TypeSubscribed {
		c.subscribedLocked(f)
		return true
	}
	if len(f.Payload) > c.lim.maxMessage {
		c.failLocked(transport.CloseMessageTooBig,
			fmt.Sprintf("message of %d bytes exceeds %d", len(f.Payload), c.lim.maxMessage))
		return false
	}
	c.in.owe(len(f.Payload), now)
	if !c.in.discard {
		typ := transport.Text
		if f.Type == transport.TypeBinary {
			typ = transport.Binary
		}
		c.in.queue = append(c.in.queue, inMsg{typ: typ, p: f.Payload, topic: f.Topic})
	}
	if f.Topic != "" {
		c.positions[f.Topic] = transport.TopicPosition{Epoch: f.Epoch, Offset: f.Offset}
	}
	return true
}

// holdAheadLocked keeps f, which follows a frame not yet received, until
// that frame comes, by the other path or a resend, and reports whether
// the session goes on. The server's window bounds what can be ahead: a
// frame beyond it is a gap no path will fill, a protocol error.
func (c *Conn) holdAheadLocked(f *transport.Frame) bool {
	if f.Seq > c.in.n+uint64(c.lim.windowMessages)+1 {
		c.failLocked(transport.CloseProtocolError, fmt.Sprintf("sequence gap: %d after %d", f.Seq, c.in.n))
		return false
	}
	i, found := slices.BinarySearchFunc(c.in.ahead, f.Seq, func(g transport.Frame, seq uint64) int {
		return cmp.Compare(g.Seq, seq)
	})
	if !found {
		c.in.ahead = slices.Insert(c.in.ahead, i, *f)
	}
	return true
}

// fail closes the session for the server's protocol violation.
func (c *Conn) fail(code transport.CloseCode, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failLocked(code, reason)
}

// failDecode closes the session for a downstream that does not decode.
func (c *Conn) failDecode(err error) {
	code := transport.CloseProtocolError
	if errors.Is(err, transport.ErrInvalidUTF8) {
		code = transport.CloseInvalidPayload
	}
	c.mu.Lock()
	c.failLocked(code, err.Error())
	c.mu.Unlock()
}

// roomLocked reports whether the application has made room for more
// messages; the transports stop reading or polling until it has, so
// nothing is ever dropped and the server's window pushes back.
func (c *Conn) roomLocked() bool {
	return len(c.in.queue) < c.opts.ReceiveBuffer || c.in.discard
}
