package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// Stream sizes.
const (
	// streamSlack is what a stream line or event may hold beyond maxBatch:
	// padding lines (at most 8 KiB, PROTOCOL.md section 5.1), the SSE
	// preamble's 2 KiB comment, field names.
	streamSlack = 16 << 10
	// streamReadSize is the read buffer of one stream.
	streamReadSize = 32 << 10
)

// Why a stream ended, besides the errors shared with other transports.
var (
	errRecycled    = errors.New("comet: stream recycled by the server")
	errStreamEnded = errors.New("comet: stream ended by the server")
	errStreamCut   = errors.New("comet: stream cut inside a frame")
)

// streamFormat is what tells the stream transports apart: the wire format
// of the response and how it ends.
type streamFormat struct {
	name      string // the transport's name, also its path
	accept    string // the Accept header of the GET, if any
	recycles  bool   // the server ends responses after a byte budget
	checkType func(contentType string) error
	newParser func(max int) streamParser
}

// streamParser turns a stream's bytes into batches of frames.
type streamParser interface {
	// feed parses the next chunk and calls emit with each batch it
	// completes (one or more frames, "\n"-separated), valid during the call
	// only; an error from emit stops it.
	feed(chunk []byte, emit func(batch []byte) error) error
	// partial reports whether the bytes so far end inside a batch.
	partial() bool
}

// streamAttachment is an SSE or XHR-streaming response carrying the
// session downstream, while upstream frames go by POST (PROTOCOL.md
// sections 5.1 and 6). A reader goroutine, started by attachStream,
// applies the response; serve adds a sender and a prober.
type streamAttachment struct {
	c        *Conn
	format   *streamFormat
	params   transport.AttachParams
	cancel   context.CancelFunc // ends the request
	done     chan error         // the reader's outcome; buffered
	interval time.Duration      // from the open frame; set before opened is closed
	probes   probeState
	demote   bool // a buffered stream is left for long-polling

	start    time.Time    // when the attach began
	received atomic.Int64 // when bytes last arrived, as time since start
}

// lastReceived returns when bytes last arrived on the stream.
func (s *streamAttachment) lastReceived() time.Time {
	return s.start.Add(time.Duration(s.received.Load()))
}

// attachStream opens a stream of format f and waits, within timeout, for
// its open frame. A stream whose open frame does not arrive
// in time is taken for one a proxy buffers: it fails with stream_buffered
// (PROTOCOL.md section 8).
func (c *Conn) attachStream(f *streamFormat, why string, timeout time.Duration) (attachment, error) {
	fail := func(why string, err error) (attachment, error) {
		if c.ctx.Err() != nil {
			return nil, c.ctx.Err()
		}
		return nil, &attachError{transport: f.name, why: why, err: err}
	}
	tctx, cancel := context.WithTimeout(c.ctx, timeout)
	ticket, err := c.ticket(tctx)
	cancel()
	if err != nil {
		return fail("", err)
	}
	c.mu.Lock()
	c.attempt++
	c.postAttempt = c.attempt
	p := transport.AttachParams{Session: c.sid, Ticket: ticket, Attempt: c.attempt, Ack: c.in.n, Deliver: true,
		Heartbeat: c.lim.hb, Reason: why}
	c.mu.Unlock()

	ctx, cancelReq := context.WithCancel(c.ctx)
	s := &streamAttachment{c: c, format: f, params: p, cancel: cancelReq, done: make(chan error, 1),
		demote: c.canDemote(f.name), start: time.Now()}
	opened := make(chan struct{})
	go func() {
		defer cancelReq()
		s.done <- s.read(ctx, opened)
	}()
	return c.awaitStream(s, opened, timeout)
}

// awaitStream waits for the open frame of the stream s, whose reader
// closes opened once it applied it, for timeout at the most, and returns
// s once it came; a stream that fails first, or does not open in time,
// is ended.
func (c *Conn) awaitStream(s *streamAttachment, opened <-chan struct{}, timeout time.Duration) (attachment, error) {
	f := s.format
	fail := func(why string, err error) (attachment, error) {
		if c.ctx.Err() != nil {
			return nil, c.ctx.Err()
		}
		return nil, &attachError{transport: f.name, why: why, err: err}
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-opened:
		return s, nil
	case <-timer.C:
	case err := <-s.done:
		select {
		case <-opened:
			s.done <- err // serve sees the outcome
			return s, nil
		default:
			return fail("", err)
		}
	case <-c.ctx.Done():
	}
	select {
	case <-opened:
		return s, nil // the open frame came as the timer fired
	default:
	}
	s.cancel()
	<-s.done
	if c.ctx.Err() != nil {
		return nil, c.ctx.Err()
	}
	c.markBuffered(f.name)
	return fail(whyStreamBuffered, fmt.Errorf("%w within %v", errNoOpen, timeout))
}

// read sends the attach GET and applies the response as it arrives, until
// it ends, fails, goes silent or is superseded. It closes opened once the
// open frame has been applied.
func (s *streamAttachment) read(ctx context.Context, opened chan<- struct{}) error {
	c := s.c
	q := url.Values{}
	s.params.Encode(q)
	q.Set("z", cacheBuster())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint("/"+s.format.name, q), nil)
	if err != nil {
		return err
	}
	if s.format.accept != "" {
		req.Header.Set("Accept", s.format.accept)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		data, _ := readBody(resp)
		return httpError(resp, data)
	}
	return s.readResponse(ctx, resp, opened)
}

// readResponse applies the response of the stream's GET as it arrives,
// until it ends, fails, goes silent or is superseded. It closes opened
// once the open frame has been applied.
func (s *streamAttachment) readResponse(ctx context.Context, resp *http.Response, opened chan<- struct{}) error {
	c := s.c
	defer resp.Body.Close()
	if s.format.checkType != nil {
		if err := s.format.checkType(resp.Header.Get("Content-Type")); err != nil {
			return err
		}
	}

	// The watchdog ends a stream silent for its interval plus the attach
	// timeout (PROTOCOL.md section 7); it runs only while the reader
	// reads, not while Recv's full buffer holds it back.
	var silent atomic.Bool
	watchdog := time.AfterFunc(time.Hour, func() {
		silent.Store(true)
		s.cancel()
	})
	watchdog.Stop()
	defer watchdog.Stop()

	r := streamReader{ctx: ctx, s: s, opened: opened, parser: s.format.newParser(c.lim.maxBatch + streamSlack)}
	buf := make([]byte, streamReadSize)
	for {
		if err := r.waitForRoom(ctx); err != nil {
			return err
		}
		if r.open {
			watchdog.Reset(s.interval + c.lim.attachTimeout)
		}
		n, rerr := resp.Body.Read(buf)
		watchdog.Stop()
		if n > 0 {
			s.received.Store(int64(time.Since(s.start)))
			if err := r.apply(buf[:n]); err != nil {
				return err
			}
		}
		switch {
		case rerr == nil:
		case silent.Load():
			return fmt.Errorf("%w for %v", errSilent, s.interval+c.lim.attachTimeout)
		case rerr == io.EOF:
			return r.ended()
		default:
			return rerr
		}
	}
}

// streamReader is the state of one stream's reader goroutine.
type streamReader struct {
	ctx      context.Context // the request's
	s        *streamAttachment
	opened   chan<- struct{}
	parser   streamParser
	open     bool // the open frame has been applied
	progress bool // a message or close arrived: the path carries the session
	frames   []transport.Frame
	lastBeat time.Time // when the last heartbeat arrived, zero after a pause
}

// waitForRoom holds the reader while Recv's buffer is full, so that TCP
// pushes back on the server. Heartbeats read after a pause arrive
// together by the client's doing, not a proxy's: the pause resets the
// burst check.
func (r *streamReader) waitForRoom(ctx context.Context) error {
	c := r.s.c
	c.mu.Lock()
	room := c.roomLocked()
	c.mu.Unlock()
	if room {
		return nil
	}
	r.lastBeat = time.Time{}
	r.s.probes.hold(true)
	defer r.s.probes.hold(false)
	return c.waitUntil(ctx, c.roomLocked)
}

// apply parses a chunk and applies the frames it completes.
func (r *streamReader) apply(chunk []byte) error {
	s, c := r.s, r.s.c
	r.frames = r.frames[:0]
	err := r.parser.feed(chunk, func(batch []byte) error {
		var err error
		r.frames, err = appendFrames(r.frames, batch)
		return err
	})
	frames := r.frames
	if !r.open && len(frames) > 0 {
		f := &frames[0]
		switch {
		case f.Type != transport.TypeOpen:
			return errNoOpen
		case f.Attempt != s.params.Attempt:
			return errStale
		}
		s.interval = millis(int(f.Interval), c.lim.heartbeat)
		c.opened(f, s.params.Ack)
		r.open = true
		close(r.opened)
		frames = frames[1:]
	}
	if err != nil && !r.open {
		// Whatever answered is not a Comet stream: a proxy's page, say.
		return fmt.Errorf("%w: %w", errNoOpen, err)
	}
	for i := range frames {
		switch f := &frames[i]; f.Type {
		case transport.TypeEcho:
			s.probes.answer(f.Token)
		case transport.TypeHeartbeat:
			if err := r.beat(); err != nil {
				return err
			}
		case transport.TypeText, transport.TypeBinary, transport.TypeClose, transport.TypeSubscribed:
			r.progress = true
		}
	}
	if len(frames) > 0 && c.receive(frames) {
		return errSuperseded
	}
	if err != nil {
		// The frames before the fault are applied; the session closes on it,
		// and the sender carries the close upstream. The reader reads no
		// more and waits for the end.
		c.failDecode(err)
		<-r.ctx.Done()
		return r.ctx.Err()
	}
	return nil
}

// beat checks a heartbeat's timing. The server writes one only after its
// interval of silence, so two that arrive within half an interval were
// held back and released together: a proxy buffers the stream
// (PROTOCOL.md section 8).
func (r *streamReader) beat() error {
	now := time.Now()
	last := r.lastBeat
	r.lastBeat = now
	if last.IsZero() || now.Sub(last) >= r.s.interval/2 {
		return nil
	}
	return r.s.buffered(fmt.Sprintf("heartbeats %v apart on an interval of %v", now.Sub(last), r.s.interval))
}

// ended says why a response that reached its end did: recycled by the
// server at a frame boundary after carrying the session, or otherwise
// ended or cut.
func (r *streamReader) ended() error {
	switch {
	case !r.open:
		return errNoOpen
	case r.parser.partial():
		return errStreamCut
	case r.s.format.recycles && r.progress:
		return errRecycled
	}
	return errStreamEnded
}

// appendFrames decodes the frames of a batch onto frames, skipping
// padding lines.
func appendFrames(frames []transport.Frame, batch []byte) ([]transport.Frame, error) {
	for len(batch) > 0 {
		var line []byte
		line, batch, _ = bytes.Cut(batch, []byte{'\n'})
		if isPadding(line) {
			continue
		}
		frames = append(frames, transport.Frame{})
		if err := transport.DecodeFrame(line, &frames[len(frames)-1]); err != nil {
			return frames[:len(frames)-1], err
		}
	}
	return frames, nil
}

// serve runs the sender, and the prober when a buffered stream could be
// left for another transport, beside the reader until one of them ends or
// ctx does. A stream with nothing to fall back to is not probed: a failed
// probe could change nothing, and would cost a POST per attach and a
// goroutine for the stream's life.
func (s *streamAttachment) serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	running := 1
	go func() { errs <- s.c.sendLoop(ctx, s.interval) }()
	if s.demote {
		running++
		go func() { errs <- s.probeLoop(ctx) }()
	}
	var first error
	select {
	case first = <-s.done:
	case first = <-errs:
		running--
		s.cancel()
		<-s.done
	}
	cancel()
	for range running {
		<-errs
	}
	return first
}
