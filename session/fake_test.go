package session

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/transport"
)

// waitLimit bounds every wait for an event outside a synctest bubble. It is
// the verdict on a test that has already failed, not a pause: the events
// waited for take microseconds.
const waitLimit = 10 * time.Second

var errFakeClosed = errors.New("fake downstream closed")

// fakeDownstream is the transport.Downstream of these tests. It decodes
// each batch the session writes, as a client would, and hands its frames
// over on a channel. It can be told to fail, or to block until closed; a
// poll fake ends after one batch with transport.ErrDone, as the long-poll
// transport does.
type fakeDownstream struct {
	t       testing.TB
	poll    bool
	batches chan []transport.Frame
	closed  chan struct{}
	once    sync.Once

	mu      sync.Mutex
	fail    error         // WriteBatch returns it and writes nothing
	hold    bool          // WriteBatch blocks until Close
	held    chan struct{} // closed when a write starts to block
	heldMu  sync.Once
	largest int // bytes of the largest batch written

	buf []transport.Frame // read but not yet expected; the test goroutine's
}

func newFake(t testing.TB) *fakeDownstream {
	return &fakeDownstream{
		t:       t,
		batches: make(chan []transport.Frame, 1024),
		closed:  make(chan struct{}),
		held:    make(chan struct{}),
	}
}

func newFakePoll(t testing.TB) *fakeDownstream {
	f := newFake(t)
	f.poll = true
	return f
}

// failWith makes every later write fail with err.
func (f *fakeDownstream) failWith(err error) {
	f.mu.Lock()
	f.fail = err
	f.mu.Unlock()
}

// holdWrites makes every later write block until Close, like a write to a
// client that stopped reading.
func (f *fakeDownstream) holdWrites() {
	f.mu.Lock()
	f.hold = true
	f.mu.Unlock()
}

func (f *fakeDownstream) WriteBatch(b *transport.Batch) error {
	f.mu.Lock()
	fail, hold := f.fail, f.hold
	if fail == nil && !hold {
		f.largest = max(f.largest, len(b.Bytes))
	}
	f.mu.Unlock()
	if fail != nil {
		return fail
	}
	if hold {
		f.heldMu.Do(func() { close(f.held) })
		<-f.closed
		return errFakeClosed
	}
	frames, err := transport.DecodeBatch(b.Bytes)
	if err != nil {
		f.t.Errorf("the session wrote a batch a client cannot decode: %q: %v", b.Bytes, err)
		return err
	}
	if len(frames) != b.Len() || !strings.HasSuffix(string(b.Bytes), "\n") {
		f.t.Errorf("batch %q holds %d frames, its spans say %d", b.Bytes, len(frames), b.Len())
	}
	select {
	case f.batches <- frames:
	case <-f.closed:
		return errFakeClosed
	}
	if f.poll {
		return transport.ErrDone
	}
	return nil
}

func (f *fakeDownstream) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

func (f *fakeDownstream) isClosed() bool {
	select {
	case <-f.closed:
		return true
	default:
		return false
	}
}

// largestBatch returns the size of the largest batch written so far.
func (f *fakeDownstream) largestBatch() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.largest
}

// next returns the next batch written, waiting for it.
func (f *fakeDownstream) next(t testing.TB) []transport.Frame {
	t.Helper()
	if len(f.buf) > 0 {
		t.Fatalf("frames %q were read but not expected", wire(f.buf))
	}
	return waitFor(t, f.batches, "batch")
}

// expect waits for the next len(want) frames, whichever batches carry
// them, and checks them against want, written as on the wire with "T" for
// the open frame's ticket. It returns the frames.
func (f *fakeDownstream) expect(t testing.TB, want ...string) []transport.Frame {
	t.Helper()
	for len(f.buf) < len(want) {
		f.buf = append(f.buf, waitFor(t, f.batches, fmt.Sprintf("frame %d of %q", len(f.buf)+1, want))...)
	}
	got := f.buf[:len(want)]
	f.buf = f.buf[len(want):]
	if w := wire(got); !slices.Equal(w, want) {
		t.Fatalf("downstream frames\n got %q\nwant %q", w, want)
	}
	return got
}

// drain returns every batch written so far without waiting, rendered by
// wire. In a bubble, call it after synctest.Wait.
func (f *fakeDownstream) drain(t testing.TB) [][]string {
	t.Helper()
	if len(f.buf) > 0 {
		t.Fatalf("frames %q were read but not expected", wire(f.buf))
	}
	var out [][]string
	for {
		select {
		case b := <-f.batches:
			out = append(out, wire(b))
		default:
			return out
		}
	}
}

// expectBatches checks that exactly the batches want, and nothing else,
// have been written since the last look. In a bubble, call it after
// synctest.Wait.
func (f *fakeDownstream) expectBatches(t testing.TB, want ...[]string) {
	t.Helper()
	got := f.drain(t)
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("downstream batches\n got %q\nwant %q", got, want)
	}
}

// wire renders frames as they travel, with the open frame's random ticket
// replaced by "T".
func wire(frames []transport.Frame) []string {
	out := make([]string, len(frames))
	for i, f := range frames {
		if f.Type == transport.TypeOpen {
			f.Token = "T"
		}
		out[i] = string(transport.AppendFrame(nil, &f))
	}
	return out
}

// waitFor returns the next value from ch, or fails t after waitLimit. In a
// bubble the limit runs on the fake clock, so use it there only for events
// that need no time to pass.
func waitFor[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	select {
	case v := <-ch:
		return v
	case <-ctx.Done():
		t.Fatalf("no %s within %v", what, waitLimit)
		panic("unreachable")
	}
}

// isDone reports whether ch is closed or holds a value, without waiting.
func isDone[T any](ch <-chan T) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// newTestHandler returns a handler with a copy of o (nil for defaults),
// logging to t.
func newTestHandler(t testing.TB, o *Options) *Handler {
	var c Options
	if o != nil {
		c = *o
	}
	if c.Logger == nil {
		c.Logger = testutil.Logger(t)
	}
	return NewHandler(&c)
}

// newTestSession makes a session of h as negotiate does, without HTTP, and
// ends it when the test ends.
func newTestSession(t testing.TB, h *Handler) *Session {
	s := newSession(h, "session-"+randomToken(), randomToken(), RequestInfo{})
	h.sessions.add(s)
	t.Cleanup(func() { s.CloseNow() })
	return s
}

// served is an attachment served on a fake downstream, as a transport
// adapter serves it.
type served struct {
	*attachment
	ds       *fakeDownstream
	exited   chan struct{} // closed when Serve returns
	serveErr error         // Serve's result, set before exited is closed
}

// serve starts serving a new attachment of s on ds. When the test ends the
// attachment is ended and Serve waited for.
func serve(t testing.TB, s *Session, name string, ds *fakeDownstream, d transport.Delivery, p transport.AttachParams) *served {
	a := &served{attachment: s.newAttachment(name, p), ds: ds, exited: make(chan struct{})}
	go func() {
		defer close(a.exited)
		a.serveErr = a.Serve(ds, d)
	}()
	t.Cleanup(func() {
		a.End(nil)
		a.wait(t)
	})
	return a
}

// returned reports, without waiting, whether Serve has returned.
func (a *served) returned() bool { return isDone(a.exited) }

// wait waits for Serve to return and returns its result.
func (a *served) wait(t testing.TB) error {
	t.Helper()
	waitFor(t, a.exited, "return from Serve")
	return a.serveErr
}

func attachStream(t testing.TB, s *Session, p transport.AttachParams) *served {
	return serve(t, s, transport.WebSocket, newFake(t), transport.Stream, p)
}

func attachPoll(t testing.TB, s *Session, p transport.AttachParams) *served {
	return serve(t, s, transport.LongPoll, newFakePoll(t), transport.Poll, p)
}

// deliver returns the parameters of a delivering attach (d=1).
func deliver(attempt, ack uint64) transport.AttachParams {
	return transport.AttachParams{Attempt: attempt, Ack: ack, Deliver: true}
}

// probe returns the parameters of a probing attach (d=0).
func probe(attempt uint64) transport.AttachParams {
	return transport.AttachParams{Attempt: attempt}
}

// batch joins frames written as on the wire into one batch.
func batch(lines ...string) []byte {
	return []byte(strings.Join(lines, "\n") + "\n")
}

// upstream applies frames, written as on the wire, to s as the POST path
// does, and returns how many the session consumed.
func upstream(t testing.TB, s *Session, lines ...string) (int, error) {
	t.Helper()
	frames, err := transport.DecodeBatch(batch(lines...))
	if err != nil {
		t.Fatalf("upstream frames %q: %v", lines, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rest, err := s.receiveLocked(frames, s.tidx)
	return len(frames) - len(rest), err
}

// mustUpstream is upstream for frames the session must accept in full.
func mustUpstream(t testing.TB, s *Session, lines ...string) {
	t.Helper()
	if n, err := upstream(t, s, lines...); n != len(lines) || err != nil {
		t.Fatalf("upstream %q: consumed %d, %v", lines, n, err)
	}
}

func mustSend(t testing.TB, s *Session, texts ...string) {
	t.Helper()
	for _, text := range texts {
		if err := s.Send(context.Background(), transport.Text, []byte(text)); err != nil {
			t.Fatalf("Send(%q): %v", text, err)
		}
	}
}

// closeError returns err as a *transport.CloseError, failing t if it is
// not one.
func closeError(t testing.TB, err error) *transport.CloseError {
	t.Helper()
	var ce *transport.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *transport.CloseError", err)
	}
	return ce
}

// events records observer events as strings, in order.
type events chan string

// observe sets o.Observer to one that records every event.
func observe(o *Options) events {
	ev := make(events, 256)
	o.Observer = &Observer{
		SessionOpened: func(*Session) { ev <- "opened" },
		SessionClosed: func(_ *Session, ce *transport.CloseError) {
			if ce == nil {
				ev <- "closed without an error"
				return
			}
			ev <- fmt.Sprintf("closed %d %q remote=%v", int(ce.Code), ce.Reason, ce.Remote)
		},
		TransportChanged: func(_ *Session, from, to, reason string) {
			ev <- fmt.Sprintf("changed %q→%q why=%q", from, to, reason)
		},
		TransportLost: func(_ *Session, name string, err error) {
			ev <- fmt.Sprintf("lost %s: %v", name, err)
		},
	}
	return ev
}

// next waits for the next event.
func (ev events) next(t testing.TB) string {
	t.Helper()
	return waitFor(t, ev, "observer event")
}

// drain returns the events recorded so far without waiting.
func (ev events) drain() []string {
	var out []string
	for {
		select {
		case e := <-ev:
			out = append(out, e)
		default:
			return out
		}
	}
}

// happensAt checks, in a bubble, that cond turns true exactly d from now:
// not 1 ms before, and at d.
func happensAt(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	time.Sleep(d - time.Millisecond)
	synctest.Wait()
	if cond() {
		t.Fatalf("%s after %v, before %v", what, d-time.Millisecond, d)
	}
	time.Sleep(time.Millisecond)
	synctest.Wait()
	if !cond() {
		t.Fatalf("%s had not happened after %v", what, d)
	}
}
