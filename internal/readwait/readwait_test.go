package readwait

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/internal/leakcheck"
	"github.com/seed-544bbf9f/comet/internal/testutil"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// bound is how long a test waits for what must happen.
const bound = 10 * time.Second

// pair returns a Waiter on one end of a loopback TCP connection, its
// reader, and the other end.
func pair(t *testing.T) (*Waiter, *bufio.Reader, net.Conn) {
	t.Helper()
	c, peer := testutil.TCPPair(t)
	br := bufio.NewReaderSize(c, 64)
	w := New(c, br)
	if w == nil {
		t.Fatal("New refused a TCP connection")
	}
	return w, br, peer
}

// waitAsync runs Wait in a goroutine and returns its answer's channel.
func waitAsync(w *Waiter) <-chan bool {
	got := make(chan bool, 1)
	go func() { got <- w.Wait() }()
	return got
}

func answer(t *testing.T, got <-chan bool, what string) bool {
	t.Helper()
	select {
	case ok := <-got:
		return ok
	case <-time.After(bound):
		t.Fatalf("%s: Wait did not return within %v", what, bound)
		return false
	}
}

// TestWaitForData: Wait returns true when bytes arrive, and they are all
// there to read, once, through the reader.
func TestWaitForData(t *testing.T) {
	w, br, peer := pair(t)
	got := waitAsync(w)
	peer.Write([]byte("hello"))
	if !answer(t, got, "data") {
		t.Fatal("Wait = false, want true: data arrived")
	}
	b := make([]byte, 5)
	if _, err := io.ReadFull(br, b); err != nil || string(b) != "hello" {
		t.Fatalf("read %q, %v; want hello", b, err)
	}
	// Bytes buffered already: no wait at all.
	peer.Write([]byte("ab"))
	if !w.Wait() {
		t.Fatal("Wait = false with data on the way")
	}
	br.ReadByte()
	if br.Buffered() != 1 || !w.Wait() {
		t.Fatalf("Wait with %d bytes buffered, want at once true", br.Buffered())
	}
}

// TestInterruptLeavesConnectionWhole: an interrupted Wait returns false,
// and the connection then reads what comes, with no deadline left
// behind: a read that timed out in the wait did not break it.
func TestInterruptLeavesConnectionWhole(t *testing.T) {
	w, br, peer := pair(t)
	for range 3 {
		got := waitAsync(w)
		// Before Wait has begun or during it: either way it ends.
		w.Interrupt()
		if answer(t, got, "interrupt") {
			t.Fatal("interrupted Wait = true, want false")
		}
	}
	peer.Write([]byte("after"))
	b := make([]byte, 5)
	if _, err := io.ReadFull(br, b); err != nil || string(b) != "after" {
		t.Fatalf("read after interrupts: %q, %v; want after, no error", b, err)
	}
}

// TestInterruptBeforeWait: an Interrupt with no Wait in progress ends the
// next one at once, and only that one.
func TestInterruptBeforeWait(t *testing.T) {
	w, _, peer := pair(t)
	w.Interrupt()
	w.Interrupt() // twice: still one
	if w.Wait() {
		t.Fatal("Wait after Interrupt = true, want false")
	}
	got := waitAsync(w)
	peer.Write([]byte("x"))
	if !answer(t, got, "data after an interrupt") {
		t.Fatal("second Wait = false, want true")
	}
}

// TestDeadlineKept: the owner's read deadline survives an interrupted
// wait, and a passed one ends Wait with true, the read then failing.
func TestDeadlineKept(t *testing.T) {
	w, br, _ := pair(t)
	w.SetReadDeadline(time.Now().Add(time.Hour))
	got := waitAsync(w)
	w.Interrupt()
	if answer(t, got, "interrupt") {
		t.Fatal("interrupted Wait = true")
	}
	w.SetReadDeadline(time.Unix(2, 0)) // passed
	if !w.Wait() {
		t.Fatal("Wait with a passed deadline = false, want true")
	}
	if _, err := br.ReadByte(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read = %v, want the deadline's error", err)
	}
}

// TestEndAndClose: the peer's end, and the connection's close, end a Wait
// with true; the read then reports them.
func TestEndAndClose(t *testing.T) {
	w, br, peer := pair(t)
	got := waitAsync(w)
	peer.Close()
	if !answer(t, got, "the peer's end") {
		t.Fatal("Wait = false at the peer's end")
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("read = %v, want EOF", err)
	}

	w, br, _ = pair(t)
	got = waitAsync(w)
	w.conn.Close()
	if !answer(t, got, "the close") {
		t.Fatal("Wait = false at the close")
	}
	if _, err := br.ReadByte(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read = %v, want net.ErrClosed", err)
	}
}

// TestNewRefusesOthers: a connection whose reads a timeout could break
// (here an in-memory pipe, standing for any other) gets no Waiter.
func TestNewRefusesOthers(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if w := New(a, bufio.NewReader(a)); w != nil {
		t.Fatal("New accepted a net.Pipe")
	}
}
