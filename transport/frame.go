package transport

// Version is the protocol version this package speaks. It travels as the
// v query parameter of every request; see PROTOCOL.md, "Versioning".
const Version = 1

// Type identifies a frame. Each value is the single ASCII letter that opens
// the frame on the wire, so a Type can be written without a lookup.
type Type byte

// Frame types. Downstream frames travel server → client, upstream frames
// client → server; message, ack, heartbeat and close travel both ways.
const (
	// TypeOpen starts every downstream: ["o",attempt,ack,"ticket",interval].
	TypeOpen Type = 'o'
	// TypeText is a text message: ["m",seq,"text"].
	TypeText Type = 'm'
	// TypeBinary is a binary message, base64 encoded: ["b",seq,"base64"].
	TypeBinary Type = 'b'
	// TypeAck acknowledges every message up to and including ack: ["a",ack].
	TypeAck Type = 'a'
	// TypeHeartbeat keeps an idle path alive: ["h"].
	TypeHeartbeat Type = 'h'
	// TypeProbe asks the server to echo a token on one attachment:
	// ["p",attempt,"token"]. Upstream only.
	TypeProbe Type = 'p'
	// TypeEcho answers a probe: ["e","token"]. Downstream only.
	TypeEcho Type = 'e'
	// TypeCommit makes a probing attachment the delivering one: ["u",attempt].
	// Upstream only.
	TypeCommit Type = 'u'
	// TypeSuperseded is the last frame of a downstream that another
	// attachment replaced: ["s"]. Downstream only.
	TypeSuperseded Type = 's'
	// TypeClose ends the session in sequence: ["c",seq,code,"reason",retry].
	TypeClose Type = 'c'
	// TypeKey opens every upstream POST body and proves possession of the
	// session secret: ["k","secret",ack,wantTicket]. Upstream only.
	TypeKey Type = 'k'
	// TypeTicket hands the client a fresh attach ticket: ["t","ticket"].
	// Downstream only, in POST responses.
	TypeTicket Type = 't'
	// TypeSubscribed tells a client that agreed to topic positions where
	// its subscription to a topic starts, and whether the position it
	// presented was recovered: ["y",seq,"topic","epoch",offset,recovered].
	// Downstream only, sequenced (PROTOCOL.md section 15).
	TypeSubscribed Type = 'y'
)

// String returns the frame type's name, for logs and errors.
func (t Type) String() string {
	switch t {
	case TypeOpen:
		return "open"
	case TypeText:
		return "text"
	case TypeBinary:
		return "binary"
	case TypeAck:
		return "ack"
	case TypeHeartbeat:
		return "heartbeat"
	case TypeProbe:
		return "probe"
	case TypeEcho:
		return "echo"
	case TypeCommit:
		return "commit"
	case TypeSuperseded:
		return "superseded"
	case TypeClose:
		return "close"
	case TypeKey:
		return "key"
	case TypeTicket:
		return "ticket"
	case TypeSubscribed:
		return "subscribed"
	}
	return "unknown"
}

// CarriesCredential reports whether frames of this type carry a
// credential: an attach ticket (open, ticket) or the session secret
// (key). A transport that compresses keeps them out of every compressed
// message, where their bytes would share a DEFLATE window with data an
// attacker may choose (PROTOCOL.md section 5, WebSocket).
func (t Type) CarriesCredential() bool { return t == TypeOpen || t == TypeTicket || t == TypeKey }

// IsMessage reports whether frames of this type carry application data.
func (t Type) IsMessage() bool { return t == TypeText || t == TypeBinary }

// Sequenced reports whether frames of this type occupy a sequence number.
// Close is sequenced so that a close issued while the peer is away is
// delivered, in order, when it returns.
func (t Type) Sequenced() bool {
	return t == TypeText || t == TypeBinary || t == TypeClose || t == TypeSubscribed
}

// Frame is one decoded frame. Only the fields its Type names are set; the
// rest are zero. Field use per type is listed in PROTOCOL.md, "Frames".
type Frame struct {
	Type Type

	// Seq numbers text, binary and close frames, from 1, per direction.
	Seq uint64
	// Ack is a cumulative acknowledgement (open, ack and key frames).
	Ack uint64
	// Attempt names the attachment (open, probe and commit frames).
	Attempt uint64

	// Payload is the message body: UTF-8 text for TypeText, the decoded
	// bytes for TypeBinary.
	Payload []byte

	// Token is the ticket (open, ticket), probe token (probe, echo) or
	// session secret (key).
	Token string

	// Interval is the heartbeat interval in milliseconds the server applies
	// to this attachment (open).
	Interval uint64

	// Code and Reason are the close code and reason (close).
	Code   int
	Reason string
	// Retry is a reconnect hint in milliseconds carried by a close; 0 means
	// none.
	Retry uint64

	// WantTicket asks for a fresh ticket in the POST response (key).
	WantTicket bool

	// Topic, Epoch and Offset are a topic message's position in its
	// topic (text and binary frames of a topic, to a client that agreed
	// to positions), or where a subscription starts (subscribed). Topic
	// is "" for any other message.
	Topic  string
	Epoch  string
	Offset uint64
	// Recovered says whether the position the client presented for the
	// topic was recovered in full (subscribed).
	Recovered bool
}
