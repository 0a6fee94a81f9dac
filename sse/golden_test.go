package sse

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/seed-544bbf9f/comet/transport"
)

// goldenFile holds the frame → event vectors shared with the JavaScript
// client; PROTOCOL.md section 12 describes its format.
const goldenFile = "../testdata/sse.json"

type sseVector struct {
	Name  string `json:"name"`
	Frame string `json:"frame"`
	Event string `json:"event"`
}

func loadGolden(t *testing.T) []sseVector {
	t.Helper()
	b, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Vectors []sseVector `json:"vectors"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&g); err != nil {
		t.Fatalf("%s: %v", goldenFile, err)
	}
	if len(g.Vectors) == 0 {
		t.Fatalf("%s holds no vectors", goldenFile)
	}
	return g.Vectors
}

// batchOf frames the wire bytes as the session does: each frame followed by
// a newline, with its span.
func batchOf(t *testing.T, wires ...string) *transport.Batch {
	t.Helper()
	var b transport.Batch
	for _, w := range wires {
		var f transport.Frame
		if err := transport.DecodeFrame([]byte(w), &f); err != nil {
			t.Fatalf("frame %q: %v", w, err)
		}
		// A vector must hold what the server writes: the canonical form.
		if canon := transport.AppendFrame(nil, &f); string(canon) != w {
			t.Fatalf("frame %q is not canonical; the server writes %q", w, canon)
		}
		start := len(b.Bytes)
		b.Bytes = append(b.Bytes, w...)
		b.Frames = append(b.Frames, transport.Span{Type: f.Type, Seq: f.Seq, Start: start, End: len(b.Bytes)})
		b.Bytes = append(b.Bytes, '\n')
	}
	return &b
}

func TestGolden(t *testing.T) {
	vectors := loadGolden(t)
	var wires []string
	var all bytes.Buffer
	for _, v := range vectors {
		t.Run(v.Name, func(t *testing.T) {
			if got := appendEvents(nil, batchOf(t, v.Frame)); string(got) != v.Event {
				t.Errorf("event\n%q\nwant\n%q", got, v.Event)
			}
		})
		wires = append(wires, v.Frame)
		all.WriteString(v.Event)
	}
	// A batch is its frames' events, in order, in one write.
	if got := appendEvents([]byte("kept"), batchOf(t, wires...)); string(got) != "kept"+all.String() {
		t.Errorf("batch of every vector\n%q\nwant\n%q", got, "kept"+all.String())
	}
}

// TestGoldenCoversEveryDownstreamType keeps the vectors complete: every
// frame type a stream carries has one.
func TestGoldenCoversEveryDownstreamType(t *testing.T) {
	seen := map[transport.Type]bool{}
	for _, v := range loadGolden(t) {
		var f transport.Frame
		if err := transport.DecodeFrame([]byte(v.Frame), &f); err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		seen[f.Type] = true
	}
	for _, typ := range []transport.Type{transport.TypeOpen, transport.TypeText, transport.TypeBinary, transport.TypeAck,
		transport.TypeHeartbeat, transport.TypeEcho, transport.TypeSuperseded, transport.TypeClose} {
		if !seen[typ] {
			t.Errorf("no vector for a %s frame", typ)
		}
	}
}
