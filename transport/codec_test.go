package transport

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", `""`},
		{"ascii", "hello, world", `"hello, world"`},
		{"quote and backslash", `a"b\c`, `"a\"b\\c"`},
		{"short escapes", "\n\r\t", `"\n\r\t"`},
		{"other controls", "\x00\x01\b\f\x1b\x1f", `"\u0000\u0001\u0008\u000c\u001b\u001f"`},
		{"delete stays raw", "\x7f", "\"\x7f\""},
		{"solidus stays raw", "a/b", `"a/b"`},
		{"line and paragraph separators", "a\u2028b\u2029c", `"a\u2028b\u2029c"`},
		{"other non-ascii stays raw", "café 日本 😀 \u0085\u2027\u202a", "\"café 日本 😀 \u0085\u2027\u202a\""},
		{"invalid byte", "a\xffb", `"a\ufffdb"`},
		{"truncated sequence", "\xe6\x97", `"\ufffd\ufffd"`},
		{"overlong encoding", "\xc0\xaf", `"\ufffd\ufffd"`},
		{"encoded surrogate", "\xed\xa0\x80", `"\ufffd\ufffd\ufffd"`},
		{"invalid byte at the end", "日\xe6", `"日\ufffd"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := AppendString([]byte("prefix"), tc.in); string(got) != "prefix"+tc.want {
				t.Errorf("AppendString(%q) = %q, want %q", tc.in, got[len("prefix"):], tc.want)
			}
			if got := AppendPayload(nil, TypeText, []byte(tc.in)); string(got) != tc.want {
				t.Errorf("AppendPayload(text, %q) = %q, want %q", tc.in, got, tc.want)
			}
			if got := EncodePayload(TypeText, []byte(tc.in)); string(got) != tc.want {
				t.Errorf("EncodePayload(text, %q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestAppendPayloadBinary(t *testing.T) {
	t.Parallel()
	every := make([]byte, 256)
	for i := range every {
		every[i] = byte(i)
	}
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"nil", nil, `""`},
		{"empty", []byte{}, `""`},
		{"one byte is padded twice", []byte{0}, `"AA=="`},
		{"two bytes are padded once", []byte{0xff, 0xfe}, `"//4="`},
		{"hello", []byte("hello"), `"aGVsbG8="`},
		{"every byte", every, `"` + base64.StdEncoding.EncodeToString(every) + `"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := AppendPayload([]byte("x"), TypeBinary, tc.in); string(got) != "x"+tc.want {
				t.Errorf("AppendPayload(binary, %x) = %q, want %q", tc.in, got[1:], tc.want)
			}
			if got := EncodePayload(TypeBinary, tc.in); string(got) != tc.want || cap(got) != len(got) {
				t.Errorf("EncodePayload(binary, %x) = %q (cap %d), want %q exactly", tc.in, got, cap(got), tc.want)
			}
		})
	}
}

// TestWorstCaseExpansion checks the bound PROTOCOL.md gives for maxBatch:
// a message of n bytes frames in at most 6n+64 bytes however it is escaped.
func TestWorstCaseExpansion(t *testing.T) {
	t.Parallel()
	pieces := [][]byte{[]byte("\u2028"), []byte("\u2029")}
	for c := range 256 {
		pieces = append(pieces, []byte{byte(c)})
	}
	for _, typ := range []Type{TypeText, TypeBinary} {
		for _, piece := range pieces {
			for _, n := range []int{1, 1000} {
				p := bytes.Repeat(piece, n)
				enc := AppendFrame(nil, &Frame{Type: typ, Seq: maxSafeInteger, Payload: p})
				if len(enc) > 6*len(p)+64 {
					t.Errorf("%s frame of %d×%q is %d bytes", typ, n, piece, len(enc))
				}
			}
		}
	}
}

// TestAppendMessage checks that framing a prepared payload gives the bytes
// AppendFrame gives for the same message.
func TestAppendMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		t    Type
		seq  uint64
		p    string
	}{
		{"text", TypeText, 1, "hello"},
		{"text needing escapes", TypeText, 42, "a\n\"b\"\u2028"},
		{"empty text", TypeText, 7, ""},
		{"binary", TypeBinary, maxSafeInteger, "\x00\xff"},
		{"empty binary", TypeBinary, 3, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			payload := AppendPayload(nil, tc.t, []byte(tc.p))
			got := AppendMessage([]byte("x"), tc.t, tc.seq, payload)
			want := AppendFrame([]byte("x"), &Frame{Type: tc.t, Seq: tc.seq, Payload: []byte(tc.p)})
			if !bytes.Equal(got, want) {
				t.Errorf("AppendMessage = %q, AppendFrame = %q", got, want)
			}
		})
	}
}

func TestBatch(t *testing.T) {
	t.Parallel()
	frames := []Frame{
		{Type: TypeOpen, Attempt: 2, Ack: 5, Token: "tkt", Interval: 25000},
		{Type: TypeText, Seq: 6, Payload: []byte("line\nbreak")},
		{Type: TypeBinary, Seq: 7, Payload: []byte{0, 1, 2}},
		{Type: TypeHeartbeat},
		{Type: TypeClose, Seq: 8, Code: 1000, Reason: "bye", Retry: 0},
	}
	var b Batch // the zero Batch is ready
	if b.Len() != 0 {
		t.Fatalf("zero Batch has %d frames", b.Len())
	}
	fill := func() {
		for i := range frames {
			if f := &frames[i]; f.Type.IsMessage() {
				b.AppendMessage(f.Type, f.Seq, AppendPayload(nil, f.Type, f.Payload))
			} else {
				b.Append(f)
			}
		}
	}
	check := func() {
		t.Helper()
		if b.Len() != len(frames) {
			t.Fatalf("Len() = %d, want %d", b.Len(), len(frames))
		}
		var want []byte
		for i := range frames {
			f := &frames[i]
			enc := AppendFrame(nil, f)
			want = append(append(want, enc...), '\n')
			s := b.Frames[i]
			if s.Type != f.Type || s.Seq != f.Seq {
				t.Errorf("span %d is %s seq %d, want %s seq %d", i, s.Type, s.Seq, f.Type, f.Seq)
			}
			if got := b.Bytes[s.Start:s.End]; !bytes.Equal(got, enc) {
				t.Errorf("span %d covers %q, want %q", i, got, enc)
			}
			if b.Bytes[s.End] != '\n' {
				t.Errorf("span %d is not followed by a newline", i)
			}
		}
		if !bytes.Equal(b.Bytes, want) {
			t.Fatalf("Bytes = %q, want %q", b.Bytes, want)
		}
		decoded, err := DecodeBatch(b.Bytes)
		if err != nil || len(decoded) != len(frames) {
			t.Fatalf("DecodeBatch = %d frames, %v", len(decoded), err)
		}
		for i := range decoded {
			if !equalFrames(&decoded[i], &frames[i]) {
				t.Errorf("frame %d decodes to %+v, want %+v", i, decoded[i], frames[i])
			}
		}
	}
	fill()
	check()

	capBytes, capFrames := cap(b.Bytes), cap(b.Frames)
	b.Reset()
	if b.Len() != 0 || len(b.Bytes) != 0 {
		t.Fatalf("after Reset: %d frames, %d bytes", b.Len(), len(b.Bytes))
	}
	if cap(b.Bytes) != capBytes || cap(b.Frames) != capFrames {
		t.Errorf("Reset dropped memory: cap %d/%d, was %d/%d", cap(b.Bytes), cap(b.Frames), capBytes, capFrames)
	}
	fill()
	check()
}

func TestDecodeBatch(t *testing.T) {
	t.Parallel()
	h := Frame{Type: TypeHeartbeat}
	a := Frame{Type: TypeAck, Ack: 3}
	m := Frame{Type: TypeText, Seq: 1, Payload: []byte("x")}
	tests := []struct {
		name string
		in   string
		want []Frame
		err  error
	}{
		{"empty", "", nil, nil},
		{"only newlines", "\n\n", nil, nil},
		{"one frame", `["h"]` + "\n", []Frame{h}, nil},
		{"missing last newline", `["h"]` + "\n" + `["a",3]`, []Frame{h, a}, nil},
		{"padding lines", "\n   \n" + `["h"]` + "\n \n\n" + `["a",3]` + "\n  ", []Frame{h, a}, nil},
		{"spaces around frames", ` ["h"] ` + "\n" + "\t" + `["m",1,"x"]`, []Frame{h, m}, nil},
		{"escaped newline stays in the text", `["m",1,"a\nb"]`, []Frame{{Type: TypeText, Seq: 1, Payload: []byte("a\nb")}}, nil},
		{"bad frame in the middle", `["h"]` + "\n" + `["x"]` + "\n" + `["a",3]`, nil, ErrMalformed},
		{"bad last frame", `["h"]` + "\n" + `["a",`, nil, ErrMalformed},
		{"invalid text", `["h"]` + "\n" + `["m",1,"\udc00"]`, nil, ErrInvalidUTF8},
		{"tab-only line is not padding", `["h"]` + "\n\t\n", nil, ErrMalformed},
		{"crlf line ends", `["h"]` + "\r\n" + `["a",3]` + "\r\n", nil, ErrMalformed},
		{"two frames on a line", `["h"]["h"]`, nil, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeBatch([]byte(tc.in))
			if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Fatalf("DecodeBatch(%q) error = %v, want %v", tc.in, err, tc.err)
			}
			if err != nil && got != nil {
				t.Errorf("DecodeBatch(%q) returned %d frames with its error", tc.in, len(got))
			}
			if len(got) != len(tc.want) {
				t.Fatalf("DecodeBatch(%q) = %d frames, want %d", tc.in, len(got), len(tc.want))
			}
			for i := range got {
				if !equalFrames(&got[i], &tc.want[i]) {
					t.Errorf("frame %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// TestDecodeFrameDoesNotAlias checks that a decoded frame survives reuse of
// the buffer it was decoded from, as a reader reusing its buffer needs.
func TestDecodeFrameDoesNotAlias(t *testing.T) {
	t.Parallel()
	for _, wire := range []string{`["m",1,"plain"]`, `["m",1,"esc\"aped"]`, `["b",1,"aGk="]`, `["e","tok"]`} {
		buf := []byte(wire)
		var f Frame
		if err := DecodeFrame(buf, &f); err != nil {
			t.Fatal(err)
		}
		want := f
		want.Payload = bytes.Clone(f.Payload)
		for i := range buf {
			buf[i] = 'Z'
		}
		if !equalFrames(&f, &want) {
			t.Errorf("%s: frame changed with its input: %+v", wire, f)
		}
	}
}

// TestDecodeFramePayloadIsCompact checks that a payload does not keep
// memory its escapes left unused: six bytes of \u0041 decode to one.
func TestDecodeFramePayloadIsCompact(t *testing.T) {
	t.Parallel()
	for _, esc := range []string{`\u0041`, `\n`, `\"x`} {
		wire := []byte(`["m",1,"` + strings.Repeat(esc, 1000) + `"]`)
		var f Frame
		if err := DecodeFrame(wire, &f); err != nil {
			t.Fatal(err)
		}
		if cap(f.Payload) > 2*len(f.Payload) {
			t.Errorf("%s: payload of %d bytes holds %d", esc, len(f.Payload), cap(f.Payload))
		}
	}
}

// randomPieces are what randomText is made of: the characters and
// sequences most likely to break an encoder.
var randomPieces = []string{
	"a", "Z", "0", " ", `"`, `\`, "/", "\n", "\r", "\t", "\x00", "\x1f", "\x7f",
	"é", "日本", "😀", "\u2028", "\u2029", "\ufffd", "\u0085", `\u0041`, "[", "]", ",",
}

func randomText(r *rand.Rand) string {
	var sb strings.Builder
	for range r.IntN(12) {
		sb.WriteString(randomPieces[r.IntN(len(randomPieces))])
	}
	return sb.String()
}

func randomUint(r *rand.Rand) uint64 {
	switch r.IntN(4) {
	case 0:
		return 0
	case 1:
		return maxSafeInteger
	}
	return r.Uint64N(maxSafeInteger + 1)
}

func randomFrame(r *rand.Rand) Frame {
	types := []Type{TypeOpen, TypeText, TypeBinary, TypeAck, TypeHeartbeat, TypeProbe, TypeEcho,
		TypeCommit, TypeSuperseded, TypeClose, TypeKey, TypeTicket}
	f := Frame{Type: types[r.IntN(len(types))]}
	seq := max(1, randomUint(r))
	switch f.Type {
	case TypeOpen:
		f.Attempt, f.Ack, f.Token, f.Interval = randomUint(r), randomUint(r), randomText(r), randomUint(r)
	case TypeText:
		f.Seq, f.Payload = seq, []byte(randomText(r))
	case TypeBinary:
		f.Seq, f.Payload = seq, make([]byte, r.IntN(40))
		for i := range f.Payload {
			f.Payload[i] = byte(r.Uint32())
		}
	case TypeAck:
		f.Ack = randomUint(r)
	case TypeProbe:
		f.Attempt, f.Token = randomUint(r), randomText(r)
	case TypeEcho, TypeTicket:
		f.Token = randomText(r)
	case TypeCommit:
		f.Attempt = randomUint(r)
	case TypeClose:
		f.Seq, f.Code, f.Reason, f.Retry = seq, r.IntN(5000), randomText(r), randomUint(r)
	case TypeKey:
		f.Token, f.Ack, f.WantTicket = randomText(r), randomUint(r), r.IntN(2) == 1
	}
	return f
}

// checkOneLine fails if enc holds a raw line terminator of any consumer.
func checkOneLine(t testing.TB, enc []byte) {
	t.Helper()
	if bytes.ContainsAny(enc, "\n\r\u2028\u2029") {
		t.Fatalf("encoding %q holds a raw line terminator", enc)
	}
}

func TestRoundTripRandom(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	var b Batch
	var want []Frame
	for range 5000 {
		f := randomFrame(r)
		enc := AppendFrame(nil, &f)
		checkOneLine(t, enc)
		var got Frame
		if err := DecodeFrame(enc, &got); err != nil {
			t.Fatalf("DecodeFrame(%q) of %+v: %v", enc, f, err)
		}
		if !equalFrames(&got, &f) {
			t.Fatalf("round trip of %+v via %q gives %+v", f, enc, got)
		}
		b.Append(&f)
		want = append(want, f)
	}
	got, err := DecodeBatch(b.Bytes)
	if err != nil || len(got) != len(want) {
		t.Fatalf("DecodeBatch = %d frames, %v; want %d", len(got), err, len(want))
	}
	for i := range got {
		if !equalFrames(&got[i], &want[i]) {
			t.Fatalf("batch frame %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestTypes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		t                  Type
		name               string
		message, sequenced bool
	}{
		{TypeOpen, "open", false, false},
		{TypeText, "text", true, true},
		{TypeBinary, "binary", true, true},
		{TypeAck, "ack", false, false},
		{TypeHeartbeat, "heartbeat", false, false},
		{TypeProbe, "probe", false, false},
		{TypeEcho, "echo", false, false},
		{TypeCommit, "commit", false, false},
		{TypeSuperseded, "superseded", false, false},
		{TypeClose, "close", false, true},
		{TypeKey, "key", false, false},
		{TypeTicket, "ticket", false, false},
		{Type('x'), "unknown", false, false},
	}
	for _, tc := range tests {
		if tc.t.String() != tc.name || tc.t.IsMessage() != tc.message || tc.t.Sequenced() != tc.sequenced {
			t.Errorf("%q: String %q IsMessage %v Sequenced %v, want %q %v %v", byte(tc.t),
				tc.t.String(), tc.t.IsMessage(), tc.t.Sequenced(), tc.name, tc.message, tc.sequenced)
		}
	}
	for _, tc := range []struct {
		m    MessageType
		name string
		t    Type
	}{{Text, "text", TypeText}, {Binary, "binary", TypeBinary}, {0, "invalid", TypeText}} {
		if tc.m.String() != tc.name || tc.m.FrameType() != tc.t {
			t.Errorf("MessageType %d: %q, %s; want %q, %s", tc.m, tc.m.String(), tc.m.FrameType(), tc.name, tc.t)
		}
	}
}

func TestCloseCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code          CloseCode
		terminal, app bool
		str           string
	}{
		{CloseNormal, true, true, "1000 (normal)"},
		{CloseGoingAway, true, false, "1001 (going away)"},
		{CloseProtocolError, true, false, "1002 (protocol error)"},
		{CloseNoStatus, true, false, "1005 (no status)"},
		{CloseInvalidPayload, true, false, "1007 (invalid payload)"},
		{ClosePolicyViolation, true, false, "1008 (policy violation)"},
		{CloseMessageTooBig, true, false, "1009 (message too big)"},
		{CloseInternalError, false, false, "1011 (internal error)"},
		{CloseSessionExpired, false, false, "3000 (session expired)"},
		{CloseServerShutdown, false, false, "3001 (server shutdown)"},
		{CloseSlowConsumer, false, false, "3002 (slow consumer)"},
		{CloseUnauthorized, true, false, "3003 (unauthorized)"},
		{CloseUnreachable, false, false, "3004 (unreachable)"},
		{CloseForbiddenOrigin, true, false, "3005 (forbidden origin)"},
		{CloseOverloaded, false, false, "3006 (overloaded)"},
		{1003, true, false, "1003"},
		{3999, true, false, "3999"},
		{4000, false, true, "4000"},
		{4999, false, true, "4999"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(int(tc.code)), func(t *testing.T) {
			t.Parallel()
			if got := tc.code.Terminal(); got != tc.terminal {
				t.Errorf("Terminal() = %v, want %v", got, tc.terminal)
			}
			if got := tc.code.ValidForApplication(); got != tc.app {
				t.Errorf("ValidForApplication() = %v, want %v", got, tc.app)
			}
			if got := tc.code.String(); got != tc.str {
				t.Errorf("String() = %q, want %q", got, tc.str)
			}
		})
	}
}

func TestCloseStatus(t *testing.T) {
	t.Parallel()
	ce := &CloseError{Code: CloseServerShutdown, Reason: "restart", Retry: 1500, Remote: true}
	tests := []struct {
		name string
		err  error
		want CloseCode
	}{
		{"nil", nil, -1},
		{"other error", errors.New("boom"), -1},
		{"close error", ce, CloseServerShutdown},
		{"wrapped", fmt.Errorf("send: %w", ce), CloseServerShutdown},
		{"wrapped twice", fmt.Errorf("a: %w", fmt.Errorf("b: %w", ce)), CloseServerShutdown},
		{"joined", errors.Join(errors.New("boom"), &CloseError{Code: 4001}), 4001},
		{"formatted without %w", fmt.Errorf("send: %v", ce), -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := CloseStatus(tc.err); got != tc.want {
				t.Errorf("CloseStatus(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
}

func TestCloseErrorMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  CloseError
		want string
	}{
		{CloseError{Code: CloseNormal}, "comet: session closed locally: 1000 (normal)"},
		{CloseError{Code: 4001, Reason: "kicked", Remote: true}, "comet: session closed by peer: 4001: kicked"},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

func TestTruncateReason(t *testing.T) {
	t.Parallel()
	a := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"short", "bye", "bye"},
		{"exactly the limit", a(123), a(123)},
		{"one byte over", a(124), a(123)},
		{"two-byte rune ends at the limit", a(121) + "é", a(121) + "é"},
		{"two-byte rune straddles the limit", a(122) + "é", a(122)},
		{"three-byte rune straddles the limit", a(121) + "日本", a(121)},
		{"four-byte rune straddles the limit", a(120) + "😀x", a(120)},
		{"four-byte rune ends at the limit", a(119) + "😀x", a(119) + "😀"},
		{"all multi-byte", strings.Repeat("日", 50), strings.Repeat("日", 41)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := TruncateReason(tc.in); got != tc.want {
				t.Errorf("TruncateReason = %q (%d bytes), want %d bytes", got, len(got), len(tc.want))
			}
		})
	}
	// Whatever the input, a truncated reason is a valid UTF-8 prefix that
	// fits the limit.
	for _, in := range []string{a(122) + "\xff" + a(10), "\xff" + a(200), a(50) + "\xe6\x97" + a(100)} {
		got := TruncateReason(in)
		if len(got) > MaxReasonBytes || !utf8.ValidString(got) || !strings.HasPrefix(in, got) {
			t.Errorf("TruncateReason(%q) = %q", in, got)
		}
	}
}

func TestAttachParamsRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    AttachParams
	}{
		{"minimal", AttachParams{Session: "sid", Ticket: "tkt"}},
		{"deliver", AttachParams{Session: "sid", Ticket: "tkt", Attempt: 3, Ack: 17, Deliver: true}},
		{"all", AttachParams{Session: "6f1c0a7e", Ticket: "Yz8w+/=", Attempt: maxSafeInteger,
			Ack: maxSafeInteger, Deliver: true, Heartbeat: 1000, Reason: "ws_silent"}},
		{"longest reason", AttachParams{Session: "s", Ticket: "t", Reason: strings.Repeat("r", 64)}},
		{"characters needing escapes", AttachParams{Session: "a&b=c", Ticket: "?# %", Reason: "é/\n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q := url.Values{}
			tc.p.Encode(q)
			if v := q.Get("v"); v != "1" {
				t.Errorf("v = %q, want 1", v)
			}
			// Through a URL and back, as a request carries it.
			q, err := url.ParseQuery(q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseAttach(q)
			if err != nil {
				t.Fatalf("ParseAttach(%s): %v", q.Encode(), err)
			}
			if got != tc.p {
				t.Errorf("ParseAttach(%s) = %+v, want %+v", q.Encode(), got, tc.p)
			}
		})
	}
}

func TestParseAttach(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, query string
		want        AttachParams // checked when the query is accepted
		ok          bool
	}{
		{"defaults", "s=S&t=T&a=0", AttachParams{Session: "S", Ticket: "T"}, true},
		{"d=0 probes", "s=S&t=T&a=1&d=0", AttachParams{Session: "S", Ticket: "T", Attempt: 1}, true},
		{"d=1 delivers", "s=S&t=T&a=1&d=1", AttachParams{Session: "S", Ticket: "T", Attempt: 1, Deliver: true}, true},
		{"extra parameters are ignored", "v=1&z=abc&s=S&t=T&a=2&ack=5&hb=900&why=ws_hung",
			AttachParams{Session: "S", Ticket: "T", Attempt: 2, Ack: 5, Heartbeat: 900, Reason: "ws_hung"}, true},
		{"missing s", "t=T&a=1", AttachParams{}, false},
		{"empty s", "s=&t=T&a=1", AttachParams{}, false},
		{"missing t", "s=S&a=1", AttachParams{}, false},
		{"missing a", "s=S&t=T", AttachParams{}, false},
		{"why too long", "s=S&t=T&a=1&why=" + strings.Repeat("x", 65), AttachParams{}, false},
		{"a not a number", "s=S&t=T&a=x", AttachParams{}, false},
		{"a negative", "s=S&t=T&a=-1", AttachParams{}, false},
		{"a above 2^53-1", "s=S&t=T&a=9007199254740992", AttachParams{}, false},
		{"ack not a number", "s=S&t=T&a=1&ack=1.5", AttachParams{}, false},
		{"ack overflows uint64", "s=S&t=T&a=1&ack=18446744073709551616", AttachParams{}, false},
		{"hb not a number", "s=S&t=T&a=1&hb=1e3", AttachParams{}, false},
		{"d=2", "s=S&t=T&a=1&d=2", AttachParams{}, false},
		{"d=true", "s=S&t=T&a=1&d=true", AttachParams{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseAttach(q)
			if !tc.ok {
				if !errors.Is(err, errBadParams) {
					t.Fatalf("ParseAttach(%s) = %+v, %v; want errBadParams", tc.query, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseAttach(%s) = %+v, %v; want %+v", tc.query, got, err, tc.want)
			}
		})
	}
}

// negotiateBody is the example response of PROTOCOL.md, "Negotiation".
const negotiateBody = `{
  "v": 1,
  "sid": "6f1c0a7e-8a0b-4a51-9c1b-3c6f1f1c2b7d",
  "secret": "q3VfE8m0Qx2wJb1kR9sT4A",
  "tickets": ["Yz8w...", "Lk2p..."],
  "transports": ["websocket", "sse", "streaming", "longpoll"],
  "heartbeat": 25000, "minHeartbeat": 1000, "hold": 25000, "grace": 30000,
  "ackDelay": 200, "minTimeout": 300, "maxTimeout": 10000,
  "maxMessage": 65536, "maxBatch": 1048576,
  "windowMessages": 1024, "windowBytes": 1048576
}`

func TestParseNegotiateResponse(t *testing.T) {
	t.Parallel()
	r, err := ParseNegotiateResponse([]byte(negotiateBody))
	if err != nil {
		t.Fatal(err)
	}
	want := NegotiateResponse{
		Version: 1, SessionID: "6f1c0a7e-8a0b-4a51-9c1b-3c6f1f1c2b7d", Secret: "q3VfE8m0Qx2wJb1kR9sT4A",
		Tickets: []string{"Yz8w...", "Lk2p..."}, Transports: Order(),
		Heartbeat: 25000, MinHeartbeat: 1000, Hold: 25000, Grace: 30000,
		AckDelay: 200, MinTimeout: 300, MaxTimeout: 10000, MaxMessage: 65536, MaxBatch: 1048576,
		WindowMessages: 1024, WindowBytes: 1048576,
	}
	if !reflect.DeepEqual(*r, want) {
		t.Errorf("ParseNegotiateResponse =\n%+v\nwant\n%+v", *r, want)
	}
}

func TestParseNegotiateRedirect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		ok         bool
	}{
		{"https", `{"url":"https://eu.example.com/comet","token":"abc"}`, true},
		{"http without token", `{"url":"http://127.0.0.1:8080/comet"}`, true},
		{"redirect needs no session", `{"v":2,"url":"https://example.com/comet"}`, true},
		{"relative", `{"url":"/comet","token":"abc"}`, false},
		{"other scheme", `{"url":"ftp://example.com/comet"}`, false},
		{"javascript scheme", `{"url":"javascript:alert(1)"}`, false},
		{"no host", `{"url":"https:///comet"}`, false},
		{"unparsable", `{"url":"http://[::1"}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := ParseNegotiateResponse([]byte(tc.body))
			if !tc.ok {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("ParseNegotiateResponse(%s) = %+v, %v; want ErrMalformed", tc.body, r, err)
				}
				return
			}
			if err != nil || r.URL == "" {
				t.Fatalf("ParseNegotiateResponse(%s) = %+v, %v", tc.body, r, err)
			}
		})
	}
}

// TestParseNegotiateLazyAcks: granted lazy acks are read whole.
func TestParseNegotiateLazyAcks(t *testing.T) {
	t.Parallel()
	body := strings.Replace(negotiateBody, `"windowBytes": 1048576`,
		`"windowBytes": 1048576, "lazyAcks": {"delay": 5000, "messages": 64, "bytes": 65536}`, 1)
	r, err := ParseNegotiateResponse([]byte(body))
	if err != nil || r.LazyAcks == nil || *r.LazyAcks != (LazyAcks{Delay: 5000, Messages: 64, Bytes: 65536}) {
		t.Fatalf("ParseNegotiateResponse = %+v, %v", r, err)
	}
}

func TestParseNegotiateRejects(t *testing.T) {
	t.Parallel()
	// Each case edits the valid example by replacing one substring.
	tests := []struct{ name, old, new string }{
		{"version 2", `"v": 1`, `"v": 2`},
		{"version missing", `"v": 1,`, ``},
		{"version as string", `"v": 1`, `"v": "1"`},
		{"sid missing", `"sid": "6f1c0a7e-8a0b-4a51-9c1b-3c6f1f1c2b7d",`, ``},
		{"secret empty", `"secret": "q3VfE8m0Qx2wJb1kR9sT4A"`, `"secret": ""`},
		{"no tickets", `["Yz8w...", "Lk2p..."]`, `[]`},
		{"no transports", `["websocket", "sse", "streaming", "longpoll"]`, `[]`},
		{"heartbeat zero", `"heartbeat": 25000`, `"heartbeat": 0`},
		{"hold negative", `"hold": 25000`, `"hold": -1`},
		{"grace missing", `"grace": 30000,`, ``},
		{"maxMessage zero", `"maxMessage": 65536`, `"maxMessage": 0`},
		{"maxBatch zero", `"maxBatch": 1048576`, `"maxBatch": 0`},
		{"windowMessages zero", `"windowMessages": 1024`, `"windowMessages": 0`},
		{"windowBytes zero", `"windowBytes": 1048576`, `"windowBytes": 0`},
		{"heartbeat a float", `"heartbeat": 25000`, `"heartbeat": 2.5`},
		{"not an object", negotiateBody, `[1]`},
		{"not json", negotiateBody, `<html>502 Bad Gateway</html>`},
		{"empty", negotiateBody, ``},
		{"null", negotiateBody, `null`},
		{"truncated", `"windowBytes": 1048576` + "\n}", `"windowBytes": 10`},
		{"lazy acks without a delay", `"windowBytes": 1048576`, `"windowBytes": 1048576, "lazyAcks": {"messages": 64, "bytes": 65536}`},
		{"lazy acks with no threshold", `"windowBytes": 1048576`, `"windowBytes": 1048576, "lazyAcks": {"delay": 5000, "messages": 0, "bytes": 65536}`},
		{"lazy acks negative", `"windowBytes": 1048576`, `"windowBytes": 1048576, "lazyAcks": {"delay": 5000, "messages": 64, "bytes": -1}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if !strings.Contains(negotiateBody, tc.old) {
				t.Fatalf("the example holds no %q", tc.old)
			}
			body := strings.Replace(negotiateBody, tc.old, tc.new, 1)
			if r, err := ParseNegotiateResponse([]byte(body)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseNegotiateResponse(%s) = %+v, %v; want ErrMalformed", body, r, err)
			}
		})
	}
}

// TestAppendBatch: frames are appended after dst's, in dst's memory when
// it has room, and an error returns nil.
func TestAppendBatch(t *testing.T) {
	dst := make([]Frame, 1, 8)
	dst[0] = Frame{Type: TypeHeartbeat}
	got, err := AppendBatch(dst, []byte("[\"m\",1,\"a\"]\n[\"a\",3]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Type != TypeHeartbeat || got[1].Type != TypeText || string(got[1].Payload) != "a" || got[2].Ack != 3 {
		t.Fatalf("AppendBatch = %+v", got)
	}
	if &got[0] != &dst[0] {
		t.Fatal("AppendBatch did not use dst's memory")
	}
	if got, err := AppendBatch(dst, []byte("[\"m\",1,\n")); err == nil || got != nil {
		t.Fatalf("a malformed batch: %v, %v; want nil and an error", got, err)
	}
}
