// Package window is the flow control both ends of a session share
// (PROTOCOL.md section 6): the retransmit window of messages sent and not
// yet acknowledged, which a cumulative ack releases and a resume sends
// again; the rule for a sequenced frame that arrives; and the check every
// message passes before it enters a window. The server's Session and the
// Go client's Conn each keep a Window of their outbound messages.
//
// A Window is not safe for concurrent use: its owner guards it with its
// own mutex.
package window

import (
	"fmt"
	"sync/atomic"
	"unicode/utf8"

	"github.com/seed-544bbf9f/comet/transport"
)

// Entry is one outbound message or close. A session holds one per
// message it has not seen acknowledged: its fields are ordered so that
// the two one-byte ones share a word (72 bytes on a 64-bit machine, not 80).
type Entry struct {
	// Payload is the message encoded by transport.AppendPayload, or for a
	// Raw entry the binary message's bytes as they are; nil for a close.
	Payload []byte
	// Suffix, if set, follows Payload in the frame: a topic message's
	// position (transport.AppendPosition), encoded once for every
	// subscriber.
	Suffix []byte
	// Size is the message's application bytes, counted against the
	// window's byte limit; 0 for a close.
	Size int
	// Close is the close's code, reason and retry hint, for TypeClose.
	Close *transport.CloseError
	// Type is transport.TypeText, TypeBinary or TypeClose.
	Type transport.Type
	// Raw marks a binary message kept as it is, by a sender whose peer
	// agreed to raw binary WebSocket messages: a WebSocket batch copies
	// it, any other batch base64-encodes it as it appends it.
	Raw bool
}

// Window holds the messages sent and not yet acknowledged, in sequence
// order. Its first entry has sequence number Acked()+1. The zero Window
// is not ready: use New.
type Window struct {
	entries []Entry
	acked   uint64 // the peer's cumulative ack
	next    uint64 // sequence number of the next Push, from 1
	ready   uint64 // the newest entry that may be sent (see PushHeld)
	bytes   int    // sum of the entries' sizes

	maxMessages, maxBytes int
}

// New returns an empty window bounded by maxMessages entries and
// maxBytes application bytes.
func New(maxMessages, maxBytes int) Window {
	return Window{next: 1, maxMessages: maxMessages, maxBytes: maxBytes}
}

// HasRoom reports whether a message of size bytes fits. An empty window
// takes any message, so that one larger than the byte limit (but within
// the peer's maxMessage) is not refused forever.
func (w *Window) HasRoom(size int) bool {
	if len(w.entries) == 0 {
		return true
	}
	return len(w.entries) < w.maxMessages && w.bytes+size <= w.maxBytes
}

// Resume returns a window like New's whose first Push is numbered
// acked+1: that of a session rebuilt from its log, whose client has
// acknowledged the messages up to acked.
func Resume(maxMessages, maxBytes int, acked uint64) Window {
	return Window{acked: acked, next: acked + 1, ready: acked, maxMessages: maxMessages, maxBytes: maxBytes}
}

// Push appends e, whether or not it fits (a close always goes), and
// returns its sequence number. It may be sent at once, unless entries
// pushed by PushHeld before it are still held.
func (w *Window) Push(e Entry) uint64 {
	seq := w.PushHeld(e)
	if w.ready == seq-1 {
		w.ready = seq
	}
	return seq
}

// PushHeld appends e as Push does, but holds it back from AppendTo and
// PendingAfter until Release: a session whose log is kept elsewhere
// sends nothing that the log has not kept.
func (w *Window) PushHeld(e Entry) uint64 {
	seq := w.next
	if cap(w.entries) == 0 {
		w.entries = make([]Entry, 0, firstCap())
	}
	w.entries = append(w.entries, e)
	w.next++
	w.bytes += e.Size
	return seq
}

// firstCaps are the capacities a window's entries start with, in turn.
// Doubling from each, the windows of sessions that take the same messages
// (a broadcast's) grow at different ones: from 1 at the 2nd, 3rd, 5th,
// 9th and 17th message, from 3 at the 4th, 7th and 13th, from 5 at the
// 6th and 11th, from 7 at the 8th and 15th. Started alike, every window
// would copy its entries on the same message, and that message would
// reach its last receiver late by all of their copies.
var firstCaps = [...]int{1, 3, 5, 7}

// firstTurn picks the next of firstCaps.
var firstTurn atomic.Uint32

func firstCap() int { return firstCaps[firstTurn.Add(1)%uint32(len(firstCaps))] }

// Release lets the entries up to seq (at most Last) be sent.
func (w *Window) Release(seq uint64) {
	w.ready = max(w.ready, min(seq, w.Last()))
}

// Ready returns the sequence number of the newest entry that may be sent.
func (w *Window) Ready() uint64 { return w.ready }

// Last returns the sequence number of the newest entry pushed, 0 if none.
func (w *Window) Last() uint64 { return w.next - 1 }

// Acked returns the peer's cumulative ack.
func (w *Window) Acked() uint64 { return w.acked }

// Len returns the number of entries awaiting an ack.
func (w *Window) Len() int { return len(w.entries) }

// Entry returns the entry with sequence number seq, which must be in the
// window: Acked() < seq <= Last().
func (w *Window) Entry(seq uint64) *Entry { return &w.entries[seq-w.acked-1] }

// Ack releases every entry up to n and reports whether any was released.
// An ack of a message never sent is the peer's protocol error.
func (w *Window) Ack(n uint64) (bool, error) {
	if n <= w.acked {
		return false, nil
	}
	if n > w.ready {
		return false, fmt.Errorf("ack %d of a message never sent (last %d)", n, w.ready)
	}
	drop := int(n - w.acked)
	for _, e := range w.entries[:drop] {
		w.bytes -= e.Size
	}
	k := copy(w.entries, w.entries[drop:])
	clear(w.entries[k:])
	w.entries = w.entries[:k]
	w.acked = n
	return true, nil
}

// Drop forgets every entry, as if acknowledged, for a session that will
// deliver nothing more, and returns the bytes they held; their memory goes
// with them. Later Acks up to Last are no-ops.
func (w *Window) Drop() int {
	n := w.bytes
	w.entries, w.bytes = nil, 0
	w.acked, w.ready = w.Last(), w.Last()
	return n
}

// Bytes returns the application bytes the window holds.
func (w *Window) Bytes() int { return w.bytes }

// PendingAfter reports whether an entry after seq awaits sending.
func (w *Window) PendingAfter(seq uint64) bool { return max(seq, w.acked) < w.ready }

// AppendTo encodes the entries after seq onto b while b stays within
// limit bytes, and returns the sequence number of the last one appended
// (seq, or Acked() if later, when none was). The first entry is appended
// whatever its size: the protocol's maxBatch leaves room for the largest
// message, and a window must never stall on one.
func (w *Window) AppendTo(b *transport.Batch, seq uint64, limit int) uint64 {
	seq = max(seq, w.acked)
	first := seq + 1
	for i := int(seq - w.acked); i < int(w.ready-w.acked); i++ {
		next := w.acked + uint64(i) + 1
		frames, size := len(b.Frames), len(b.Bytes)
		if e := &w.entries[i]; e.Type == transport.TypeClose {
			b.Append(&transport.Frame{Type: transport.TypeClose, Seq: next, Code: int(e.Close.Code),
				Reason: e.Close.Reason, Retry: e.Close.Retry})
		} else if e.Raw {
			b.AppendBinary(next, e.Payload)
		} else if e.Suffix != nil {
			b.AppendMessageSuffix(e.Type, next, e.Payload, e.Suffix)
		} else {
			b.AppendMessage(e.Type, next, e.Payload)
		}
		if len(b.Bytes) > limit && next > first {
			b.Frames, b.Bytes = b.Frames[:frames], b.Bytes[:size]
			break
		}
		seq = next
	}
	return seq
}

// Accept applies the sequence rule of PROTOCOL.md section 6 to a
// sequenced frame arriving when last is the highest sequence number
// accepted: seq == last+1 is fresh, seq <= last a resend to skip, and
// anything beyond last+1 a gap, which a correct peer never produces.
func Accept(last, seq uint64) (fresh bool, err error) {
	switch {
	case seq <= last:
		return false, nil
	case seq > last+1:
		return false, fmt.Errorf("sequence gap: %d after %d", seq, last)
	}
	return true, nil
}

// Check validates a message before it enters a window: a Text or Binary
// type, at most maxMessage bytes, and valid UTF-8 if Text. Its errors wrap
// transport's ErrInvalidMessageType, ErrMessageTooBig and ErrInvalidUTF8.
func Check(typ transport.MessageType, p []byte, maxMessage int) error {
	switch {
	case typ != transport.Text && typ != transport.Binary:
		return fmt.Errorf("%w: %d", transport.ErrInvalidMessageType, int(typ))
	case len(p) > maxMessage:
		return fmt.Errorf("%w: %d bytes, limit %d", transport.ErrMessageTooBig, len(p), maxMessage)
	case typ == transport.Text && !utf8.Valid(p):
		return fmt.Errorf("%w: text message", transport.ErrInvalidUTF8)
	}
	return nil
}
