package transport

import "errors"

// ErrDone is returned by Downstream.WriteBatch after a successful write
// when the downstream has ended by design: a long-poll answered, a stream
// that spent its byte budget. The session simply waits for the next attach.
var ErrDone = errors.New("comet: downstream done")

// ErrLeft is returned by Attachment.Serve when the downstream's Leave
// channel (LeavingDownstream) closed before the attachment ended: the
// attachment goes on, written to as under Attachment.Start, and the
// adapter has its goroutine back.
var ErrLeft = errors.New("comet: serve left the attachment to the session")

// Downstream is the seam between a session and one transport attachment:
// a path that carries frames to the client. It can only write and close;
// whatever the client sends arrives through the HTTP handler that feeds the
// session, so the session layer is testable without HTTP.
//
// The session calls WriteBatch from a single goroutine; Close may be called
// concurrently with it and must unblock it.
type Downstream interface {
	// WriteBatch writes the batch to the client as one unit and flushes it.
	WriteBatch(b *Batch) error
	// Close ends the downstream. It is idempotent.
	Close() error
}

// RawDownstream is a Downstream that can write raw binary messages
// (PROTOCOL.md section 4): it writes each span marked Raw as a message of
// its own (see Batch.WSMessages). The session hands it batches with raw
// spans only when the client agreed to them at negotiate, and hands every
// other Downstream plain batches.
type RawDownstream interface {
	Downstream
	// WritesRaw reports whether this downstream writes raw spans.
	WritesRaw() bool
}

// PromptDownstream is a Downstream whose WriteBatch never waits on the
// client: what the network does not take at once is kept, in order, and
// sent in the background, and a failure is returned by a later
// WriteBatch or Close. The session then writes from the goroutine that
// has something to write (the one calling Send, or broadcasting),
// instead of handing each write to a goroutine of the attachment's. What
// is kept is bounded by the session's window.
type PromptDownstream interface {
	Downstream
	// WritesPromptly reports whether WriteBatch never waits on the client.
	WritesPromptly() bool
}

// LeavingDownstream is a Downstream whose adapter may want Serve's
// goroutine back before the attachment ends: a long-poll parked long
// enough to have its connection taken over from net/http. Once Leave's
// channel is closed, Serve finishes the write it has begun, if any, and
// returns ErrLeft; from then on the attachment is served as Start serves
// one, so WriteBatch must take writes from any goroutine, one at a time.
type LeavingDownstream interface {
	Downstream
	// Leave returns the channel whose close asks Serve to return.
	Leave() <-chan struct{}
}

// Span locates one frame inside a Batch.
type Span struct {
	Type       Type
	Seq        uint64
	Start, End int // Batch.Bytes[Start:End], without the newline
	// Raw marks a raw binary message (PROTOCOL.md section 4): header line
	// and payload, Batch.Bytes[Start:End] with no newline after it, to be
	// written as a binary WebSocket message of its own.
	Raw bool
}

// Batch is a run of encoded frames, each terminated by "\n", with the
// position of each so that a transport that frames them individually (SSE
// events) need not parse them again. The zero Batch is empty and ready.
type Batch struct {
	Bytes  []byte
	Frames []Span
	// Raw makes AppendBinary add raw spans, for a WebSocket peer that
	// agreed to raw binary messages; see WSMessages. Reset keeps it.
	Raw bool
}

// Reset empties b, keeping its memory.
func (b *Batch) Reset() {
	b.Bytes = b.Bytes[:0]
	b.Frames = b.Frames[:0]
}

// Len returns the number of frames in b.
func (b *Batch) Len() int { return len(b.Frames) }

// Append encodes f onto the batch.
func (b *Batch) Append(f *Frame) {
	start := len(b.Bytes)
	b.Bytes = AppendFrame(b.Bytes, f)
	b.end(f.Type, f.Seq, start)
}

// AppendMessage frames a payload already encoded by AppendPayload.
func (b *Batch) AppendMessage(t Type, seq uint64, payload []byte) {
	start := len(b.Bytes)
	b.Bytes = AppendMessage(b.Bytes, t, seq, payload)
	b.end(t, seq, start)
}

// AppendMessageSuffix frames a payload encoded by AppendPayload followed
// by more fields already encoded, such as a topic position
// (AppendPosition).
func (b *Batch) AppendMessageSuffix(t Type, seq uint64, payload, suffix []byte) {
	start := len(b.Bytes)
	b.Bytes = AppendMessage(b.Bytes, t, seq, payload)
	b.Bytes = append(b.Bytes[:len(b.Bytes)-1], suffix...)
	b.Bytes = append(b.Bytes, ']')
	b.end(t, seq, start)
}

func (b *Batch) end(t Type, seq uint64, start int) {
	b.Frames = append(b.Frames, Span{Type: t, Seq: seq, Start: start, End: len(b.Bytes)})
	b.Bytes = append(b.Bytes, '\n')
}

// Reader is an adapter's reading of its connection, one message at a
// time, handed to the session (ReadingAttachment.Read) so that the
// goroutine of an application waiting in Recv can read for itself: a
// message then reaches Recv with no hand-off between goroutines, and an
// idle connection has no goroutine of its own parked in a read.
type Reader interface {
	// Wait blocks until a message's first bytes can be read without
	// waiting on the client, or the connection has failed (ReadOne then
	// says so), and reports true; or until Interrupt, and reports false.
	Wait() bool
	// Interrupt makes the Wait in progress, or else the next one, return
	// false. It may be called from any goroutine.
	Interrupt()
	// ReadOne reads one message and feeds it to the attachment (Receive
	// or ReceiveBinary, or End or Fail when the connection fails or
	// breaks the rules), and reports whether reading goes on. Only one
	// goroutine calls it at a time.
	ReadOne() bool
}

// ReadingAttachment is an Attachment that reads its connection itself,
// through the adapter's Reader, instead of a goroutine of the adapter's
// calling Receive in a loop. The session then reads from the
// application's goroutine while it waits in Recv, and from a goroutine
// of its own whenever nobody does: reading never stops for long while
// the attachment lives, so acks, heartbeats and the client's close are
// seen as before.
type ReadingAttachment interface {
	Attachment
	// Read hands the reading of the connection to the session, once
	// Start has succeeded. It does not block.
	Read(r Reader)
}
