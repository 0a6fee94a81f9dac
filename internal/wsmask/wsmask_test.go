package wsmask

import (
	"bytes"
	"testing"
)

// TestMask checks Mask against the definition, byte by byte, for every
// length up to past two words, and that masking twice gives b back.
func TestMask(t *testing.T) {
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	k := uint32(key[0]) | uint32(key[1])<<8 | uint32(key[2])<<16 | uint32(key[3])<<24
	for n := range 20 {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*31 + 7)
		}
		want := bytes.Clone(b)
		for i := range want {
			want[i] ^= key[i%4]
		}
		got := bytes.Clone(b)
		Mask(got, k)
		if !bytes.Equal(got, want) {
			t.Fatalf("length %d: % x, want % x", n, got, want)
		}
		Mask(got, k)
		if !bytes.Equal(got, b) {
			t.Fatalf("length %d: masking twice did not give the bytes back", n)
		}
	}
}
