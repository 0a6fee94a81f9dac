package transport

import (
	"encoding/base64"
	"strconv"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// AppendFrame appends the wire form of f to dst, without the newline that
// terminates it inside a batch.
func AppendFrame(dst []byte, f *Frame) []byte {
	dst = append(dst, '[', '"', byte(f.Type), '"')
	switch f.Type {
	case TypeOpen:
		dst = appendUint(dst, f.Attempt)
		dst = appendUint(dst, f.Ack)
		dst = append(dst, ',')
		dst = AppendString(dst, f.Token)
		dst = appendUint(dst, f.Interval)
	case TypeText, TypeBinary:
		dst = appendUint(dst, f.Seq)
		dst = append(dst, ',')
		dst = AppendPayload(dst, f.Type, f.Payload)
		if f.Topic != "" {
			dst = AppendPosition(dst, f.Topic, f.Epoch, f.Offset)
		}
	case TypeSubscribed:
		dst = appendUint(dst, f.Seq)
		dst = AppendPosition(dst, f.Topic, f.Epoch, f.Offset)
		if f.Recovered {
			dst = append(dst, ",1"...)
		} else {
			dst = append(dst, ",0"...)
		}
	case TypeAck:
		dst = appendUint(dst, f.Ack)
	case TypeProbe:
		dst = appendUint(dst, f.Attempt)
		dst = append(dst, ',')
		dst = AppendString(dst, f.Token)
	case TypeEcho, TypeTicket:
		dst = append(dst, ',')
		dst = AppendString(dst, f.Token)
	case TypeCommit:
		dst = appendUint(dst, f.Attempt)
	case TypeClose:
		dst = appendUint(dst, f.Seq)
		dst = append(dst, ',')
		dst = strconv.AppendInt(dst, int64(f.Code), 10)
		dst = append(dst, ',')
		dst = AppendString(dst, f.Reason)
		dst = appendUint(dst, f.Retry)
	case TypeKey:
		dst = append(dst, ',')
		dst = AppendString(dst, f.Token)
		dst = appendUint(dst, f.Ack)
		if f.WantTicket {
			dst = append(dst, ",1"...)
		} else {
			dst = append(dst, ",0"...)
		}
	}
	return append(dst, ']')
}

// AppendPosition appends a topic position as the fields that follow a
// message's payload: ,"topic","epoch",offset. A topic's fan-out encodes
// it once for every subscriber.
func AppendPosition(dst []byte, topic, epoch string, offset uint64) []byte {
	dst = append(dst, ',')
	dst = AppendString(dst, topic)
	dst = append(dst, ',')
	dst = AppendString(dst, epoch)
	return appendUint(dst, offset)
}

// AppendMessage appends a message frame whose payload was encoded once by
// AppendPayload. It lets a broadcast encode a payload once and frame it per
// session, since only the sequence number differs.
func AppendMessage(dst []byte, t Type, seq uint64, payload []byte) []byte {
	dst = append(dst, '[', '"', byte(t), '"')
	dst = appendUint(dst, seq)
	dst = append(dst, ',')
	dst = append(dst, payload...)
	return append(dst, ']')
}

// AppendPayload appends the JSON string that carries a message payload:
// the escaped text for TypeText, standard padded base64 for TypeBinary.
func AppendPayload(dst []byte, t Type, p []byte) []byte {
	if t == TypeBinary {
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, p)
		return append(dst, '"')
	}
	return appendStringBytes(dst, p)
}

// EncodePayload returns p encoded as AppendPayload does, in a slice of its
// own sized for the common case: base64's exact length for binary, and
// for text its length plus the quotes (text that needs escapes grows the
// slice once). A window holds many of these, so the size matters.
func EncodePayload(t Type, p []byte) []byte {
	n := len(p) + 2
	if t == TypeBinary {
		n = base64.StdEncoding.EncodedLen(len(p)) + 2
	}
	return AppendPayload(make([]byte, 0, n), t, p)
}

// AppendString appends s as a JSON string literal. Control characters,
// U+2028 and U+2029 are escaped so that no line terminator of any
// consumer (SSE, JavaScript, newline-delimited streams) appears raw, and
// invalid UTF-8 becomes U+FFFD. Other non-ASCII text is written as is.
func AppendString(dst []byte, s string) []byte { return appendString(dst, s) }

func appendStringBytes(dst, s []byte) []byte { return appendString(dst, s) }

func appendString[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0
	next := 0 // where the next word starts
	for i := 0; i < len(s); {
		// Skip eight bytes at a time while they are printable ASCII other
		// than '"' and '\\'; a word holding any other byte is read byte by
		// byte, up to where the next word starts.
		if i >= next {
			next = i + 8
			if next <= len(s) {
				if w := load64(s[i:next]); w&highBits == 0 && !hasSpecialByte(w) {
					i = next
					continue
				}
			}
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = appendEscapedByte(dst, c)
			i++
			start = i
			continue
		}
		r, size := decodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\u202`...)
			dst = append(dst, hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// Every byte of a word: its lowest bit and its highest bit.
const (
	lowBits  = 0x0101010101010101
	highBits = 0x8080808080808080
)

// hasSpecialByte reports whether one of the eight bytes of w is '"', '\\'
// or a control character (below 0x20): the bytes at which a JSON string
// ends, escapes start, or the text must be escaped.
func hasSpecialByte(w uint64) bool {
	return hasLess(w, 0x20)|hasLess(w^('"'*lowBits), 1)|hasLess(w^('\\'*lowBits), 1) != 0
}

// hasLess is not zero if and only if a byte of w is less than n, for n at
// most 0x80: subtracting n from every byte sets the high bit of the lowest
// such byte, by its borrow, and &^w drops the bytes whose high bit was set
// already. A byte equal to c is a byte of w^(c*lowBits) less than 1.
func hasLess(w, n uint64) uint64 {
	return (w - n*lowBits) &^ w & highBits
}

// load64 returns the first eight bytes of s as a little-endian word, as
// binary.LittleEndian.Uint64 does, for strings and byte slices alike; the
// compiler makes it one load.
func load64[S ~string | ~[]byte](s S) uint64 {
	_ = s[7] // one bounds check for all eight bytes
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// decodeRune is utf8.DecodeRune for strings and byte slices alike.
func decodeRune[S ~string | ~[]byte](s S) (rune, int) {
	var buf [utf8.UTFMax]byte
	n := copy(buf[:], s[:min(len(s), utf8.UTFMax)])
	return utf8.DecodeRune(buf[:n])
}

func appendEscapedByte(dst []byte, c byte) []byte {
	switch c {
	case '"':
		return append(dst, '\\', '"')
	case '\\':
		return append(dst, '\\', '\\')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	return append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
}

func appendUint(dst []byte, v uint64) []byte {
	dst = append(dst, ',')
	return strconv.AppendUint(dst, v, 10)
}
