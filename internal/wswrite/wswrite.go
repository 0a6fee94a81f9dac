// Package wswrite writes batches as WebSocket messages, for the server's
// WebSocket adapter and the Go client, and decides which of them
// permessage-deflate compresses (transport.Compression): messages of at
// least transport.DeflateMinSize bytes, except that a frame carrying a
// credential (transport.Type.CarriesCredential) goes alone, uncompressed.
//
// Direct writes the batches of a connection that compresses nothing,
// as frames it builds itself, beside gorilla's control frames.
//
// A connection has one writer; Batch and Direct are called from it only.
package wswrite

import (
	"net/http"
	"strings"

	"github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet/transport"
)

// Batch writes b to conn: a batch without raw spans as one text message,
// otherwise each run of frames as a text message and each raw span as a
// binary one, in order (transport.Batch.WSMessages). With deflate set, a
// leading frame that carries a credential (the open frame) first goes
// alone in an uncompressed text message, and the rest of the messages are
// compressed from DeflateMinSize bytes on; a credential anywhere else
// (no writer puts one there) leaves the whole batch uncompressed. Without
// deflate, conn must not have negotiated compression: b is written as it
// always was.
func Batch(conn *websocket.Conn, b *transport.Batch, deflate bool) error {
	if !deflate && !b.Raw {
		return conn.WriteMessage(websocket.TextMessage, b.Bytes)
	}
	compress := deflate
	if deflate && b.Len() > 0 && b.Frames[0].Type.CarriesCredential() {
		if err := write(conn, websocket.TextMessage, b.Bytes[:b.Frames[0].End+1], true, false); err != nil {
			return err
		}
		b = &transport.Batch{Bytes: b.Bytes, Frames: b.Frames[1:], Raw: b.Raw}
	}
	for _, sp := range b.Frames {
		if sp.Type.CarriesCredential() {
			compress = false
		}
	}
	for binary, p := range b.WSMessages() {
		typ := websocket.TextMessage
		if binary {
			typ = websocket.BinaryMessage
		}
		if err := write(conn, typ, p, deflate, compress && len(p) >= transport.DeflateMinSize); err != nil {
			return err
		}
	}
	return nil
}

// inPlace is the largest message compressed as it is written. Compressed,
// it fits the connection's write buffer (4 KiB at both ends), so that
// gorilla hands its compressor back before the one network write, which
// may wait on a slow peer.
const inPlace = 4<<10 - 64

// write writes one message, compressed if compress is set. A message too
// large to compress in place is compressed into memory first: gorilla
// otherwise keeps its compressor, over 1 MB, through every network write
// of the message, and a peer that stops reading would hold one per
// session until the write times out.
func write(conn *websocket.Conn, typ int, p []byte, deflate, compress bool) error {
	if deflate {
		conn.EnableWriteCompression(compress)
	}
	if !compress || len(p) <= inPlace {
		return conn.WriteMessage(typ, p)
	}
	pm, err := websocket.NewPreparedMessage(typ, p)
	if err != nil {
		return err
	}
	return conn.WritePreparedMessage(pm)
}

// Setup prepares a connection that negotiated permessage-deflate, or may
// have, for Batch: compression off until Batch turns it on for a message
// (gorilla's default compresses every message, the handshake's small
// control messages included), at level. A level of zero leaves conn as it
// is.
func Setup(conn *websocket.Conn, level int) {
	if level == 0 {
		return
	}
	conn.EnableWriteCompression(false)
	conn.SetCompressionLevel(level)
}

// Named reports whether a handshake's Sec-WebSocket-Extensions names
// permessage-deflate (RFC 7692 section 5) at all: in a request, whether
// the client may have had it agreed; in a response, whether the server
// agreed. gorilla does not say which extensions a connection has.
func Named(h http.Header) bool {
	for _, v := range h.Values("Sec-WebSocket-Extensions") {
		if strings.Contains(strings.ToLower(v), "permessage-deflate") {
			return true
		}
	}
	return false
}
