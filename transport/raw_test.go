package transport

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"testing"
)

// rawGoldenFile holds the vectors of raw binary WebSocket messages,
// shared with the JavaScript client; PROTOCOL.md section 12 describes it.
const rawGoldenFile = "../testdata/raw.json"

type rawVectors struct {
	Valid []struct {
		Name    string   `json:"name"`
		Wire    hexBytes `json:"wire"`
		Seq     uint64   `json:"seq"`
		Payload hexBytes `json:"payload"`
	} `json:"valid"`
	Invalid []invalidVector `json:"invalid"`
}

func loadRawGolden(t testing.TB) *rawVectors {
	t.Helper()
	b, err := os.ReadFile(rawGoldenFile)
	if err != nil {
		t.Fatal(err)
	}
	var g rawVectors
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&g); err != nil {
		t.Fatalf("%s: %v", rawGoldenFile, err)
	}
	return &g
}

func TestRawGolden(t *testing.T) {
	t.Parallel()
	g := loadRawGolden(t)
	if len(g.Valid) == 0 || len(g.Invalid) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range g.Valid {
		t.Run(v.Name, func(t *testing.T) {
			var f Frame
			if err := DecodeRaw(v.Wire, &f); err != nil {
				t.Fatalf("DecodeRaw(%q): %v", v.Wire, err)
			}
			if f.Type != TypeBinary || f.Seq != v.Seq || !bytes.Equal(f.Payload, v.Payload) {
				t.Fatalf("DecodeRaw(%q) = %+v, want seq %d payload %x", v.Wire, f, v.Seq, []byte(v.Payload))
			}
			if enc := append(AppendRawHeader(nil, v.Seq), v.Payload...); !bytes.Equal(enc, v.Wire) {
				t.Fatalf("encoding gives %q, wire is %q", enc, v.Wire)
			}
			// What a raw-capable batch writes for the message, and what
			// any other batch writes: the binary frame, base64.
			b := Batch{Raw: true}
			b.AppendBinary(v.Seq, v.Payload)
			msgs := collectWS(&b)
			if len(msgs) != 1 || !msgs[0].binary || !bytes.Equal(msgs[0].p, v.Wire) {
				t.Fatalf("raw batch writes %v, want one binary message %q", msgs, v.Wire)
			}
			var text Batch
			text.AppendBinary(v.Seq, v.Payload)
			want := append(AppendFrame(nil, &Frame{Type: TypeBinary, Seq: v.Seq, Payload: v.Payload}), '\n')
			if !bytes.Equal(text.Bytes, want) || text.Len() != 1 || text.Frames[0].Raw {
				t.Fatalf("text batch holds %q %+v, want %q", text.Bytes, text.Frames, want)
			}
		})
	}
	for _, v := range g.Invalid {
		t.Run(v.Name, func(t *testing.T) {
			if v.Error != "malformed" {
				t.Fatalf("error %q: raw messages fail only as malformed", v.Error)
			}
			var f Frame
			if err := DecodeRaw(v.Wire, &f); !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeRaw(%q) = %+v, %v; want ErrMalformed", v.Wire, f, err)
			}
		})
	}
}

type wsMessage struct {
	binary bool
	p      []byte
}

func collectWS(b *Batch) []wsMessage {
	var out []wsMessage
	for binary, p := range b.WSMessages() {
		out = append(out, wsMessage{binary, bytes.Clone(p)})
	}
	return out
}

// TestBatchWSMessages checks that a raw-capable batch splits into text
// runs and binary messages in sequence order, and that a batch without
// Raw (or without binary messages) is one text message as before.
func TestBatchWSMessages(t *testing.T) {
	t.Parallel()
	fill := func(b *Batch) {
		b.Append(&Frame{Type: TypeOpen, Attempt: 1, Token: "t", Interval: 25000})
		b.AppendMessage(TypeText, 1, EncodePayload(TypeText, []byte("a")))
		b.AppendBinary(2, []byte{0, '\n', 0xff})
		b.AppendBinary(3, nil)
		b.AppendMessage(TypeText, 4, EncodePayload(TypeText, []byte("b")))
		b.Append(&Frame{Type: TypeAck, Ack: 9})
		b.AppendBinary(5, []byte("z"))
		// A binary message encoded already stays base64, in the text run.
		b.AppendMessage(TypeBinary, 6, EncodePayload(TypeBinary, []byte("y")))
	}
	var plain Batch
	fill(&plain)
	if got := collectWS(&plain); len(got) != 1 || got[0].binary || !bytes.Equal(got[0].p, plain.Bytes) {
		t.Fatalf("a batch without Raw writes %v, want one text message", got)
	}
	raw := Batch{Raw: true}
	fill(&raw)
	want := []wsMessage{
		{false, []byte(`["o",1,0,"t",25000]` + "\n" + `["m",1,"a"]` + "\n")},
		{true, []byte("[\"r\",2]\n\x00\n\xff")},
		{true, []byte("[\"r\",3]\n")},
		{false, []byte(`["m",4,"b"]` + "\n" + `["a",9]` + "\n")},
		{true, []byte("[\"r\",5]\nz")},
		{false, []byte(`["b",6,"eQ=="]` + "\n")},
	}
	got := collectWS(&raw)
	if len(got) != len(want) {
		t.Fatalf("got %d messages %v, want %v", len(got), got, want)
	}
	for i := range want {
		if got[i].binary != want[i].binary || !bytes.Equal(got[i].p, want[i].p) {
			t.Fatalf("message %d = %v %q, want %v %q", i, got[i].binary, got[i].p, want[i].binary, want[i].p)
		}
	}
	// Each text run is a batch that decodes.
	for _, m := range got {
		if !m.binary {
			if _, err := DecodeBatch(m.p); err != nil {
				t.Fatalf("text run %q: %v", m.p, err)
			}
		}
	}
	raw.Reset()
	if !raw.Raw || raw.Len() != 0 {
		t.Fatal("Reset must empty the batch and keep Raw")
	}
}

// FuzzDecodeRaw checks that the raw header parser never panics, fails
// only with ErrMalformed, and accepts exactly what it would write.
func FuzzDecodeRaw(f *testing.F) {
	g := loadRawGolden(f)
	for _, v := range g.Valid {
		f.Add([]byte(v.Wire))
	}
	for _, v := range g.Invalid {
		f.Add([]byte(v.Wire))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var fr Frame
		err := DecodeRaw(in, &fr)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeRaw(%q): %v is not ErrMalformed", in, err)
			}
			return
		}
		if fr.Type != TypeBinary || fr.Seq == 0 || fr.Seq > maxSafeInteger {
			t.Fatalf("DecodeRaw(%q) = %+v", in, fr)
		}
		if enc := append(AppendRawHeader(nil, fr.Seq), fr.Payload...); !bytes.Equal(enc, in) {
			t.Fatalf("DecodeRaw(%q) = %+v, which encodes to %q", in, fr, enc)
		}
	})
}

func (m wsMessage) String() string {
	if m.binary {
		return "binary " + strconv.Quote(string(m.p))
	}
	return "text " + strconv.Quote(string(m.p))
}
