package session

import (
	"reflect"
	"testing"

	"github.com/seed-544bbf9f/comet/internal/window"
	"github.com/seed-544bbf9f/comet/transport"
)

func TestEntryRoundTrip(t *testing.T) {
	for _, e := range []window.Entry{
		{Type: transport.TypeText, Payload: transport.AppendPayload(nil, transport.TypeText, []byte("hi")), Size: 2},
		{Type: transport.TypeBinary, Payload: []byte{0, 1, 2, 255}, Raw: true, Size: 4},
		{Type: transport.TypeText, Payload: []byte(`"t"`), Suffix: []byte(`,"e",7`), Size: 1},
		{Type: transport.TypeText, Payload: []byte{}, Suffix: []byte{}, Size: 0},
		{Type: transport.TypeClose, Close: &transport.CloseError{Code: 4001, Reason: "bye ü", Retry: 1500}},
	} {
		got, err := decodeEntry(encodeEntry(&e))
		if err != nil {
			t.Fatalf("%+v: %v", e, err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Errorf("round trip of %+v gave %+v", e, got)
		}
	}
}

// FuzzDecodeEntry feeds the decoder of a session log's downstream entries
// arbitrary bytes, as a store damaged or written by another program
// would hold: it must never panic, and whatever it accepts must encode
// back to the same bytes.
func FuzzDecodeEntry(f *testing.F) {
	f.Add(encodeEntry(&window.Entry{Type: transport.TypeText, Payload: []byte(`"x"`), Size: 1}))
	f.Add(encodeEntry(&window.Entry{Type: transport.TypeBinary, Payload: []byte{9}, Raw: true, Size: 1, Suffix: []byte("s")}))
	f.Add(encodeEntry(&window.Entry{Type: transport.TypeClose, Close: &transport.CloseError{Code: 1000, Reason: "r"}}))
	f.Add([]byte{byte(transport.TypeText), 0, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntry(b)
		if err != nil {
			return
		}
		if again := encodeEntry(&e); string(again) != string(b) {
			t.Fatalf("%q decoded to %+v, which encodes to %q", b, e, again)
		}
	})
}
