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
	for i := 0; i < len(s); {
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
