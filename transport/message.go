package transport

import "errors"

// Errors for messages and closes refused before anything is sent, shared
// by the server's Session and the Go client so that one errors.Is serves
// both.
var (
	// ErrMessageTooBig reports a payload above the negotiated maxMessage.
	ErrMessageTooBig = errors.New("comet: message too big")
	// ErrInvalidMessageType reports a type other than Text and Binary.
	ErrInvalidMessageType = errors.New("comet: invalid message type")
	// ErrInvalidCloseCode reports a close code an application may not
	// send: anything but 1000 and 4000–4999.
	ErrInvalidCloseCode = errors.New("comet: invalid close code")
)

// MessageType says whether a message is text or binary. The values are
// WebSocket's opcodes (RFC 6455 section 5.2), familiar from other libraries.
type MessageType int

// Message types.
const (
	// Text is a UTF-8 text message.
	Text MessageType = 1
	// Binary is a message of arbitrary bytes.
	Binary MessageType = 2
)

// String returns "text" or "binary".
func (t MessageType) String() string {
	switch t {
	case Text:
		return "text"
	case Binary:
		return "binary"
	}
	return "invalid"
}

// FrameType returns the frame type that carries messages of type t.
func (t MessageType) FrameType() Type {
	if t == Binary {
		return TypeBinary
	}
	return TypeText
}
