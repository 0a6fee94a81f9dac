package transport

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// benchText is 1 KiB of text needing no escapes, the common case.
var benchText = []byte(strings.Repeat("comet wire format, 32 bytes .. \x21", 32))

// benchEscapedText is 1 KiB of text in which every 16th byte must be
// escaped, so the decoder takes its unescaping path.
var benchEscapedText = []byte(strings.Repeat("line of text...\n", 64))

// benchBinary is 1 KiB of every byte value.
var benchBinary = func() []byte {
	p := make([]byte, 1024)
	for i := range p {
		p[i] = byte(i)
	}
	return p
}()

func BenchmarkAppendMessage(b *testing.B) {
	payload := AppendPayload(nil, TypeText, benchText)
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchText)))
	for i := 0; b.Loop(); i++ {
		buf = AppendMessage(buf[:0], TypeText, uint64(i+1), payload)
	}
}

func BenchmarkAppendPayload(b *testing.B) {
	for _, bc := range []struct {
		name string
		t    Type
		p    []byte
	}{
		{"text1KiB", TypeText, benchText},
		{"binary1KiB", TypeBinary, benchBinary},
	} {
		b.Run(bc.name, func(b *testing.B) {
			buf := make([]byte, 0, 4096)
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.p)))
			for b.Loop() {
				buf = AppendPayload(buf[:0], bc.t, bc.p)
			}
		})
	}
}

func BenchmarkDecodeFrame(b *testing.B) {
	for _, bc := range []struct {
		name string
		t    Type
		p    []byte
	}{
		{"text1KiB", TypeText, benchText},
		{"escaped1KiB", TypeText, benchEscapedText},
		{"binary1KiB", TypeBinary, benchBinary},
	} {
		b.Run(bc.name, func(b *testing.B) {
			wire := AppendFrame(nil, &Frame{Type: bc.t, Seq: 123456, Payload: bc.p})
			var f Frame
			b.ReportAllocs()
			b.SetBytes(int64(len(wire)))
			for b.Loop() {
				if err := DecodeFrame(wire, &f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeBatch(b *testing.B) {
	var batch Batch
	batch.Append(&Frame{Type: TypeOpen, Attempt: 2, Ack: 40, Token: "Yz8wq3VfE8m0Qx2wJb1kR9", Interval: 25000})
	for seq := uint64(1); batch.Len() < 15; seq++ {
		batch.Append(&Frame{Type: TypeText, Seq: seq, Payload: []byte(`{"event":"tick","n":42}`)})
	}
	batch.Append(&Frame{Type: TypeHeartbeat})
	b.ReportAllocs()
	b.SetBytes(int64(len(batch.Bytes)))
	for b.Loop() {
		frames, err := DecodeBatch(batch.Bytes)
		if err != nil || len(frames) != 16 {
			b.Fatal(len(frames), err)
		}
	}
}

func BenchmarkBatch(b *testing.B) {
	payload := AppendPayload(nil, TypeText, []byte(`{"event":"tick","n":42}`))
	var batch Batch
	b.ReportAllocs()
	for b.Loop() {
		batch.Reset()
		for seq := uint64(1); seq <= 64; seq++ {
			batch.AppendMessage(TypeText, seq, payload)
		}
	}
	if !bytes.HasSuffix(batch.Bytes, []byte("]\n")) {
		b.Fatal("batch does not end with a frame")
	}
}

// BenchmarkAppendBinary compares the ways a batch can carry a binary
// message held in a window. "base64" copies the base64 form that Send
// encoded (a client that did not agree to raw binary messages); "raw"
// copies the bytes into a raw span (one that did, on WebSocket);
// "rawEncode" encodes them into a text batch (one that did, after a
// fallback to another transport); "rawDecode" decodes the base64 form
// into a raw span, what a window holding only base64 would cost
// WebSocket.
func BenchmarkAppendBinary(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		p := bytes.Repeat(benchBinary, size/len(benchBinary))
		encoded := EncodePayload(TypeBinary, p)
		for _, bc := range []struct {
			name   string
			append func(*Batch, uint64)
		}{
			{"base64", func(bt *Batch, seq uint64) { bt.AppendMessage(TypeBinary, seq, encoded) }},
			{"raw", func(bt *Batch, seq uint64) { bt.Raw = true; bt.AppendBinary(seq, p) }},
			{"rawEncode", func(bt *Batch, seq uint64) { bt.AppendBinary(seq, p) }},
			{"rawDecode", func(bt *Batch, seq uint64) {
				bt.Bytes, _ = base64.StdEncoding.AppendDecode(AppendRawHeader(bt.Bytes, seq), encoded[1:len(encoded)-1])
			}},
		} {
			b.Run(fmt.Sprintf("%dKiB/%s", size>>10, bc.name), func(b *testing.B) {
				var bt Batch
				b.ReportAllocs()
				b.SetBytes(int64(size))
				for i := 0; b.Loop(); i++ {
					bt.Reset()
					bc.append(&bt, uint64(i+1))
				}
			})
		}
	}
}

// benchStrings are the strings BenchmarkAppendString and
// BenchmarkDecodeString encode and decode: a chat message's 33 bytes, a
// kilobyte of ASCII, and a kilobyte of mostly non-ASCII text.
var benchStrings = []struct {
	name string
	s    string
}{
	{"ascii33", "see you at the station at 6:15 pm"},
	{"ascii1KiB", string(benchText)},
	{"nonASCII1KiB", strings.Repeat("café 日本語 😀 ", 1024/len("café 日本語 😀 "))},
}

func BenchmarkAppendString(b *testing.B) {
	for _, bc := range benchStrings {
		b.Run(bc.name, func(b *testing.B) {
			buf := make([]byte, 0, 4096)
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.s)))
			for b.Loop() {
				buf = AppendString(buf[:0], bc.s)
			}
		})
		b.Run(bc.name+"/bytes", func(b *testing.B) {
			p := []byte(bc.s)
			buf := make([]byte, 0, 4096)
			b.ReportAllocs()
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				buf = appendStringBytes(buf[:0], p)
			}
		})
	}
}

func BenchmarkDecodeString(b *testing.B) {
	for _, bc := range benchStrings {
		b.Run(bc.name, func(b *testing.B) {
			wire := AppendString(nil, bc.s)
			b.ReportAllocs()
			b.SetBytes(int64(len(wire)))
			for b.Loop() {
				d := decoder{buf: wire}
				if s, _, err := d.str(); err != nil || len(s) != len(bc.s) {
					b.Fatal(len(s), err)
				}
			}
		})
	}
}
