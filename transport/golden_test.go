package transport

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"testing"
)

// goldenFiles hold the wire-format vectors, in the format PROTOCOL.md
// section 12 describes: frames.json, shared with the JavaScript client,
// and topics.json, the frames of topic positions (section 15), which the
// browser shim does not decode yet.
var goldenFiles = []string{"../testdata/frames.json", "../testdata/topics.json"}

type goldenVectors struct {
	Valid   []validVector   `json:"valid"`
	Invalid []invalidVector `json:"invalid"`
}

type validVector struct {
	Name      string                     `json:"name"`
	Wire      hexBytes                   `json:"wire"`
	Frame     map[string]json.RawMessage `json:"frame"`
	Canonical bool                       `json:"canonical"`
}

type invalidVector struct {
	Name  string   `json:"name"`
	Wire  hexBytes `json:"wire"`
	Error string   `json:"error"`
}

// hexBytes is a byte string written as hex in the golden file, so that
// vectors can hold bytes that are not UTF-8.
type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	p, err := hex.DecodeString(s)
	*h = p
	return err
}

// goldenFields lists, per frame type, the fields a vector's frame holds
// besides type: exactly those the type uses.
var goldenFields = map[Type][]string{
	TypeOpen:       {"attempt", "ack", "token", "interval"},
	TypeText:       {"seq", "payload"},
	TypeBinary:     {"seq", "payload"},
	TypeAck:        {"ack"},
	TypeHeartbeat:  {},
	TypeProbe:      {"attempt", "token"},
	TypeEcho:       {"token"},
	TypeCommit:     {"attempt"},
	TypeSuperseded: {},
	TypeClose:      {"seq", "code", "reason", "retry"},
	TypeKey:        {"token", "ack", "wantTicket"},
	TypeTicket:     {"token"},
	TypeSubscribed: {"seq", "topic", "epoch", "offset", "recovered"},
}

// positionFields are the fields a text or binary frame of a topic adds.
var positionFields = []string{"topic", "epoch", "offset"}

func loadGolden(t testing.TB) *goldenVectors {
	t.Helper()
	var all goldenVectors
	for _, name := range goldenFiles {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var g goldenVectors
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&g); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		all.Valid = append(all.Valid, g.Valid...)
		all.Invalid = append(all.Invalid, g.Invalid...)
	}
	return &all
}

// goldenFrame converts a vector's frame object into a Frame, checking that
// it names exactly the fields its type uses.
func goldenFrame(t *testing.T, obj map[string]json.RawMessage) Frame {
	t.Helper()
	var typ string
	if err := json.Unmarshal(obj["type"], &typ); err != nil || len(typ) != 1 {
		t.Fatalf("frame type %s: want a one-letter string", obj["type"])
	}
	f := Frame{Type: Type(typ[0])}
	want, ok := goldenFields[f.Type]
	if !ok {
		t.Fatalf("frame type %q is not a frame type", typ)
	}
	var keys []string
	for k := range obj {
		if k != "type" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if f.Type.IsMessage() && obj["topic"] != nil {
		want = append(slices.Clip(want), positionFields...)
	}
	if w := slices.Sorted(slices.Values(want)); !slices.Equal(keys, w) {
		t.Fatalf("%s frame has fields %q, want %q", f.Type, keys, w)
	}
	field := func(name string, dst any) {
		if err := json.Unmarshal(obj[name], dst); err != nil {
			t.Fatalf("field %s: %v", name, err)
		}
	}
	for _, name := range want {
		switch name {
		case "seq":
			field(name, &f.Seq)
		case "ack":
			field(name, &f.Ack)
		case "attempt":
			field(name, &f.Attempt)
		case "payload":
			var p hexBytes
			field(name, &p)
			f.Payload = p
		case "token":
			field(name, &f.Token)
		case "interval":
			field(name, &f.Interval)
		case "code":
			field(name, &f.Code)
		case "reason":
			field(name, &f.Reason)
		case "retry":
			field(name, &f.Retry)
		case "wantTicket":
			field(name, &f.WantTicket)
		case "topic":
			field(name, &f.Topic)
		case "epoch":
			field(name, &f.Epoch)
		case "offset":
			field(name, &f.Offset)
		case "recovered":
			field(name, &f.Recovered)
		}
	}
	return f
}

// equalFrames compares frames field by field, treating a nil and an empty
// payload alike.
func equalFrames(a, b *Frame) bool {
	return a.Type == b.Type && a.Seq == b.Seq && a.Ack == b.Ack && a.Attempt == b.Attempt &&
		bytes.Equal(a.Payload, b.Payload) && a.Token == b.Token && a.Interval == b.Interval &&
		a.Code == b.Code && a.Reason == b.Reason && a.Retry == b.Retry && a.WantTicket == b.WantTicket &&
		a.Topic == b.Topic && a.Epoch == b.Epoch && a.Offset == b.Offset && a.Recovered == b.Recovered
}

func TestGoldenValid(t *testing.T) {
	t.Parallel()
	g := loadGolden(t)
	covered := map[Type]bool{}
	for _, v := range g.Valid {
		want := goldenFrame(t, v.Frame)
		if v.Canonical {
			covered[want.Type] = true
		}
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			var got Frame
			if err := DecodeFrame(v.Wire, &got); err != nil {
				t.Fatalf("DecodeFrame(%q): %v", v.Wire, err)
			}
			if !equalFrames(&got, &want) {
				t.Fatalf("DecodeFrame(%q)\n got %+v\nwant %+v", v.Wire, got, want)
			}
			enc := AppendFrame(nil, &want)
			if v.Canonical != bytes.Equal(enc, v.Wire) {
				t.Fatalf("canonical=%v but AppendFrame gives %q, wire is %q", v.Canonical, enc, v.Wire)
			}
			// A valid frame is a valid batch of one, with or without its newline.
			for _, batch := range [][]byte{v.Wire, append(slices.Clip(v.Wire), '\n')} {
				frames, err := DecodeBatch(batch)
				if err != nil || len(frames) != 1 || !equalFrames(&frames[0], &want) {
					t.Fatalf("DecodeBatch(%q) = %+v, %v", batch, frames, err)
				}
			}
		})
	}
	for typ := range goldenFields {
		if !covered[typ] {
			t.Errorf("no canonical vector for %s frames", typ)
		}
	}
}

func TestGoldenInvalid(t *testing.T) {
	t.Parallel()
	g := loadGolden(t)
	sentinels := map[string]error{"malformed": ErrMalformed, "invalid_utf8": ErrInvalidUTF8}
	for _, v := range g.Invalid {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			sentinel, ok := sentinels[v.Error]
			if !ok {
				t.Fatalf("error %q is neither malformed nor invalid_utf8", v.Error)
			}
			var f Frame
			err := DecodeFrame(v.Wire, &f)
			if !errors.Is(err, sentinel) {
				t.Fatalf("DecodeFrame(%q) = %v, want %v", v.Wire, err, sentinel)
			}
			// The same line fails a batch. Padding is the one exception: a
			// line of spaces is a frame error on its own but skipped in a
			// batch.
			if isPadding(v.Wire) {
				return
			}
			batch := append([]byte(`["h"]`+"\n"), v.Wire...)
			if _, err := DecodeBatch(batch); !errors.Is(err, sentinel) {
				t.Fatalf("DecodeBatch(%q) = %v, want %v", batch, err, sentinel)
			}
		})
	}
}

func TestGoldenNamesUnique(t *testing.T) {
	t.Parallel()
	g := loadGolden(t)
	seen := map[string]bool{}
	check := func(name string) {
		if seen[name] {
			t.Errorf("vector name %q is used twice", name)
		}
		seen[name] = true
	}
	for _, v := range g.Valid {
		check(v.Name)
	}
	for _, v := range g.Invalid {
		check(v.Name)
	}
}
