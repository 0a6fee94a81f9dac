package transport

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
)

// Transport names, as they appear in negotiate responses, attach paths and
// Session.Transport.
const (
	WebSocket = "websocket"
	SSE       = "sse"
	Streaming = "streaming"
	LongPoll  = "longpoll"
)

// Order returns the transports in fallback order, best first: a fresh
// slice each call, which the caller may change.
func Order() []string { return []string{WebSocket, SSE, Streaming, LongPoll} }

// NegotiateRequest is the optional JSON body of a negotiate POST.
type NegotiateRequest struct {
	// Transports the client can use; empty means all.
	Transports []string `json:"transports,omitempty"`
	// Binary says the client can send and receive binary messages as raw
	// binary WebSocket messages (PROTOCOL.md section 4).
	Binary bool `json:"binary,omitempty"`
	// Target is the TCP relay target the client asks for, "host:port"
	// (PROTOCOL.md sections 3 and 13).
	Target string `json:"target,omitempty"`
	// Protocols are the subprotocols the client offers, best first; the
	// server selects one of them or refuses (PROTOCOL.md section 3). Empty
	// asks for none. See CheckProtocols.
	Protocols []string `json:"protocols,omitempty"`
	// NoStatus says the client may close without a code: its close frame
	// then carries CloseNoStatus, and the server answers a client's close
	// with the client's code and reason (PROTOCOL.md section 10).
	NoStatus bool `json:"noStatus,omitempty"`
	// Codes are the close codes past the first release's table that the
	// client understands (PROTOCOL.md section 10): the server sends such
	// a code only to a client that lists it, and an older one in its
	// place to any other.
	Codes []int `json:"codes,omitempty"`
	// Positions says the client understands topic positions: messages of
	// a topic carry theirs, and subscribed frames say where each
	// subscription starts (PROTOCOL.md section 15).
	Positions bool `json:"positions,omitempty"`
	// Topics are the positions the client presents, by topic: where it
	// stopped reading in a session that ended. A subscription to one of
	// these topics starts after it, with every message missed since, or
	// says that they could not be recovered.
	Topics map[string]TopicPosition `json:"topics,omitempty"`
	// Replies says the client reads downstream messages in the answer to
	// an upstream POST, merging them with its downstream by sequence
	// number: the server may then answer a POST that carried messages
	// with those that became due within a short bound (PROTOCOL.md
	// section 6).
	Replies bool `json:"replies,omitempty"`
	// LazyAcks says the client acks at once when its unacknowledged
	// messages reach the thresholds the response's LazyAcks gives, and
	// otherwise may hold an ack for its longer delay (PROTOCOL.md section
	// 6).
	LazyAcks bool `json:"lazyAcks,omitempty"`
}

// LazyAcks is the ack cadence a server grants a client that asked for
// lazy acks (PROTOCOL.md section 6): the client acks at once when its
// unacknowledged messages reach Messages or their payloads Bytes, and
// otherwise within Delay milliseconds (or its heartbeat interval, if
// shorter) of the first of them.
type LazyAcks struct {
	Delay    int `json:"delay"`
	Messages int `json:"messages"`
	Bytes    int `json:"bytes"`
}

// TopicPosition is a place in a topic's history: the offset of a message,
// in the epoch of the history that numbered it. A history that is lost
// and begun again (its store restarted empty) gets a new epoch, so that a
// position in the old one is never mistaken for one in the new.
type TopicPosition struct {
	Epoch  string `json:"epoch"`
	Offset uint64 `json:"offset"`
}

// NegotiateResponse is the JSON body of a successful negotiate. Durations
// are in milliseconds. When URL is set the response is a redirect and only
// URL and Token are meaningful.
type NegotiateResponse struct {
	Version    int      `json:"v"`
	SessionID  string   `json:"sid,omitempty"`
	Secret     string   `json:"secret,omitempty"`
	Tickets    []string `json:"tickets,omitempty"`
	Transports []string `json:"transports,omitempty"`

	Heartbeat    int `json:"heartbeat,omitempty"`
	MinHeartbeat int `json:"minHeartbeat,omitempty"`
	Hold         int `json:"hold,omitempty"`
	Grace        int `json:"grace,omitempty"`
	AckDelay     int `json:"ackDelay,omitempty"`
	MinTimeout   int `json:"minTimeout,omitempty"`
	MaxTimeout   int `json:"maxTimeout,omitempty"`

	MaxMessage     int `json:"maxMessage,omitempty"`
	MaxBatch       int `json:"maxBatch,omitempty"`
	WindowMessages int `json:"windowMessages,omitempty"`
	WindowBytes    int `json:"windowBytes,omitempty"`

	URL   string `json:"url,omitempty"`
	Token string `json:"token,omitempty"`

	// Binary agrees to raw binary WebSocket messages; set only when the
	// request asked for them.
	Binary bool `json:"binary,omitempty"`
	// Protocol is the subprotocol the server selected, always one of the
	// request's Protocols; "" when the request offered none.
	Protocol string `json:"protocol,omitempty"`
	// NoStatus agrees to closes without a code; set only when the request
	// asked.
	NoStatus bool `json:"noStatus,omitempty"`
	// Positions agrees to topic positions; set only when the request
	// asked.
	Positions bool `json:"positions,omitempty"`
	// Replies agrees to messages in POST answers; set only when the
	// request asked.
	Replies bool `json:"replies,omitempty"`
	// LazyAcks grants lazy acks; set only when the request asked.
	LazyAcks *LazyAcks `json:"lazyAcks,omitempty"`
}

// ParseNegotiateResponse decodes and checks a negotiate response body.
func ParseNegotiateResponse(body []byte) (*NegotiateResponse, error) {
	var r NegotiateResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%w: negotiate response: %v", ErrMalformed, err)
	}
	if r.URL != "" {
		u, err := url.Parse(r.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
			return nil, fmt.Errorf("%w: redirect to %q is not an absolute http(s) URL", ErrMalformed, r.URL)
		}
		return &r, nil
	}
	switch {
	case r.Version != Version:
		return nil, fmt.Errorf("%w: server speaks protocol %d, this client %d", ErrMalformed, r.Version, Version)
	case r.SessionID == "" || r.Secret == "" || len(r.Tickets) == 0:
		return nil, fmt.Errorf("%w: negotiate response lacks sid, secret or tickets", ErrMalformed)
	case len(r.Transports) == 0:
		return nil, fmt.Errorf("%w: negotiate response offers no transport", ErrMalformed)
	case r.Heartbeat <= 0 || r.Hold <= 0 || r.Grace <= 0 || r.MaxMessage <= 0 || r.MaxBatch <= 0 ||
		r.WindowMessages <= 0 || r.WindowBytes <= 0:
		return nil, fmt.Errorf("%w: negotiate response lacks a positive limit", ErrMalformed)
	case r.MinHeartbeat < 0 || r.AckDelay < 0 || r.MinTimeout < 0 || r.MaxTimeout < 0:
		return nil, fmt.Errorf("%w: negotiate response has a negative duration", ErrMalformed)
	case r.LazyAcks != nil && (r.LazyAcks.Delay <= 0 || r.LazyAcks.Messages <= 0 || r.LazyAcks.Bytes <= 0):
		return nil, fmt.Errorf("%w: negotiate response grants lazy acks without a positive delay and thresholds", ErrMalformed)
	case r.MaxBatch < 6*r.MaxMessage+64:
		return nil, fmt.Errorf("%w: maxBatch %d cannot hold a message of maxMessage %d", ErrMalformed, r.MaxBatch, r.MaxMessage)
	}
	return &r, nil
}

// Error codes carried in ErrorBody.Code.
const (
	CodeBadRequest         = "bad_request"
	CodeUnsupportedVersion = "unsupported_version"
	CodeOriginRefused      = "origin_refused"
	CodeUnauthorized       = "unauthorized"
	CodeForbidden          = "forbidden"
	CodeRateLimited        = "rate_limited"
	CodeOverloaded         = "overloaded"
	CodeShuttingDown       = "shutting_down"
	CodeSessionNotFound    = "session_not_found"
	CodeBadTicket          = "bad_ticket"
	CodeBadSecret          = "bad_secret"
	CodeTooLarge           = "payload_too_large"
	CodeMalformed          = "malformed"
	CodeInvalidPayload     = "invalid_payload"
	CodeNotFound           = "not_found"
	CodeMethodNotAllowed   = "method_not_allowed"
	CodeTransportDisabled  = "transport_disabled"
	CodeBrokerUnavailable  = "broker_unavailable"
	CodeStreamingBroken    = "streaming_unsupported"
	CodeNoProtocol         = "no_protocol"
	CodeInternalError      = "internal_error"
	// CodeShareNotFound refuses a request for a shared carrier the server
	// does not hold: unknown, ended, or of a node that is gone
	// (PROTOCOL.md section 16).
	CodeShareNotFound = "share_not_found"
)

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Origin and Host are the values an origin refusal compared.
	Origin string `json:"origin,omitempty"`
	Host   string `json:"host,omitempty"`
	// Supported lists the protocol versions the server speaks.
	Supported []int `json:"supported,omitempty"`
}

// HTTPError is an error response as a client sees it.
type HTTPError struct {
	Status int
	Body   ErrorBody
	// RetryAfter is the Retry-After header in seconds, 0 if absent.
	RetryAfter int
}

func (e *HTTPError) Error() string {
	if e.Body.Code == "" {
		return fmt.Sprintf("comet: HTTP %d", e.Status)
	}
	return fmt.Sprintf("comet: HTTP %d %s: %s", e.Status, e.Body.Code, e.Body.Message)
}

// AttachParams are the query parameters of an attach GET (WebSocket, SSE,
// streaming, poll): see PROTOCOL.md, "Attaching".
type AttachParams struct {
	Session string // s
	Ticket  string // t
	Attempt uint64 // a
	Ack     uint64 // ack
	// Deliver asks to take over delivery at once (d=1); otherwise the
	// attachment probes until committed.
	Deliver bool
	// Heartbeat asks for a heartbeat interval (or poll hold) in ms; 0
	// means the session's.
	Heartbeat uint64 // hb
	// Reason reports why the client left its previous transport (why).
	Reason string
	// Pad asks an XHR stream to pad every flush to this many bytes (pad),
	// at most MaxPad; 0 means no padding.
	Pad uint64
}

// MaxPad is the largest pad an attach may ask for.
const MaxPad = 8192

// errBadParams is wrapped by ParseAttach errors.
var errBadParams = errors.New("comet: bad attach parameters")

// ParseAttach reads attach parameters from a query.
func ParseAttach(q url.Values) (AttachParams, error) {
	if q.Get("s") == "" || q.Get("t") == "" {
		return AttachParams{}, fmt.Errorf("%w: s and t are required", errBadParams)
	}
	return parseAttach(q)
}

// ParseNegotiatingAttach reads the parameters of an attach that
// negotiates (PROTOCOL.md section 3, "Negotiating in the first attach"):
// those of ParseAttach but s and t, which the session it makes does not
// need, and n, the negotiate body, which it returns.
func ParseNegotiatingAttach(q url.Values) (AttachParams, NegotiateRequest, error) {
	var nr NegotiateRequest
	if q.Has("s") || q.Has("t") {
		return AttachParams{}, nr, fmt.Errorf("%w: an attach that negotiates takes no s or t", errBadParams)
	}
	n := q.Get("n")
	if len(n) > MaxNegotiateBody {
		return AttachParams{}, nr, fmt.Errorf("%w: n is longer than %d bytes", errBadParams, MaxNegotiateBody)
	}
	if n != "" {
		if err := json.Unmarshal([]byte(n), &nr); err != nil {
			return AttachParams{}, nr, fmt.Errorf("%w: n: %v", errBadParams, err)
		}
	}
	p, err := parseAttach(q)
	return p, nr, err
}

// MaxNegotiateBody is the largest negotiate body a server reads, in a POST
// or in the n parameter of an attach that negotiates.
const MaxNegotiateBody = 4 << 10

// NegotiateHeader is the header of the answer to an attach that
// negotiates, holding the negotiate response as JSON; on an HTTP
// transport's attach that negotiates, the request carries it too (any
// value), as a proof that no page of another site sent the request.
const NegotiateHeader = "Comet-Negotiate"

func parseAttach(q url.Values) (AttachParams, error) {
	var p AttachParams
	p.Session, p.Ticket, p.Reason = q.Get("s"), q.Get("t"), q.Get("why")
	if len(p.Reason) > 64 {
		return p, fmt.Errorf("%w: why is longer than 64 bytes", errBadParams)
	}
	var err error
	if p.Attempt, err = queryUint(q, "a", true); err != nil {
		return p, err
	}
	if p.Ack, err = queryUint(q, "ack", false); err != nil {
		return p, err
	}
	if p.Heartbeat, err = queryUint(q, "hb", false); err != nil {
		return p, err
	}
	if p.Pad, err = queryUint(q, "pad", false); err != nil {
		return p, err
	}
	if p.Pad > MaxPad {
		return p, fmt.Errorf("%w: pad=%d is above %d", errBadParams, p.Pad, MaxPad)
	}
	switch q.Get("d") {
	case "1":
		p.Deliver = true
	case "", "0":
	default:
		return p, fmt.Errorf("%w: d must be 0 or 1", errBadParams)
	}
	return p, nil
}

func queryUint(q url.Values, key string, required bool) (uint64, error) {
	s := q.Get(key)
	if s == "" {
		if required {
			return 0, fmt.Errorf("%w: %s is required", errBadParams, key)
		}
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v > maxSafeInteger {
		return 0, fmt.Errorf("%w: %s=%q is not an integer in 0..2^53-1", errBadParams, key, s)
	}
	return v, nil
}

// Encode writes the parameters into q, plus the protocol version.
func (p AttachParams) Encode(q url.Values) {
	q.Set("v", strconv.Itoa(Version))
	q.Set("s", p.Session)
	q.Set("t", p.Ticket)
	q.Set("a", strconv.FormatUint(p.Attempt, 10))
	q.Set("ack", strconv.FormatUint(p.Ack, 10))
	if p.Deliver {
		q.Set("d", "1")
	}
	if p.Heartbeat > 0 {
		q.Set("hb", strconv.FormatUint(p.Heartbeat, 10))
	}
	if p.Reason != "" {
		q.Set("why", p.Reason)
	}
	if p.Pad > 0 {
		q.Set("pad", strconv.FormatUint(p.Pad, 10))
	}
}
