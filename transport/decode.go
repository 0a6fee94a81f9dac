package transport

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// Decoding errors. Both are wrapped with detail; test with errors.Is.
var (
	// ErrMalformed reports bytes that are not a frame of this protocol.
	// Sessions close with CloseProtocolError.
	ErrMalformed = errors.New("comet: malformed frame")
	// ErrInvalidUTF8 reports a string that is not valid UTF-8, including an
	// unpaired surrogate escape. Sessions close with CloseInvalidPayload.
	ErrInvalidUTF8 = errors.New("comet: invalid UTF-8")
)

// maxSafeInteger is 2^53-1, the largest integer a JavaScript peer holds
// exactly; larger numbers are refused rather than silently rounded.
const maxSafeInteger = 1<<53 - 1

// DecodeBatch decodes every frame of a batch: frames separated by "\n",
// the last newline optional. Lines that are empty or hold only spaces are
// padding and are skipped.
func DecodeBatch(b []byte) ([]Frame, error) {
	return AppendBatch(nil, b)
}

// AppendBatch is DecodeBatch appending the frames to dst, whose memory a
// reader may keep from one batch to the next; on error it returns nil.
func AppendBatch(dst []Frame, b []byte) ([]Frame, error) {
	frames := dst
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		if isPadding(line) {
			continue
		}
		frames = append(frames, Frame{})
		if err := DecodeFrame(line, &frames[len(frames)-1]); err != nil {
			return nil, err
		}
	}
	return frames, nil
}

func isPadding(line []byte) bool {
	for _, c := range line {
		if c != ' ' {
			return false
		}
	}
	return true
}

// DecodeFrame decodes one frame, without its terminating newline, into f.
// Payload does not alias b.
func DecodeFrame(b []byte, f *Frame) error {
	*f = Frame{}
	d := decoder{buf: b}
	if !d.consume('[') {
		return d.fail("want '['")
	}
	tag, _, err := d.str()
	if err != nil {
		return err
	}
	if len(tag) != 1 {
		return d.fail("want a one-letter type")
	}
	f.Type = Type(tag[0])
	switch f.Type {
	case TypeOpen:
		err = d.fields(d.uint(&f.Attempt), d.uint(&f.Ack), d.text(&f.Token), d.uint(&f.Interval))
	case TypeText:
		err = d.message(f, d.payload(&f.Payload))
	case TypeBinary:
		err = d.message(f, d.base64(&f.Payload))
	case TypeSubscribed:
		var rec uint64
		if err = d.read(d.uint(&f.Seq)); err == nil {
			err = d.position(f)
		}
		if err == nil {
			err = d.fields(d.uint(&rec))
		}
		if err == nil && rec > 1 {
			err = d.fail("recovered must be 0 or 1")
		}
		f.Recovered = rec == 1
	case TypeAck:
		err = d.fields(d.uint(&f.Ack))
	case TypeHeartbeat, TypeSuperseded:
		err = d.fields()
	case TypeProbe:
		err = d.fields(d.uint(&f.Attempt), d.text(&f.Token))
	case TypeEcho, TypeTicket:
		err = d.fields(d.text(&f.Token))
	case TypeCommit:
		err = d.fields(d.uint(&f.Attempt))
	case TypeClose:
		var code uint64
		err = d.fields(d.uint(&f.Seq), d.uint(&code), d.text(&f.Reason), d.uint(&f.Retry))
		if err == nil && code > 4999 {
			err = d.fail("close code out of range")
		}
		f.Code = int(code)
	case TypeKey:
		var want uint64
		err = d.fields(d.text(&f.Token), d.uint(&f.Ack), d.uint(&want))
		if err == nil && want > 1 {
			err = d.fail("wantTicket must be 0 or 1")
		}
		f.WantTicket = want == 1
	default:
		return d.fail(fmt.Sprintf("unknown frame type %q", tag))
	}
	if err != nil {
		return err
	}
	if f.Type.Sequenced() && f.Seq == 0 {
		return d.fail("sequence numbers start at 1")
	}
	return nil
}

// decoder is a cursor over one frame. Its field readers return closures so
// that DecodeFrame reads as the grammar in PROTOCOL.md.
type decoder struct {
	buf []byte
	pos int
}

type field func() error

func (d *decoder) fail(why string) error {
	return fmt.Errorf("%w at byte %d: %s", ErrMalformed, d.pos, why)
}

func (d *decoder) skipSpace() {
	for d.pos < len(d.buf) && (d.buf[d.pos] == ' ' || d.buf[d.pos] == '\t') {
		d.pos++
	}
}

func (d *decoder) consume(c byte) bool {
	d.skipSpace()
	if d.pos < len(d.buf) && d.buf[d.pos] == c {
		d.pos++
		return true
	}
	return false
}

// fields reads ",field" for each reader, then "]" and the end of input.
func (d *decoder) fields(readers ...field) error {
	if err := d.read(readers...); err != nil {
		return err
	}
	return d.end()
}

// read reads ",field" for each reader.
func (d *decoder) read(readers ...field) error {
	for _, read := range readers {
		if !d.consume(',') {
			return d.fail("missing field")
		}
		d.skipSpace()
		if err := read(); err != nil {
			return err
		}
	}
	return nil
}

// end reads "]" and the end of input.
func (d *decoder) end() error {
	if !d.consume(']') {
		return d.fail("want ']'")
	}
	d.skipSpace()
	if d.pos != len(d.buf) {
		return d.fail("trailing bytes")
	}
	return nil
}

// message reads the rest of a text or binary message after its type:
// seq, the payload, and a topic position if one follows.
func (d *decoder) message(f *Frame, payload field) error {
	if err := d.read(d.uint(&f.Seq), payload); err != nil {
		return err
	}
	if d.skipSpace(); d.pos < len(d.buf) && d.buf[d.pos] == ',' {
		if err := d.position(f); err != nil {
			return err
		}
	}
	return d.end()
}

// position reads a topic position: ,"topic","epoch",offset, where topic
// is not empty.
func (d *decoder) position(f *Frame) error {
	if err := d.read(d.text(&f.Topic), d.text(&f.Epoch), d.uint(&f.Offset)); err != nil {
		return err
	}
	if f.Topic == "" {
		return d.fail("empty topic")
	}
	return nil
}

func (d *decoder) uint(dst *uint64) field {
	return func() error {
		start := d.pos
		var v uint64
		for d.pos < len(d.buf) && d.buf[d.pos] >= '0' && d.buf[d.pos] <= '9' {
			v = v*10 + uint64(d.buf[d.pos]-'0')
			d.pos++
			if v > maxSafeInteger {
				return d.fail("integer above 2^53-1")
			}
		}
		switch n := d.pos - start; {
		case n == 0:
			return d.fail("want an unsigned integer")
		case n > 1 && d.buf[start] == '0':
			return d.fail("leading zero")
		}
		*dst = v
		return nil
	}
}

func (d *decoder) text(dst *string) field {
	return func() error {
		s, _, err := d.str()
		*dst = string(s)
		return err
	}
}

func (d *decoder) payload(dst *[]byte) field {
	return func() error {
		s, fresh, err := d.str()
		switch {
		case err != nil:
		case fresh && cap(s)-len(s) <= len(s):
			// Unescaping made a copy already; keep it unless escapes
			// left most of it unused (\u0041 is six bytes for one).
			*dst = s
		default:
			*dst = bytes.Clone(s)
			if *dst == nil {
				*dst = []byte{}
			}
		}
		return err
	}
}

func (d *decoder) base64(dst *[]byte) field {
	return func() error {
		s, _, err := d.str()
		if err != nil {
			return err
		}
		// Go's base64 decoder skips CR and LF, which RFC 4648 section 3.3
		// forbids unless the protocol says otherwise; ours does not.
		if bytes.IndexByte(s, '\n') >= 0 || bytes.IndexByte(s, '\r') >= 0 {
			return d.fail("bad base64: line break")
		}
		p := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
		n, err := base64.StdEncoding.Decode(p, s)
		if err != nil {
			return d.fail("bad base64: " + err.Error())
		}
		*dst = p[:n]
		return nil
	}
}

// str reads a JSON string literal and returns its decoded bytes. Without
// escapes the result aliases the input; otherwise it is a new slice and
// fresh is true.
func (d *decoder) str() (s []byte, fresh bool, err error) {
	d.skipSpace()
	if d.pos >= len(d.buf) || d.buf[d.pos] != '"' {
		return nil, false, d.fail("want a string")
	}
	d.pos++
	start := d.pos
	var seen uint64 // the bytes read, ORed: any high bit set means non-ASCII
	for d.pos < len(d.buf) {
		// Skip eight bytes at a time while none of them is special; any
		// that are not ASCII are checked as UTF-8 at the end.
		if d.pos+8 <= len(d.buf) {
			if w := binary.LittleEndian.Uint64(d.buf[d.pos:]); !hasSpecialByte(w) {
				seen |= w
				d.pos += 8
				continue
			}
		}
		c := d.buf[d.pos]
		switch {
		case c == '"':
			s = d.buf[start:d.pos]
			d.pos++
			if seen&highBits != 0 && !utf8.Valid(s) {
				return nil, false, fmt.Errorf("%w in a string at byte %d", ErrInvalidUTF8, start)
			}
			return s, false, nil
		case c == '\\':
			s, err = d.unescape(start)
			return s, true, err
		case c < 0x20:
			return nil, false, d.fail("raw control character in a string")
		}
		seen |= uint64(c)
		d.pos++
	}
	return nil, false, d.fail("unterminated string")
}

// unescape finishes a string that holds escapes, starting over at start.
func (d *decoder) unescape(start int) ([]byte, error) {
	out := make([]byte, 0, len(d.buf)-start)
	d.pos = start
	for d.pos < len(d.buf) {
		c := d.buf[d.pos]
		switch {
		case c == '"':
			d.pos++
			if !utf8.Valid(out) {
				return nil, fmt.Errorf("%w in a string at byte %d", ErrInvalidUTF8, start)
			}
			return out, nil
		case c < 0x20:
			return nil, d.fail("raw control character in a string")
		case c != '\\':
			out = append(out, c)
			d.pos++
			continue
		}
		d.pos++
		if d.pos >= len(d.buf) {
			break
		}
		e := d.buf[d.pos]
		d.pos++
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, err := d.escapedRune()
			if err != nil {
				return nil, err
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, d.fail("bad escape")
		}
	}
	return nil, d.fail("unterminated string")
}

// escapedRune reads the four hex digits after "\u", and a second escape
// when they form a high surrogate. An unpaired surrogate is invalid text
// (it has no UTF-8 form), not a malformed frame.
func (d *decoder) escapedRune() (rune, error) {
	r, ok := d.hex4()
	if !ok {
		return 0, d.fail(`bad \u escape`)
	}
	if !utf16.IsSurrogate(r) {
		return r, nil
	}
	if r >= 0xDC00 || d.pos+6 > len(d.buf) || d.buf[d.pos] != '\\' || d.buf[d.pos+1] != 'u' {
		return 0, fmt.Errorf("%w: unpaired surrogate at byte %d", ErrInvalidUTF8, d.pos)
	}
	d.pos += 2
	lo, ok := d.hex4()
	if !ok {
		return 0, d.fail(`bad \u escape`)
	}
	pair := utf16.DecodeRune(r, lo)
	if pair == utf8.RuneError {
		return 0, fmt.Errorf("%w: unpaired surrogate at byte %d", ErrInvalidUTF8, d.pos)
	}
	return pair, nil
}

func (d *decoder) hex4() (rune, bool) {
	if d.pos+4 > len(d.buf) {
		return 0, false
	}
	var r rune
	for _, c := range d.buf[d.pos : d.pos+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	d.pos += 4
	return r, true
}
