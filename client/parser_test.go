package client

import (
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/seed-544bbf9f/comet/transport"
)

// parse feeds chunks to p and returns what it emitted, each a copy, and
// whether it ends inside a batch.
func parse(p streamParser, chunks ...string) (got []string, partial bool, err error) {
	for _, c := range chunks {
		err = p.feed([]byte(c), func(b []byte) error {
			got = append(got, string(b))
			return nil
		})
		if err != nil {
			return got, p.partial(), err
		}
	}
	return got, p.partial(), nil
}

// splits returns the ways of cutting s that a network may choose, or
// enough of them: one byte at a time, and in two at every byte boundary.
func splits(s string) [][]string {
	var out [][]string
	bytewise := make([]string, len(s))
	for i := 0; i < len(s); i++ { // bytes, not runes
		bytewise[i] = s[i : i+1]
	}
	out = append(out, []string{s}, bytewise)
	for i := 1; i < len(s); i++ {
		out = append(out, []string{s[:i], s[i:]})
	}
	return out
}

// checkParser runs one parser case on every split of its input.
func checkParser(t *testing.T, newParser func() streamParser, in string, want []string, wantPartial bool) {
	t.Helper()
	for _, chunks := range splits(in) {
		got, partial, err := parse(newParser(), chunks...)
		if err != nil {
			t.Fatalf("chunks %q: %v", chunks, err)
		}
		if !slices.Equal(got, want) || partial != wantPartial {
			t.Fatalf("chunks %q: got %q partial=%v, want %q partial=%v", chunks, got, partial, want, wantPartial)
		}
	}
}

func TestSSEParser(t *testing.T) {
	preamble := ":" + strings.Repeat(" ", 2048) + "\n" + "retry: 86400000\n\n"
	for _, tc := range []struct {
		name    string
		in      string
		want    []string
		partial bool
	}{
		{"LF", "data: [\"h\"]\n\n", []string{`["h"]`}, false},
		{"CRLF", "data: [\"h\"]\r\n\r\n", []string{`["h"]`}, false},
		{"CR", "data: [\"h\"]\r\r", []string{`["h"]`}, false},
		{"mixed endings", "data: a\r\n\rdata: b\n\r\ndata: c\r\n\n", []string{"a", "b", "c"}, false},
		{"CR then LF is one ending", "data: a\r\ndata: b\r\n\r\n", []string{"a\nb"}, false},
		{"no space after the colon", "data:[\"h\"]\n\n", []string{`["h"]`}, false},
		{"only one space is dropped", "data:  x\n\n", []string{" x"}, false},
		{"multi-line data", "data: [\"h\"]\ndata: [\"a\",3]\n\n", []string{"[\"h\"]\n[\"a\",3]"}, false},
		{"empty data line", "data\n\n", []string{""}, false},
		{"empty data value", "data:\n\n", []string{""}, false},
		{"data then empty data", "data: a\ndata:\n\n", []string{"a\n"}, false},
		{"comments", ": hi\ndata: x\n:\n\n", []string{"x"}, false},
		{"the server's preamble", preamble + "data: [\"o\",1,0,\"t\",25000]\n\n", []string{`["o",1,0,"t",25000]`}, false},
		{"id and retry are ignored", "id: 7\nretry: 10\ndata: [\"m\",7,\"hi\"]\n\n", []string{`["m",7,"hi"]`}, false},
		{"unknown fields are ignored", "foo: bar\nDATA: no\ndata: yes\n\n", []string{"yes"}, false},
		{"field with no colon", "data\ndata: x\n\n", []string{"\nx"}, false},
		{"blank lines with no data dispatch nothing", "\n\n\r\n\r", nil, false},
		{"event type message", "event: message\ndata: x\n\n", []string{"x"}, false},
		{"other event types are not messages", "event: ping\ndata: x\n\ndata: y\n\n", []string{"y"}, false},
		{"event type resets after each event", "event: ping\n\ndata: y\n\n", []string{"y"}, false},
		{"BOM at the start", "\xef\xbb\xbfdata: x\n\n", []string{"x"}, false},
		{"BOM only at the start", "data: x\n\n\xef\xbb\xbfdata: y\n\n", []string{"x"}, false},
		{"an event cut off is not dispatched", "data: x\n\ndata: y\n", []string{"x"}, true},
		{"a line cut off", "data: x\n\ndata: y", []string{"x"}, true},
		{"a trailing CR ends the line", "data: x\n\r", []string{"x"}, false},
		{"two frames back to back", "id: 1\ndata: [\"m\",1,\"a\"]\n\nid: 2\ndata: [\"m\",2,\"b\"]\n\n",
			[]string{`["m",1,"a"]`, `["m",2,"b"]`}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkParser(t, func() streamParser { return &sseParser{max: 4096} }, tc.in, tc.want, tc.partial)
		})
	}
}

func TestLineParser(t *testing.T) {
	padding := strings.Repeat(" ", 2048) + "\n"
	for _, tc := range []struct {
		name    string
		in      string
		want    []string
		partial bool
	}{
		{"one frame", "[\"h\"]\n", []string{`["h"]`}, false},
		{"after the padding line", padding + "[\"o\",1,0,\"t\",25000]\n", []string{`["o",1,0,"t",25000]`}, false},
		{"a batch", "[\"m\",1,\"a\"]\n[\"m\",2,\"b\"]\n", []string{`["m",1,"a"]`, `["m",2,"b"]`}, false},
		{"padding lines between frames", "[\"h\"]\n\n   \n[\"h\"]\n", []string{`["h"]`, `["h"]`}, false},
		{"a CR is part of the line", "[\"h\"]\r\n", []string{"[\"h\"]\r"}, false},
		{"a frame cut off", "[\"h\"]\n[\"m\",1,", []string{`["h"]`}, true},
		{"padding cut off is no frame", "[\"h\"]\n   ", []string{`["h"]`}, false},
		{"nothing", "", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkParser(t, func() streamParser { return &lineParser{max: 4096} }, tc.in, tc.want, tc.partial)
		})
	}
}

// TestParserLimits feeds lines longer than the limit, whole and in pieces:
// the parsers refuse them as malformed instead of growing without bound.
func TestParserLimits(t *testing.T) {
	long := strings.Repeat("x", 101)
	for _, tc := range []struct {
		name string
		p    func() streamParser
		in   string
	}{
		{"sse line", func() streamParser { return &sseParser{max: 100} }, "data: " + long + "\n\n"},
		{"sse comment", func() streamParser { return &sseParser{max: 100} }, ":" + long + "\n"},
		{"sse data lines", func() streamParser { return &sseParser{max: 100} },
			strings.Repeat("data: "+strings.Repeat("x", 40)+"\n", 3) + "\n"},
		{"stream line", func() streamParser { return &lineParser{max: 100} }, long + "\n"},
		{"stream line, unended", func() streamParser { return &lineParser{max: 100} }, long},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunks := range [][]string{{tc.in}, splits(tc.in)[1]} {
				_, _, err := parse(tc.p(), chunks...)
				if !errors.Is(err, transport.ErrMalformed) {
					t.Fatalf("%d chunks: err = %v, want ErrMalformed", len(chunks), err)
				}
			}
		})
	}
}

// TestParserEmitError stops at the first error of emit.
func TestParserEmitError(t *testing.T) {
	stop := errors.New("stop")
	for _, tc := range []struct {
		name string
		p    streamParser
		in   string
	}{
		{"sse", &sseParser{max: 100}, "data: a\n\ndata: b\n\n"},
		{"stream", &lineParser{max: 100}, "a\nb\n"},
	} {
		calls := 0
		err := tc.p.feed([]byte(tc.in), func([]byte) error {
			calls++
			return stop
		})
		if !errors.Is(err, stop) || calls != 1 {
			t.Fatalf("%s: err = %v after %d calls, want stop after 1", tc.name, err, calls)
		}
	}
}

func TestAppendFrames(t *testing.T) {
	frames, err := appendFrames(nil, []byte("[\"h\"]\n  \n\n[\"a\",3]"))
	if err != nil || len(frames) != 2 || frames[0].Type != transport.TypeHeartbeat || frames[1].Ack != 3 {
		t.Fatalf("appendFrames = %+v, %v", frames, err)
	}
	frames, err = appendFrames(frames[:0], []byte("[\"h\"]\n[\"zz\"]\n[\"h\"]"))
	if !errors.Is(err, transport.ErrMalformed) || len(frames) != 1 {
		t.Fatalf("appendFrames of a bad frame = %+v, %v; want the frame before it and ErrMalformed", frames, err)
	}
}

// TestSSEGolden parses the server's golden events (testdata/sse.json at
// the root of the module, shared with the server and the JS client): each
// event gives back its frame, alone or in one stream cut anywhere.
func TestSSEGolden(t *testing.T) {
	data, err := os.ReadFile("../testdata/sse.json")
	if err != nil {
		t.Fatal(err)
	}
	var golden struct {
		Vectors []struct{ Name, Frame, Event string }
	}
	if err := json.Unmarshal(data, &golden); err != nil {
		t.Fatal(err)
	}
	if len(golden.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	var stream strings.Builder
	var frames []string
	for _, v := range golden.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			checkParser(t, func() streamParser { return &sseParser{max: 4096} }, v.Event, []string{v.Frame}, false)
		})
		stream.WriteString(v.Event)
		frames = append(frames, v.Frame)
	}
	t.Run("all in one stream", func(t *testing.T) {
		checkParser(t, func() streamParser { return &sseParser{max: 4096} }, stream.String(), frames, false)
	})
}
