package transport

import "compress/flate"

// Compression configures permessage-deflate (RFC 7692) on WebSocket, the
// only transport it applies to: the server's Options.Compression offers
// it at the WebSocket handshake, the Go client's asks for it there, and
// it is in use when both do; either end without it keeps the connection
// uncompressed both ways. A nil *Compression means none.
//
// Each WebSocket message is compressed on its own (gorilla/websocket
// negotiates no context takeover), and only from DeflateMinSize bytes. A
// frame that carries a credential (CarriesCredential) is never compressed
// with anything else: the open frame, the only one that travels on
// WebSocket, goes alone in an uncompressed message (PROTOCOL.md section
// 5).
type Compression struct {
	// Level is the DEFLATE level, from 1 (fastest) to 9 (smallest
	// output), as in compress/flate; a value outside that range is
	// clamped to it. Zero means 1: on JSON, level 9 saves a tenth to a
	// fifth more bytes for two to six times the CPU (docs/compression.md).
	Level int
}

// DeflateMinSize is the smallest WebSocket message that Comet compresses.
// Below it DEFLATE saves a handful of bytes at best (without context
// takeover every message starts with an empty window) for the cost of a
// compressor's setup, and acks and heartbeats are all far below it.
const DeflateMinSize = 256

// DeflateLevel returns the DEFLATE level c asks for, clamped to
// [flate.BestSpeed, flate.BestCompression], or 0 if c is nil: no
// compression.
func (c *Compression) DeflateLevel() int {
	if c == nil {
		return 0
	}
	if c.Level == 0 {
		return flate.BestSpeed
	}
	return min(max(c.Level, flate.BestSpeed), flate.BestCompression)
}
