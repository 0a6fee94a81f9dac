package window

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/seed-544bbf9f/comet/transport"
)

func text(s string) Entry {
	p := transport.AppendPayload(nil, transport.TypeText, []byte(s))
	return Entry{Type: transport.TypeText, Payload: p, Size: len(s)}
}

func TestBounds(t *testing.T) {
	w := New(3, 100)
	if !w.HasRoom(1000) {
		t.Fatal("an empty window refused a message larger than its bytes: it would wait forever")
	}
	w.Push(text(strings.Repeat("x", 60)))
	if w.HasRoom(41) {
		t.Fatal("the window took more than its bytes")
	}
	if !w.HasRoom(40) {
		t.Fatal("the window refused a message that fits")
	}
	w.Push(text("a"))
	if seq := w.Push(text("b")); seq != 3 || w.Last() != 3 {
		t.Fatalf("the third Push = %d, Last = %d; want 3, 3", seq, w.Last())
	}
	if w.HasRoom(0) {
		t.Fatal("the window took more than its messages")
	}
	if released, err := w.Ack(1); !released || err != nil {
		t.Fatalf("Ack(1) = %v, %v", released, err)
	}
	if w.bytes != 2 || w.Len() != 2 || w.Acked() != 1 || !w.HasRoom(98) {
		t.Fatalf("after Ack(1): %d bytes, %d messages, acked %d; want 2, 2, 1 and room", w.bytes, w.Len(), w.Acked())
	}
	if e := w.Entry(2); string(e.Payload) != `"a"` {
		t.Fatalf("Entry(2) = %s, want \"a\"", e.Payload)
	}
	if released, _ := w.Ack(1); released {
		t.Fatal("a repeated ack released something")
	}
	if _, err := w.Ack(4); err == nil {
		t.Fatal("an ack of a message never sent was accepted")
	}
}

func TestResend(t *testing.T) {
	w := New(10, 1000)
	for _, s := range []string{"one", "two", "three"} {
		w.Push(text(s))
	}
	w.Push(Entry{Type: transport.TypeClose, Close: &transport.CloseError{Code: 4000, Reason: "bye", Retry: 7}})

	var b transport.Batch
	if last := w.AppendTo(&b, 0, 1000); last != 4 {
		t.Fatalf("AppendTo = %d, want 4", last)
	}
	want := "[\"m\",1,\"one\"]\n[\"m\",2,\"two\"]\n[\"m\",3,\"three\"]\n[\"c\",4,4000,\"bye\",7]\n"
	if string(b.Bytes) != want || b.Len() != 4 || b.Frames[3].Seq != 4 {
		t.Fatalf("batch = %q (%d frames), want %q", b.Bytes, b.Len(), want)
	}

	// The peer acknowledged 2 on a new path: resend from 3.
	w.Ack(2)
	b.Reset()
	if last := w.AppendTo(&b, 0, 1000); last != 4 || !strings.HasPrefix(string(b.Bytes), `["m",3,`) {
		t.Fatalf("after Ack(2): AppendTo = %d, %q; want a resend from 3", last, b.Bytes)
	}
	b.Reset()
	if last := w.AppendTo(&b, 4, 1000); last != 4 || b.Len() != 0 {
		t.Fatalf("everything written: AppendTo = %d, %q; want nothing", last, b.Bytes)
	}
	if w.PendingAfter(4) || !w.PendingAfter(3) {
		t.Fatal("PendingAfter disagrees with AppendTo")
	}
}

func TestBatchLimit(t *testing.T) {
	w := New(10, 1000)
	for range 5 {
		w.Push(text(strings.Repeat("x", 40)))
	}
	var b transport.Batch
	last := w.AppendTo(&b, 0, 120)
	if last != 2 || len(b.Bytes) > 120 || b.Len() != 2 {
		t.Fatalf("AppendTo within 120 bytes = %d (%d bytes, %d frames), want 2 messages", last, len(b.Bytes), b.Len())
	}
	b.Reset()
	b.Append(&transport.Frame{Type: transport.TypeKey, Token: strings.Repeat("k", 100)})
	if last := w.AppendTo(&b, 0, 120); last != 1 {
		t.Fatalf("AppendTo after a large key frame = %d, want 1: the first message always goes", last)
	}
}

func TestAccept(t *testing.T) {
	var last uint64
	for _, s := range []struct {
		seq   uint64
		fresh bool
		gap   bool
	}{
		{1, true, false},
		{2, true, false},
		{2, false, false}, // a resend after resume
		{1, false, false},
		{3, true, false},
		{5, false, true}, // 4 never came
	} {
		fresh, err := Accept(last, s.seq)
		if fresh != s.fresh || (err != nil) != s.gap {
			t.Fatalf("Accept(%d, %d) = %v, %v; want fresh=%v gap=%v", last, s.seq, fresh, err, s.fresh, s.gap)
		}
		if fresh {
			last = s.seq
		}
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		typ  transport.MessageType
		p    string
		want error
	}{
		{"text", transport.Text, "héllo", nil},
		{"binary", transport.Binary, "\xff\x00", nil},
		{"at the limit", transport.Binary, strings.Repeat("x", 8), nil},
		{"too big", transport.Text, strings.Repeat("x", 9), transport.ErrMessageTooBig},
		{"invalid UTF-8", transport.Text, "\xff", transport.ErrInvalidUTF8},
		{"no type", 0, "x", transport.ErrInvalidMessageType},
		{"close is not a message", 8, "x", transport.ErrInvalidMessageType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.typ, []byte(tc.p), 8)
			if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
				t.Fatalf("Check = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDrop(t *testing.T) {
	w := New(10, 1000)
	w.Push(text("one"))
	w.Push(text("two"))
	w.Ack(1)
	if n := w.Drop(); n != 3 || w.Len() != 0 || w.Bytes() != 0 || w.Last() != 2 {
		t.Fatalf("Drop = %d, then Len %d, Bytes %d, Last %d; want 3, 0, 0, 2", n, w.Len(), w.Bytes(), w.Last())
	}
	if released, err := w.Ack(2); released || err != nil {
		t.Fatalf("Ack of a dropped entry = %v, %v; want a no-op", released, err)
	}
	if seq := w.Push(text("three")); seq != 3 || w.Len() != 1 {
		t.Fatalf("Push after Drop = %d (Len %d), want 3 (1)", seq, w.Len())
	}
}

// TestHeld covers a window whose entries wait for a log: held ones are
// neither sent nor acknowledgeable until released, and a Push behind a
// held one waits with it.
func TestHeld(t *testing.T) {
	w := New(10, 1000)
	w.Push(text("one"))
	if seq := w.PushHeld(text("two")); seq != 2 || w.Ready() != 1 || w.Last() != 2 {
		t.Fatalf("PushHeld = %d, Ready %d, Last %d; want 2, 1, 2", seq, w.Ready(), w.Last())
	}
	if seq := w.Push(text("three")); seq != 3 || w.Ready() != 1 {
		t.Fatalf("a Push behind a held entry: seq %d, Ready %d; want 3, 1", seq, w.Ready())
	}
	var b transport.Batch
	if last := w.AppendTo(&b, 0, 1000); last != 1 || b.Len() != 1 {
		t.Fatalf("AppendTo with 2 held = %d (%d frames), want 1", last, b.Len())
	}
	if w.PendingAfter(1) {
		t.Fatal("PendingAfter counts a held entry")
	}
	if _, err := w.Ack(2); err == nil {
		t.Fatal("an ack of a held message was accepted")
	}
	w.Release(2)
	if w.Ready() != 2 || !w.PendingAfter(1) {
		t.Fatalf("Release(2): Ready %d, want 2 and pending", w.Ready())
	}
	w.Release(9)
	if w.Ready() != 3 {
		t.Fatalf("Release beyond Last: Ready %d, want 3", w.Ready())
	}
	w.Release(1)
	if w.Ready() != 3 {
		t.Fatal("Release went back")
	}
	if released, err := w.Ack(3); !released || err != nil || w.Len() != 0 {
		t.Fatalf("Ack(3) = %v, %v with %d left", released, err, w.Len())
	}
}

// TestResume covers a window rebuilt from a log: numbering goes on after
// the ack, and the entries pushed back are ready at once.
func TestResume(t *testing.T) {
	w := Resume(10, 1000, 41)
	if w.Acked() != 41 || w.Last() != 41 || w.Ready() != 41 || w.Len() != 0 {
		t.Fatalf("Resume(41): acked %d, last %d, ready %d, len %d", w.Acked(), w.Last(), w.Ready(), w.Len())
	}
	if released, err := w.Ack(41); released || err != nil {
		t.Fatalf("the resumed ack again = %v, %v; want a no-op", released, err)
	}
	if seq := w.Push(text("x")); seq != 42 || w.Ready() != 42 {
		t.Fatalf("first Push = %d, Ready %d; want 42, 42", seq, w.Ready())
	}
	var b transport.Batch
	if last := w.AppendTo(&b, 0, 1000); last != 42 || string(b.Bytes) != "[\"m\",42,\"x\"]\n" {
		t.Fatalf("AppendTo = %d, %q", last, b.Bytes)
	}
}

// TestEntrySize pins the size of an Entry, which a session holds one of
// per unacknowledged message, and every session of a broadcast grows its
// window by at the same message.
func TestEntrySize(t *testing.T) {
	// Two slices, an int, a pointer, and one word for the two bytes: 72
	// bytes on a 64-bit machine.
	word := unsafe.Sizeof(uintptr(0))
	want := 2*unsafe.Sizeof([]byte(nil)) + unsafe.Sizeof(0) + 2*word
	if n := unsafe.Sizeof(Entry{}); n != want {
		t.Errorf("an Entry takes %d bytes, want %d", n, want)
	}
}

// TestWindowsGrowApart: windows that start from the different first
// capacities, pushed the same messages, copy their entries on different
// messages, so that no broadcast pays for every session's copy at once.
func TestWindowsGrowApart(t *testing.T) {
	growing := map[int][]int{} // message number → first capacities whose windows grew on it
	for _, c := range firstCaps {
		w := New(1024, 1<<30)
		w.entries = make([]Entry, 0, c)
		for n := 1; n <= 32; n++ {
			before := cap(w.entries)
			w.Push(Entry{Type: transport.TypeText, Size: 1})
			if cap(w.entries) != before {
				growing[n] = append(growing[n], c)
			}
		}
	}
	for n, cs := range growing {
		if len(cs) > 1 {
			t.Errorf("message %d grows the windows started at %v", n, cs)
		}
	}
	w := New(8, 1<<30)
	w.Push(Entry{Type: transport.TypeText, Size: 1})
	if c := cap(w.entries); !slices.Contains(firstCaps[:], c) {
		t.Errorf("a window's first push made room for %d entries, not one of %v", c, firstCaps)
	}
}
