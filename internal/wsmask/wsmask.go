// Package wsmask masks and unmasks WebSocket payloads (RFC 6455 section
// 5.3), for the frames the Go client writes itself (internal/wswrite)
// and the client frames the server reads itself (internal/wsread).
package wsmask

import "encoding/binary"

// Mask XORs b with key, whose four bytes, in the order they travel (the
// first in key's lowest byte), repeat from b's first byte on: masking
// and unmasking alike. It works eight bytes at a time while it can.
func Mask(b []byte, key uint32) {
	k8 := uint64(key) | uint64(key)<<32
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k8)
		b = b[8:]
	}
	for i := range b {
		b[i] ^= byte(key >> (8 * (i % 4)))
	}
}
