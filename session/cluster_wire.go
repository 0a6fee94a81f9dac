package session

import (
	"encoding/binary"
	"errors"

	"github.com/seed-544bbf9f/comet/transport"
)

// The kinds of message one node sends another through the Broker. A
// "link" is one attach request served on a node (the front) for a session
// another node owns (the owner): the front allocates its id.
const (
	kindReply     byte = iota + 1 // an answer to a call: rpc, num (status), a, data
	kindOpen                      // call, front → owner: link, num (0, or serveNow | delivery | raw<<1), a (session), b (transport), data (attach query)
	kindServe                     // call, front → owner: link, num (delivery | raw<<1)
	kindBatch                     // call, owner → front: link, num (raw), data + spans (a batch to write)
	kindRecv                      // call, front → owner: link, num (1: one raw binary message), data
	kindPost                      // call, front → owner: a (session), num (the POST's attempt, a), data (a POST's body)
	kindEndUp                     // front → owner: link, a (why; "" by design)
	kindEndDown                   // owner → front: link, a (why; "" by design)
	kindFail                      // front → owner: link, num (close code), a (reason)
	kindSharePoll                 // call, any node → a carrier's: a (carrier id), num (ack)
	kindShareOps                  // call, any node → a carrier's: a (carrier id), data (a POST's ops)
	kindLast      = kindShareOps
)

// serveNow in an open's num starts the attachment at once, with the
// delivery and raw flag of a serve's num: an HTTP transport's front knows
// them from the transport's name and saves the serve's round trip, which
// a poll would otherwise pay on every request.
const serveNow = 4

// The num of a reply to a batch or a receive.
const (
	replyOK    = 0
	replyDone  = 1 // a batch was written and ended its downstream (transport.ErrDone)
	replyError = 2 // a holds the error; for open and post, num is an HTTP status instead
)

// envelope is one message between nodes. Every message carries every
// field, most of them empty: a byte each. The format is the cluster's own,
// between nodes of one release; it is not part of PROTOCOL.md.
type envelope struct {
	kind  byte
	from  string // the sending node
	rpc   uint64 // a call's id, echoed by its reply; 0 for a one-way message
	link  uint64
	num   uint64
	a, b  string
	data  []byte
	spans []transport.Span
}

var errEnvelope = errors.New("comet: malformed cluster message")

// encode appends e's encoding to dst.
func (e *envelope) encode(dst []byte) []byte {
	dst = append(dst, e.kind)
	dst = appendString(dst, e.from)
	dst = binary.AppendUvarint(dst, e.rpc)
	dst = binary.AppendUvarint(dst, e.link)
	dst = binary.AppendUvarint(dst, e.num)
	dst = appendString(dst, e.a)
	dst = appendString(dst, e.b)
	dst = binary.AppendUvarint(dst, uint64(len(e.data)))
	dst = append(dst, e.data...)
	dst = binary.AppendUvarint(dst, uint64(len(e.spans)))
	for _, s := range e.spans {
		raw := uint64(0)
		if s.Raw {
			raw = 1
		}
		dst = binary.AppendUvarint(dst, uint64(s.Type)<<1|raw)
		dst = binary.AppendUvarint(dst, s.Seq)
		dst = binary.AppendUvarint(dst, uint64(s.Start))
		dst = binary.AppendUvarint(dst, uint64(s.End))
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// decodeEnvelope parses a message. Its data and strings are copies: msg
// may go once it returns. Spans are checked to lie within data, in order,
// so that a batch rebuilt from them is safe to write.
func decodeEnvelope(msg string) (*envelope, error) {
	d := decoder{s: msg}
	e := &envelope{kind: d.byte()}
	if e.kind == 0 || e.kind > kindLast {
		return nil, errEnvelope
	}
	e.from = d.string()
	e.rpc = d.uvarint()
	e.link = d.uvarint()
	e.num = d.uvarint()
	e.a = d.string()
	e.b = d.string()
	if data := d.string(); data != "" {
		e.data = []byte(data)
	}
	n := d.uvarint()
	if n > uint64(len(d.s)) { // each span takes four bytes at least
		return nil, errEnvelope
	}
	if n > 0 {
		e.spans = make([]transport.Span, 0, n)
	}
	last := 0
	for range n {
		tr := d.uvarint()
		s := transport.Span{Type: transport.Type(tr >> 1), Raw: tr&1 == 1, Seq: d.uvarint()}
		start, end := d.uvarint(), d.uvarint()
		if tr>>1 > 0xff || start < uint64(last) || end < start || end > uint64(len(e.data)) {
			return nil, errEnvelope
		}
		s.Start, s.End = int(start), int(end)
		last = s.End
		e.spans = append(e.spans, s)
	}
	if d.bad || len(d.s) != 0 {
		return nil, errEnvelope
	}
	return e, nil
}

// decoder reads an envelope's fields, remembering the first error.
type decoder struct {
	s   string
	bad bool
}

func (d *decoder) byte() byte {
	if len(d.s) == 0 {
		d.bad = true
		return 0
	}
	b := d.s[0]
	d.s = d.s[1:]
	return b
}

func (d *decoder) uvarint() uint64 {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if len(d.s) == 0 {
			d.bad = true
			return 0
		}
		b := d.s[0]
		d.s = d.s[1:]
		v |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return v
		}
	}
	d.bad = true
	return 0
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.s)) {
		d.bad = true
		return ""
	}
	s := d.s[:n]
	d.s = d.s[n:]
	return s
}
