package client

import (
	"strings"
	"testing"

	"github.com/seed-544bbf9f/comet/transport"
)

func text(s string) outMsg {
	p := transport.AppendPayload(nil, transport.TypeText, []byte(s))
	return outMsg{typ: transport.TypeText, payload: p, size: len(s)}
}

func TestOutboxWindow(t *testing.T) {
	o := newOutbox(3, 100)
	if !o.hasRoom(1000) {
		t.Fatal("an empty window refused a message larger than its bytes: it would wait forever")
	}
	o.push(text(strings.Repeat("x", 60)))
	if o.hasRoom(41) {
		t.Fatal("the window took more than its bytes")
	}
	if !o.hasRoom(40) {
		t.Fatal("the window refused a message that fits")
	}
	o.push(text("a"))
	o.push(text("b"))
	if o.hasRoom(0) {
		t.Fatal("the window took more than its messages")
	}
	if released, err := o.ack(1); !released || err != nil {
		t.Fatalf("ack(1) = %v, %v", released, err)
	}
	if o.bytes != 2 || len(o.msgs) != 2 || !o.hasRoom(98) {
		t.Fatalf("after ack(1): %d bytes, %d messages; want 2, 2 and room", o.bytes, len(o.msgs))
	}
	if released, _ := o.ack(1); released {
		t.Fatal("a repeated ack released something")
	}
	if _, err := o.ack(4); err == nil {
		t.Fatal("an ack of a message never sent was accepted")
	}
}

func TestOutboxResend(t *testing.T) {
	o := newOutbox(10, 1000)
	for _, s := range []string{"one", "two", "three"} {
		o.push(text(s))
	}
	o.push(outMsg{typ: transport.TypeClose, code: 4000, reason: "bye"})

	var b transport.Batch
	if last := o.appendTo(&b, 0, 1000); last != 4 {
		t.Fatalf("appendTo = %d, want 4", last)
	}
	want := "[\"m\",1,\"one\"]\n[\"m\",2,\"two\"]\n[\"m\",3,\"three\"]\n[\"c\",4,4000,\"bye\",0]\n"
	if string(b.Bytes) != want {
		t.Fatalf("batch = %q, want %q", b.Bytes, want)
	}

	// The server acknowledged 2 on the new path: resend from 3.
	o.ack(2)
	b.Reset()
	if last := o.appendTo(&b, 0, 1000); last != 4 || !strings.HasPrefix(string(b.Bytes), `["m",3,`) {
		t.Fatalf("after ack(2): appendTo = %d, %q; want a resend from 3", last, b.Bytes)
	}
	b.Reset()
	if last := o.appendTo(&b, 4, 1000); last != 4 || b.Len() != 0 {
		t.Fatalf("everything written: appendTo = %d, %q; want nothing", last, b.Bytes)
	}
	if o.pendingAfter(4) || !o.pendingAfter(3) {
		t.Fatal("pendingAfter disagrees with appendTo")
	}
}

func TestOutboxBatchLimit(t *testing.T) {
	o := newOutbox(10, 1000)
	for range 5 {
		o.push(text(strings.Repeat("x", 40)))
	}
	var b transport.Batch
	last := o.appendTo(&b, 0, 120)
	if last != 2 || len(b.Bytes) > 120 {
		t.Fatalf("appendTo within 120 bytes = %d (%d bytes), want 2 messages", last, len(b.Bytes))
	}
	b.Reset()
	b.Append(&transport.Frame{Type: transport.TypeKey, Token: strings.Repeat("k", 100)})
	if last := o.appendTo(&b, 0, 120); last != 1 {
		t.Fatalf("appendTo after a large key frame = %d, want 1: the first message always goes", last)
	}
}
