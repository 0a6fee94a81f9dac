package transport

import "compress/flate"

// Compression configures permessage-deflate (RFC 7692) on WebSocket, the
// only transport it applies to: a server offers it at the WebSocket
// handshake, a client asks for it there, and it is in use when both do.
// Either side without it keeps the connection uncompressed both ways, so
// each end enables it on its own. A nil *Compression means none.
//
// Comet compresses each WebSocket message on its own (gorilla/websocket
// negotiates no context takeover), and only messages of at least
// DeflateMinSize bytes. A frame that carries a credential, such as the
// attach ticket of an open frame, is never compressed: it travels in an
// uncompressed message of its own, so that no compressed message mixes it
// with application data (see CarriesCredential and PROTOCOL.md section 4).
// An application that sends its own secrets and, on the same session,
// text an attacker can choose should leave compression off: messages
// written together share one compressed WebSocket message.
type Compression struct {
	// Level is the DEFLATE level, from 1 (fastest) to 9 (smallest
	// output), as in compress/flate; a value outside that range is
	// clamped to it. Zero means 1: on the JSON of realtime applications
	// the higher levels save a few bytes more for several times the CPU.
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
