package client

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/seed-544bbf9f/comet/transport"
)

// fuzzMax is the line limit of the parsers under fuzzing: small, so that
// the limit is reached often.
const fuzzMax = 512

// feedSplit feeds data to p in pieces of at most step bytes (all of it at
// once if step is 0) and returns what it emitted, the error and whether
// it ended inside a batch.
func feedSplit(p streamParser, data []byte, step int) ([]string, error, bool) {
	if step <= 0 {
		step = len(data) + 1
	}
	var got []string
	emit := func(b []byte) error {
		got = append(got, string(b))
		return nil
	}
	for len(data) > 0 {
		n := min(step, len(data))
		if err := p.feed(data[:n], emit); err != nil {
			return got, err, p.partial()
		}
		data = data[n:]
	}
	return got, nil, p.partial()
}

// checkSplits checks that however the input is cut, the parser emits the
// same, and refuses the same line (as malformed: too long), and returns
// what it emitted.
func checkSplits(t *testing.T, newParser func() streamParser, data []byte, step int) []string {
	whole, wholeErr, wholePartial := feedSplit(newParser(), data, 0)
	for _, s := range []int{1, step} {
		got, err, partial := feedSplit(newParser(), data, s)
		if (err != nil) != (wholeErr != nil) {
			t.Fatalf("step %d: err %v, whole: %v", s, err, wholeErr)
		}
		if err != nil && !errors.Is(err, transport.ErrMalformed) {
			t.Fatalf("step %d: err %v is not ErrMalformed", s, err)
		}
		if !slices.Equal(got, whole) || err == nil && partial != wholePartial {
			t.Fatalf("step %d: %q partial=%v, whole: %q partial=%v", s, got, partial, whole, wholePartial)
		}
	}
	return whole
}

// FuzzSSEParser checks the event-stream parser on any input: it never
// panics, emits the same events however the input is cut, keeps to its
// limit, and hands back, exactly, any frame written as an event.
func FuzzSSEParser(f *testing.F) {
	f.Add([]byte("data: [\"h\"]\n\n"), uint16(3), "hi")
	f.Add([]byte(":"+string(bytes.Repeat([]byte{' '}, 600))+"\nretry: 86400000\n\ndata: x\r\n\r\n"), uint16(7), "")
	f.Add([]byte("\xef\xbb\xbfevent: ping\rdata: a\rdata: b\r\r"), uint16(1), "line\nbreak\r\u2028")
	f.Fuzz(func(t *testing.T, data []byte, step uint16, payload string) {
		newParser := func() streamParser { return &sseParser{max: fuzzMax} }
		for _, ev := range checkSplits(t, newParser, data, int(step)) {
			if len(ev) > fuzzMax || bytes.ContainsRune([]byte(ev), '\r') {
				t.Fatalf("event data %q: over the limit or holding a CR", ev)
			}
		}

		// A frame is one data line of one event (PROTOCOL.md section 5.1).
		if !utf8.ValidString(payload) {
			return
		}
		frame := transport.AppendFrame(nil, &transport.Frame{Type: transport.TypeText, Seq: 1, Payload: []byte(payload)})
		event := append(append([]byte("id: 1\ndata: "), frame...), "\n\n"...)
		p := &sseParser{max: len(event)}
		got, err, partial := feedSplit(p, event, int(step))
		if err != nil || partial || len(got) != 1 || got[0] != string(frame) {
			t.Fatalf("event %q: got %q, %v, partial=%v; want the frame", event, got, err, partial)
		}
		var fr transport.Frame
		if err := transport.DecodeFrame([]byte(got[0]), &fr); err != nil || string(fr.Payload) != payload {
			t.Fatalf("frame %q decodes to %q, %v; want %q", got[0], fr.Payload, err, payload)
		}
	})
}

// FuzzLineParser checks the XHR-streaming line reader the same way: the
// same frames however the input is cut, none holding a newline or only
// padding, and a batch of frames comes back frame for frame.
func FuzzLineParser(f *testing.F) {
	f.Add([]byte("   \n[\"o\",1,0,\"t\",25000]\n[\"h\"]\n"), uint16(2), "hi")
	f.Add([]byte("[\"m\",1,\"a\"]\n\n  \n[\"m\",2,"), uint16(5), "\x00\n")
	f.Fuzz(func(t *testing.T, data []byte, step uint16, payload string) {
		newParser := func() streamParser { return &lineParser{max: fuzzMax} }
		for _, line := range checkSplits(t, newParser, data, int(step)) {
			if len(line) > fuzzMax || bytes.IndexByte([]byte(line), '\n') >= 0 || isPadding([]byte(line)) {
				t.Fatalf("line %q: over the limit, holding a newline, or padding", line)
			}
		}

		if !utf8.ValidString(payload) {
			return
		}
		var b transport.Batch
		b.Append(&transport.Frame{Type: transport.TypeHeartbeat})
		b.Append(&transport.Frame{Type: transport.TypeText, Seq: 1, Payload: []byte(payload)})
		stream := append([]byte("      \n"), b.Bytes...)
		got, err, partial := feedSplit(&lineParser{max: len(stream)}, stream, int(step))
		if err != nil || partial || len(got) != 2 {
			t.Fatalf("stream %q: got %q, %v, partial=%v", stream, got, err, partial)
		}
		for i, sp := range b.Frames {
			if want := string(b.Bytes[sp.Start:sp.End]); got[i] != want {
				t.Fatalf("frame %d: %q, want %q", i, got[i], want)
			}
		}
	})
}
