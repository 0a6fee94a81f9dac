package session

import (
	"reflect"
	"testing"

	"github.com/seed-544bbf9f/comet/transport"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	var b transport.Batch
	b.Append(&transport.Frame{Type: transport.TypeHeartbeat})
	b.AppendMessage(transport.TypeText, 7, []byte(`"hi"`))
	for _, e := range []*envelope{
		{kind: kindReply, from: "n1", rpc: 1 << 40, num: 404, data: []byte(`{"code":"session_not_found"}`)},
		{kind: kindOpen, from: "node-2", rpc: 3, link: 9, a: "n1.6f1c", b: "sse", data: []byte("v=1&s=x")},
		{kind: kindBatch, from: "n3", rpc: 4, link: 9, num: 1, data: b.Bytes, spans: b.Frames},
		{kind: kindEndDown, from: "n1", link: 1<<64 - 1, a: "why"},
	} {
		got, err := decodeEnvelope(string(e.encode(nil)))
		if err != nil {
			t.Fatalf("%+v: %v", e, err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Errorf("round trip of %+v gave %+v", e, got)
		}
	}
}

// FuzzDecodeEnvelope feeds the decoder of messages between nodes arbitrary
// bytes: it must never panic, and whatever it accepts must encode back to
// the same bytes, with its spans inside its data.
func FuzzDecodeEnvelope(f *testing.F) {
	var b transport.Batch
	b.AppendMessage(transport.TypeText, 1, []byte(`"x"`))
	f.Add((&envelope{kind: kindBatch, from: "n1", rpc: 2, link: 3, data: b.Bytes, spans: b.Frames}).encode(nil))
	f.Add((&envelope{kind: kindPost, from: "n2", a: "n1.x", data: []byte("body")}).encode(nil))
	f.Add([]byte{kindReply, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{kindBatch, 0, 0, 0, 0, 0, 0, 1, 'x', 1, 2, 1, 0, 5})
	f.Fuzz(func(t *testing.T, msg []byte) {
		e, err := decodeEnvelope(string(msg))
		if err != nil {
			return
		}
		for _, s := range e.spans {
			if s.Start < 0 || s.End < s.Start || s.End > len(e.data) {
				t.Fatalf("span %+v outside %d bytes", s, len(e.data))
			}
		}
		again, err := decodeEnvelope(string(e.encode(nil)))
		if err != nil || !reflect.DeepEqual(again, e) {
			t.Fatalf("re-encoding %+v: %+v, %v", e, again, err)
		}
	})
}
