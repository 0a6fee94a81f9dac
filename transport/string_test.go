package transport

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// The reference string scanners below are the byte-by-byte versions that
// appendString and decoder.str had before they skipped words; the fast
// versions must agree with them on every input.

func refAppendString[S ~string | ~[]byte](dst []byte, s S) []byte {
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

func (d *decoder) refStr() (s []byte, fresh bool, err error) {
	d.skipSpace()
	if d.pos >= len(d.buf) || d.buf[d.pos] != '"' {
		return nil, false, d.fail("want a string")
	}
	d.pos++
	start := d.pos
	for d.pos < len(d.buf) {
		c := d.buf[d.pos]
		switch {
		case c == '"':
			s = d.buf[start:d.pos]
			d.pos++
			if !utf8.Valid(s) {
				return nil, false, fmt.Errorf("%w in a string at byte %d", ErrInvalidUTF8, start)
			}
			return s, false, nil
		case c == '\\':
			s, err = d.unescape(start)
			return s, true, err
		case c < 0x20:
			return nil, false, d.fail("raw control character in a string")
		}
		d.pos++
	}
	return nil, false, d.fail("unterminated string")
}

// specialPieces are what the string scanners must not skip over, each to
// be placed at every position of a plain string.
var specialPieces = []string{
	`"`, `\`, `\n`, `\u0041`, `\ud83d\ude00`, `\ud83d`, `\x`, "\x00", "\n", "\x1f", "\x7f",
	"\x80", "\xc3\xa9", "\xe2\x80\xa8", "\xe2\x80\xa9", "\xf0\x9f\x98\x80", "\xc3", "\xe2\x80",
	"\xff", "\xc0\xaf", "\xed\xa0\x80", " ", "~",
}

// scanInputs returns the strings the differential tests try: every length
// from 0 to 40 with each special piece at every position, then random
// strings mostly of plain bytes.
func scanInputs() []string {
	var in []string
	plain := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = 'a' + byte(i%26)
		}
		return b
	}
	for n := range 41 {
		in = append(in, string(plain(n)))
		for _, piece := range specialPieces {
			for at := 0; at+len(piece) <= n; at++ {
				b := plain(n)
				copy(b[at:], piece)
				in = append(in, string(b))
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := make([]byte, r.IntN(100))
		for i := range b {
			switch r.IntN(40) {
			case 0:
				b[i] = byte(r.IntN(0x20))
			case 1:
				b[i] = byte(0x80 + r.IntN(0x80))
			case 2:
				b[i] = '"'
			case 3:
				b[i] = '\\'
			default:
				b[i] = byte(0x20 + r.IntN(0x60))
			}
		}
		in = append(in, string(b))
	}
	return in
}

// TestHasSpecialByte checks the word test against the bytes it packs: every
// byte value at every position of several words, and random words.
func TestHasSpecialByte(t *testing.T) {
	t.Parallel()
	special := func(w uint64) bool {
		for range 8 {
			if c := byte(w); c < 0x20 || c == '"' || c == '\\' {
				return true
			}
			w >>= 8
		}
		return false
	}
	check := func(w uint64) {
		if got, want := hasSpecialByte(w), special(w); got != want {
			t.Fatalf("hasSpecialByte(%#016x) = %v, want %v", w, got, want)
		}
	}
	for _, fill := range []byte{' ', 'a', '~', 0x7f, 0x80, 0xa2, 0xdc, 0xff, 0x00, '"', '\\', 0x1f} {
		for at := range 8 {
			for c := range 256 {
				w := lowBits * uint64(fill)
				w = w&^(0xff<<(8*at)) | uint64(c)<<(8*at)
				check(w)
			}
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 100000 {
		check(r.Uint64())
	}
}

// TestAppendStringMatchesReference compares appendString, for strings and
// byte slices, to the byte-by-byte reference.
func TestAppendStringMatchesReference(t *testing.T) {
	t.Parallel()
	for _, s := range scanInputs() {
		checkAppendString(t, s)
	}
}

func checkAppendString(t *testing.T, s string) {
	t.Helper()
	want := refAppendString([]byte("x"), s)
	if got := AppendString([]byte("x"), s); !bytes.Equal(got, want) {
		t.Fatalf("AppendString(%q) = %q, want %q", s, got, want)
	}
	if got := appendStringBytes([]byte("x"), []byte(s)); !bytes.Equal(got, want) {
		t.Fatalf("appendStringBytes(%q) = %q, want %q", s, got, want)
	}
}

// TestDecodeStringMatchesReference compares decoder.str to the byte-by-byte
// reference on each input as a string literal, unterminated or followed by
// more bytes, after a varying number of spaces.
func TestDecodeStringMatchesReference(t *testing.T) {
	t.Parallel()
	for _, s := range scanInputs() {
		checkDecodeString(t, s)
	}
}

func checkDecodeString(t *testing.T, s string) {
	t.Helper()
	for _, lit := range []string{`"` + s + `"`, `"` + s, `"` + s + `"]` + s} {
		for _, pad := range []string{"", " ", "   "} {
			in := []byte(pad + lit)
			got, want := decoder{buf: in}, decoder{buf: in}
			gs, gfresh, gerr := got.str()
			ws, wfresh, werr := want.refStr()
			if !bytes.Equal(gs, ws) || (gs == nil) != (ws == nil) || gfresh != wfresh ||
				fmt.Sprint(gerr) != fmt.Sprint(werr) || got.pos != want.pos {
				t.Fatalf("decoding %q: got %q, %v, %v at %d; want %q, %v, %v at %d",
					in, gs, gfresh, gerr, got.pos, ws, wfresh, werr, want.pos)
			}
		}
	}
	// And through DecodeFrame, as a text message's payload.
	var f Frame
	wire := []byte(`["m",1,"` + s + `"]`)
	d := decoder{buf: wire, pos: len(`["m",1,`)}
	ws, _, werr := d.refStr()
	if err := DecodeFrame(wire, &f); werr != nil {
		if fmt.Sprint(err) != fmt.Sprint(werr) {
			t.Fatalf("DecodeFrame(%q): %v, want %v", wire, err, werr)
		}
	} else if d.pos == len(wire)-1 && (err != nil || !bytes.Equal(f.Payload, ws)) {
		t.Fatalf("DecodeFrame(%q) = %q, %v, want %q", wire, f.Payload, err, ws)
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "see you at the station at 6:15 pm", `a"b\c` + "\n\x00\x7f",
		"café 日本 😀 \u2028\u2029", "a\xffb\xe6\x97\xc0\xaf\xed\xa0\x80", strings.Repeat("0123456789", 5)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkAppendString(t, s)
		// The literal decodes back to s, with each invalid byte as U+FFFD.
		enc := AppendString(nil, s)
		d := decoder{buf: enc}
		got, _, err := d.str()
		if err != nil || d.pos != len(enc) || string(got) != string([]rune(s)) {
			t.Fatalf("AppendString(%q) = %q, which decodes to %q, %v at %d", s, enc, got, err, d.pos)
		}
	})
}

func FuzzDecodeString(f *testing.F) {
	for _, s := range []string{"", "see you at the station at 6:15 pm", `a\"b\\c\n\u0041\ud83d\ude00`,
		"café 日本 😀 \u2028", "a\xffb", "ab\x00cd", `\ud83d`, `\x`, strings.Repeat("0123456789", 5)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkDecodeString(t, s)
	})
}
