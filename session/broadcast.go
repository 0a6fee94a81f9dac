package session

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seed-544bbf9f/comet/internal/window"
	"github.com/seed-544bbf9f/comet/transport"
)

// PreparedMessage is a message encoded once for many sessions: a broadcast
// pays for escaping or base64 once, not once per recipient. It is
// immutable and safe for concurrent use.
type PreparedMessage struct {
	encoded window.Entry
	// raw is a binary message's entry for sessions that agreed to raw
	// binary WebSocket messages; the zero Entry for text.
	raw window.Entry
	// publication is the message as the other nodes of a cluster get it
	// (encodePublication); nil on a single node.
	publication []byte
}

// entry returns the window entry for s.
func (m *PreparedMessage) entry(s *Session) window.Entry {
	if m.raw.Raw && s.binary {
		return m.raw
	}
	return m.encoded
}

// NewPreparedMessage encodes a message for Broadcast or SendPrepared. The
// limits checked are the handler's; the message does not keep p.
func (h *Handler) NewPreparedMessage(typ transport.MessageType, p []byte) (*PreparedMessage, error) {
	if err := window.Check(typ, p, h.opts.MaxMessage); err != nil {
		return nil, err
	}
	m := &PreparedMessage{encoded: window.Entry{Type: typ.FrameType(), Payload: transport.EncodePayload(typ.FrameType(), p),
		Size: len(p)}}
	if typ == transport.Binary {
		m.raw = window.Entry{Type: transport.TypeBinary, Payload: append(make([]byte, 0, len(p)), p...), Size: len(p), Raw: true}
	}
	if h.cluster != nil {
		m.publication = encodePublication(typ, p)
	}
	return m, nil
}

// SendPrepared is Send for a prepared message.
func (s *Session) SendPrepared(ctx context.Context, m *PreparedMessage) error {
	return s.sendPrepared(ctx, m.entry(s), sendWait)
}

// TrySendPrepared is TrySend for a prepared message.
func (s *Session) TrySendPrepared(m *PreparedMessage) error {
	return s.sendPrepared(context.Background(), m.entry(s), sendTry)
}

// Broadcast offers m to every session without waiting: a session whose
// window is full is skipped (or, with Options.CloseSlowConsumers, closed),
// so one slow client never holds up the rest. It returns how many sessions
// took the message. The sessions share m's encoded bytes. A session on a
// WebSocket whose writes never wait (transport.PromptDownstream) is
// written to by Broadcast itself, as a hub loop writes to each connection
// in turn; on the others the session's writer sends the message. With
// Options.Failover, Broadcast does not wait for the sessions' logs: a
// message its node lost before its log kept it is never delivered, nor
// numbered (the session's sequence goes on without it).
//
// Broadcast to many sessions whose offers write (WebSocket sessions that
// Broadcast writes to itself) goes on up to GOMAXPROCS goroutines, each
// taking a part of the sessions (at least broadcastPart): the writes go
// on every CPU. Broadcast returns once every session was offered m, so
// that each session gets the messages of successive broadcasts in order.
func Broadcast(sessions []*Session, m *PreparedMessage) int {
	parts := min(runtime.GOMAXPROCS(0), len(sessions)/broadcastPart)
	if parts <= 1 {
		return offer(sessions, m)
	}
	// The first few sessions, in turn, tell what an offer costs: where it
	// only queues the message for a writer of the session's own, one
	// goroutine's offers run from the CPU's cache, and several would only
	// contend for memory.
	start := time.Now()
	n := offer(sessions[:broadcastProbe], m)
	rest := sessions[broadcastProbe:]
	if time.Since(start) < broadcastProbe*broadcastWrite {
		return n + offer(rest, m)
	}
	size := (len(rest) + parts - 1) / parts
	var took atomic.Int64
	var wg sync.WaitGroup
	for more := rest[size:]; len(more) > 0; more = more[min(size, len(more)):] {
		part := more[:min(size, len(more))]
		wg.Go(func() { took.Add(int64(offer(part, m))) })
	}
	n += offer(rest[:size], m)
	wg.Wait()
	return n + int(took.Load())
}

// Tuning of Broadcast. broadcastPart is the fewest sessions a goroutine
// of a broadcast takes: below it, a goroutine's start costs more than the
// writes it takes off the caller. broadcastProbe is how many sessions
// Broadcast offers m to first, in turn, to learn what an offer costs;
// broadcastWrite is what an offer that writes costs at least (a write
// system call), and one that queues far less.
const (
	broadcastPart  = 256
	broadcastProbe = 32
)

var broadcastWrite = time.Microsecond // a variable for the tests only

// offer offers m to each session in turn and returns how many took it.
func offer(sessions []*Session, m *PreparedMessage) int {
	n := 0
	for _, s := range sessions {
		if s.sendPrepared(context.Background(), m.entry(s), sendOffer) == nil {
			n++
		}
	}
	return n
}

// Broadcast offers m to every session the handler holds; see the
// package-level Broadcast. In a cluster it also hands m to the broker,
// without waiting, for the other nodes to offer to theirs, in the order
// this node broadcast: the count is this node's sessions that took m, for
// the others do not report back. A broadcast carries no history and
// reaches other nodes at most once; to reach every node's sessions in one
// order, with a history to resume from, subscribe them to a topic and
// Publish to it.
func (h *Handler) Broadcast(m *PreparedMessage) int {
	n := h.broadcastLocal(m)
	if h.cluster != nil && m.publication != nil {
		h.cluster.broadcast(m.publication)
	}
	return n
}

// broadcastLocal offers m to this node's sessions.
func (h *Handler) broadcastLocal(m *PreparedMessage) int {
	return Broadcast(h.sessions.snapshot(), m)
}
