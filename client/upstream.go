package client

import (
	"fmt"

	"github.com/seed-544bbf9f/comet/transport"
)

// outMsg is one upstream message or close, kept until the server
// acknowledges it.
type outMsg struct {
	typ     transport.Type // TypeText, TypeBinary or TypeClose
	payload []byte         // encoded by transport.AppendPayload; nil for a close
	size    int            // application bytes, counted against the window
	code    transport.CloseCode
	reason  string
}

// outbox is the client's outbound window: every message sent and not yet
// acknowledged, in sequence order, so that any of them can be sent again
// on the next path after a drop or a partial ack. Its first entry has
// sequence number acked+1. It is guarded by the Conn's mutex.
type outbox struct {
	msgs  []outMsg
	acked uint64 // the server's cumulative ack
	next  uint64 // sequence number of the next message, from 1
	bytes int    // sum of msgs' sizes

	maxMessages, maxBytes int // Options.WindowMessages, WindowBytes
}

func newOutbox(maxMessages, maxBytes int) outbox {
	return outbox{next: 1, maxMessages: maxMessages, maxBytes: maxBytes}
}

// hasRoom reports whether a message of size bytes fits the window. An
// empty window takes any message, so that one larger than WindowBytes
// (but within the server's maxMessage) is not refused forever.
func (o *outbox) hasRoom(size int) bool {
	if len(o.msgs) == 0 {
		return true
	}
	return len(o.msgs) < o.maxMessages && o.bytes+size <= o.maxBytes
}

// push appends m and returns its sequence number.
func (o *outbox) push(m outMsg) uint64 {
	seq := o.next
	o.msgs = append(o.msgs, m)
	o.next++
	o.bytes += m.size
	return seq
}

// last returns the sequence number of the newest message, 0 if none yet.
func (o *outbox) last() uint64 { return o.next - 1 }

// ack releases every message up to n and reports whether any was
// released. An ack of a message never sent is a protocol error.
func (o *outbox) ack(n uint64) (bool, error) {
	if n <= o.acked {
		return false, nil
	}
	if n > o.last() {
		return false, fmt.Errorf("ack %d of a message never sent (last %d)", n, o.last())
	}
	drop := int(n - o.acked)
	for _, m := range o.msgs[:drop] {
		o.bytes -= m.size
	}
	k := copy(o.msgs, o.msgs[drop:])
	clear(o.msgs[k:])
	o.msgs = o.msgs[:k]
	o.acked = n
	return true, nil
}

// pendingAfter reports whether a message after seq awaits sending.
func (o *outbox) pendingAfter(seq uint64) bool { return max(seq, o.acked) < o.last() }

// appendTo encodes the messages after seq onto b while b stays within
// maxBatch bytes, and returns the sequence number of the last one it
// appended (seq if none). The first message is appended even if it
// overflows: maxBatch leaves room for the largest message (PROTOCOL.md
// section 3), so that happens only after a key frame, by a few bytes.
func (o *outbox) appendTo(b *transport.Batch, seq uint64, maxBatch int) uint64 {
	seq = max(seq, o.acked)
	first := seq
	for i := int(seq - o.acked); i < len(o.msgs); i++ {
		m := &o.msgs[i]
		if seq > first && len(b.Bytes)+m.encodedLen() > maxBatch {
			break
		}
		next := o.acked + uint64(i) + 1
		if m.typ == transport.TypeClose {
			b.Append(&transport.Frame{Type: transport.TypeClose, Seq: next, Code: int(m.code), Reason: m.reason})
		} else {
			b.AppendMessage(m.typ, next, m.payload)
		}
		seq = next
	}
	return seq
}

// encodedLen bounds the length of m's frame with its newline:
// ["m",seq,payload] with a sequence number of at most 16 digits, or a
// close whose reason escapes to at most 6 bytes a byte.
func (m *outMsg) encodedLen() int {
	if m.typ == transport.TypeClose {
		return 48 + 6*len(m.reason)
	}
	return 24 + len(m.payload)
}
