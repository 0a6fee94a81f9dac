package trywrite

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/internal/leakcheck"
	"github.com/seed-544bbf9f/comet/internal/testutil"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// pair returns a wrapped client side of a loopback TCP connection and the
// server side, both closed when the test ends.
func pair(t *testing.T) (*Conn, net.Conn) {
	t.Helper()
	c, peer := testutil.TCPPair(t)
	w, ok := Wrap(c)
	if !ok {
		t.Fatal("a TCP connection was not wrapped")
	}
	t.Cleanup(func() { w.Close() })
	return w.(*Conn), peer
}

// TestWriteDoesNotWait writes far more than the socket buffers hold to a
// peer that reads nothing: every Write returns at once, whole, and the
// peer then reads every byte in order.
func TestWriteDoesNotWait(t *testing.T) {
	w, peer := pair(t)
	want := make([]byte, 16<<20)
	rand.Read(want)
	for p := want; len(p) > 0; p = p[min(len(p), 64<<10):] {
		n, err := w.Write(p[:min(len(p), 64<<10)])
		if err != nil || n != min(len(p), 64<<10) {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if w.Pending() == 0 {
		t.Fatal("16 MiB to a peer that reads nothing left nothing kept: the socket buffers cannot hold it")
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the peer read other bytes than were written, or in another order")
	}
	waitFlushed(t, w)
	if w.Pending() != 0 {
		t.Fatalf("%d bytes kept after the flusher went", w.Pending())
	}
}

// waitFlushed waits for the flusher, if one runs, to go.
func waitFlushed(t *testing.T, w *Conn) {
	t.Helper()
	w.mu.Lock()
	flushed := w.flushed
	w.mu.Unlock()
	if flushed == nil {
		return
	}
	select {
	case <-flushed:
	case <-time.After(10 * time.Second):
		t.Fatal("the flusher did not go")
	}
}

// TestErrorReturnedLater: a write kept for later that fails makes the next
// Write fail with its error.
func TestErrorReturnedLater(t *testing.T) {
	w, _ := pair(t)
	chunk := make([]byte, 1<<20)
	for w.Pending() == 0 {
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	w.SetWriteDeadline(time.Now()) // the flusher's blocking write times out
	waitFlushed(t, w)
	_, err := w.Write([]byte("x"))
	if !isTimeout(err) {
		t.Fatalf("Write after a timed-out flush: %v, want a timeout", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestCloseSendsKept: Close lets what is kept reach a peer that reads, and
// then closes: the peer reads every byte, then EOF.
func TestCloseSendsKept(t *testing.T) {
	w, peer := pair(t)
	want := make([]byte, 8<<20)
	rand.Read(want)
	if _, err := w.Write(want); err != nil {
		t.Fatal(err)
	}
	read := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(peer)
		read <- b
	}()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := <-read; !bytes.Equal(got, want) {
		t.Fatalf("the peer read %d bytes before EOF, want the %d written", len(got), len(want))
	}
}

// TestWrapOthers: a connection without a socket of its own is left as it
// is.
func TestWrapOthers(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if c, ok := Wrap(a); ok || c != a {
		t.Fatal("a net.Pipe was wrapped")
	}
}

// TestDeadlineOnlyForKept: a write the socket takes at once waits for
// nothing, so a past write deadline does not fail it; it bounds only what
// is kept for later.
func TestDeadlineOnlyForKept(t *testing.T) {
	w, peer := pair(t)
	w.SetWriteDeadline(time.Now().Add(-time.Second))
	if _, err := w.Write([]byte("now")); err != nil {
		t.Fatalf("a write the socket takes at once failed on a past deadline: %v", err)
	}
	got := make([]byte, 3)
	if _, err := io.ReadFull(peer, got); err != nil || string(got) != "now" {
		t.Fatalf("peer read %q, %v", got, err)
	}
}

// TestDeadlineAfterFlush: the deadline a flush ran under does not outlive
// it. Once what was kept has gone, a later write the socket takes at once
// succeeds though that deadline has passed.
func TestDeadlineAfterFlush(t *testing.T) {
	t.Parallel() // it waits for its deadline to pass
	w, peer := pair(t)
	// Long enough for the flush to end well before it, on a busy machine.
	deadline := time.Now().Add(2 * time.Second)
	w.SetWriteDeadline(deadline)
	chunk := make([]byte, 1<<20)
	for w.Pending() == 0 {
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	go io.Copy(io.Discard, peer)
	waitFlushed(t, w)
	time.Sleep(time.Until(deadline) + 10*time.Millisecond) // the flush's deadline passes; no event marks it
	if _, err := w.Write([]byte("later")); err != nil {
		t.Fatalf("a write after a finished flush failed on its old deadline: %v", err)
	}
}

// TestWriteTimeout: under SetWriteTimeout, a flush to a peer that reads
// nothing fails once the timeout has passed, though the writer clears the
// deadline before each write as gorilla/websocket does; the next Write
// returns the timeout.
func TestWriteTimeout(t *testing.T) {
	w, _ := pair(t)
	w.SetWriteTimeout(100 * time.Millisecond)
	chunk := make([]byte, 1<<20)
	for w.Pending() == 0 {
		w.SetWriteDeadline(time.Time{})
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	w.SetWriteDeadline(time.Time{})
	if _, err := w.Write([]byte("kept")); err != nil {
		t.Fatalf("a write kept behind others failed at once: %v", err)
	}
	waitFlushed(t, w)
	if _, err := w.Write([]byte("x")); !isTimeout(err) {
		t.Fatalf("Write after a flush past its timeout: %v, want a timeout", err)
	}
}

// TestWriteTimeoutReadingPeer: the timeout bounds a write that waits, not
// the flush: a peer that reads gets every byte, and a later write the
// socket takes at once succeeds.
func TestWriteTimeoutReadingPeer(t *testing.T) {
	w, peer := pair(t)
	w.SetWriteTimeout(time.Minute)
	want := make([]byte, 8<<20)
	rand.Read(want)
	if _, err := w.Write(want); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(peer, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the peer read other bytes than were written: %v", err)
	}
	waitFlushed(t, w)
	if _, err := w.Write([]byte("later")); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentWritesWhole writes from several goroutines at once, far
// more than the socket buffers hold, to a peer that reads only once they
// are done: each Write's bytes arrive together, none cut into by another's.
func TestConcurrentWritesWhole(t *testing.T) {
	w, peer := pair(t)
	const writers, writes, size = 4, 64, 8 << 10
	done := make(chan error, writers)
	for g := range writers {
		go func() {
			p := bytes.Repeat([]byte{byte('a' + g)}, size)
			for range writes {
				if _, err := w.Write(p); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range writers {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	got := make([]byte, writers*writes*size)
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(got); i += size {
		chunk := got[i : i+size]
		if n := bytes.Count(chunk, chunk[:1]); n != size {
			t.Fatalf("the write at byte %d holds %d bytes of %q and %d of others: writes interleaved", i, n, chunk[:1], size-n)
		}
	}
	waitFlushed(t, w)
}
