package session

import (
	"testing"

	"github.com/seed-544bbf9f/comet/transport"
)

// TestHoldRawAck checks that an ack is held back only from a batch of
// raw binary messages, where it would be a WebSocket message of its own.
func TestHoldRawAck(t *testing.T) {
	t.Parallel()
	ack := &transport.Frame{Type: transport.TypeAck, Ack: 3}
	tests := []struct {
		name string
		fill func(b *transport.Batch)
		held bool
	}{
		{"raw messages then the ack", func(b *transport.Batch) {
			b.AppendBinary(1, []byte{1})
			b.AppendBinary(2, nil)
			b.Append(ack)
		}, true},
		{"the ack alone", func(b *transport.Batch) { b.Append(ack) }, false},
		{"a text message beside", func(b *transport.Batch) {
			b.AppendBinary(1, []byte{1})
			b.AppendMessage(transport.TypeText, 2, transport.EncodePayload(transport.TypeText, []byte("t")))
			b.Append(ack)
		}, false},
		{"no ack", func(b *transport.Batch) { b.AppendBinary(1, []byte{1}) }, false},
		{"a heartbeat after the ack", func(b *transport.Batch) {
			b.AppendBinary(1, []byte{1})
			b.Append(ack)
			b.Append(&transport.Frame{Type: transport.TypeHeartbeat})
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := transport.Batch{Raw: true}
			tc.fill(&b)
			n, size := b.Len(), len(b.Bytes)
			if got := holdRawAck(&b); got != tc.held {
				t.Fatalf("holdRawAck = %v, want %v", got, tc.held)
			}
			switch {
			case tc.held && (b.Len() != n-1 || !b.RawOnly()):
				t.Fatalf("after holding: %d frames, raw only %v; want %d raw", b.Len(), b.RawOnly(), n-1)
			case !tc.held && (b.Len() != n || len(b.Bytes) != size):
				t.Fatal("a batch whose ack is not held changed")
			}
		})
	}
}
