package transport

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"iter"
)

// A raw binary message (PROTOCOL.md section 4) is one binary WebSocket
// message: the ASCII header ["r",seq], a newline, then the payload bytes
// as they are. Peers use it only on WebSocket and only once negotiate has
// agreed on it (NegotiateRequest.Binary, NegotiateResponse.Binary); it
// spares the base64 of a binary frame, a third of its size and the
// encoding at both ends.

// maxRawHeader bounds the header of a raw message: ["r",2^53-1] is 23
// bytes. A longer first line is malformed without reading further.
const maxRawHeader = len(`["r",9007199254740991]`)

// AppendRawHeader appends the header of a raw binary message with
// sequence number seq, newline included; the payload follows it.
func AppendRawHeader(dst []byte, seq uint64) []byte {
	dst = append(dst, `["r"`...)
	dst = appendUint(dst, seq)
	return append(dst, ']', '\n')
}

// DecodeRaw decodes a raw binary message into a binary frame. The header
// has one form, without whitespace: ["r",seq] then "\n". Errors wrap
// ErrMalformed. f.Payload aliases msg: a caller that recycles msg copies
// the payload first.
func DecodeRaw(msg []byte, f *Frame) error {
	*f = Frame{}
	nl := bytes.IndexByte(msg[:min(len(msg), maxRawHeader+1)], '\n')
	if nl < 0 {
		return fmt.Errorf("%w: raw binary message: no header line of at most %d bytes", ErrMalformed, maxRawHeader)
	}
	head := msg[:nl]
	digits, ok := bytes.CutPrefix(head, []byte(`["r",`))
	if ok {
		digits, ok = bytes.CutSuffix(digits, []byte("]"))
	}
	if !ok {
		return fmt.Errorf("%w: raw binary message header %q is not [\"r\",seq]", ErrMalformed, head)
	}
	d := decoder{buf: digits}
	if err := d.uint(&f.Seq)(); err != nil || d.pos != len(digits) {
		return fmt.Errorf("%w: raw binary message header %q: bad sequence number", ErrMalformed, head)
	}
	if f.Seq == 0 {
		return fmt.Errorf("%w: raw binary message header %q: sequence numbers start at 1", ErrMalformed, head)
	}
	f.Type = TypeBinary
	f.Payload = msg[nl+1:]
	return nil
}

// AppendBinary appends a binary message from its bytes as they are: as a
// raw span if b.Raw is set, otherwise as ["b",seq,"base64"], encoded
// into the batch in place. A sender whose peer agreed to raw binary
// messages keeps such messages raw in its window and appends them here,
// so that WebSocket copies them and only another transport encodes them.
func (b *Batch) AppendBinary(seq uint64, p []byte) {
	start := len(b.Bytes)
	if b.Raw {
		b.Bytes = append(AppendRawHeader(b.Bytes, seq), p...)
		b.Frames = append(b.Frames, Span{Type: TypeBinary, Seq: seq, Start: start, End: len(b.Bytes), Raw: true})
		return
	}
	b.Bytes = append(b.Bytes, `["b"`...)
	b.Bytes = appendUint(b.Bytes, seq)
	b.Bytes = append(b.Bytes, ',', '"')
	b.Bytes = base64.StdEncoding.AppendEncode(b.Bytes, p)
	b.Bytes = append(b.Bytes, '"', ']')
	b.end(TypeBinary, seq, start)
}

// RawOnly reports whether b holds frames and every one is a raw span.
func (b *Batch) RawOnly() bool {
	for _, sp := range b.Frames {
		if !sp.Raw {
			return false
		}
	}
	return len(b.Frames) > 0
}

// WSMessages returns the WebSocket messages that carry b, in order: each
// run of frames as one text message (a batch), each raw span as one
// binary message. binary is true for the raw ones. A batch without raw
// spans is one text message, b.Bytes.
func (b *Batch) WSMessages() iter.Seq2[bool, []byte] {
	return func(yield func(bool, []byte) bool) {
		start := -1 // first byte of the text run being gathered
		for _, sp := range b.Frames {
			if !sp.Raw {
				if start < 0 {
					start = sp.Start
				}
				continue
			}
			if start >= 0 {
				if !yield(false, b.Bytes[start:sp.Start]) {
					return
				}
				start = -1
			}
			if !yield(true, b.Bytes[sp.Start:sp.End]) {
				return
			}
		}
		if start >= 0 {
			yield(false, b.Bytes[start:])
		}
	}
}
