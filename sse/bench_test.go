package sse

import (
	"testing"

	"github.com/seed-544bbf9f/comet/transport"
)

// BenchmarkAppendEvents measures the SSE encoding of a batch of 64 small
// messages, what a busy stream writes per flush.
func BenchmarkAppendEvents(b *testing.B) {
	payload := transport.AppendPayload(nil, transport.TypeText, []byte(`{"event":"tick","n":42}`))
	var batch transport.Batch
	for seq := uint64(1); seq <= 64; seq++ {
		batch.AppendMessage(transport.TypeText, seq, payload)
	}
	buf := make([]byte, 0, 8192)
	b.ReportAllocs()
	b.SetBytes(int64(len(batch.Bytes)))
	for b.Loop() {
		buf = appendEvents(buf[:0], &batch)
	}
}
