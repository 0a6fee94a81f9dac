package conformance

import (
	"fmt"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

func (su suite) testEcho(t *testing.T, name string) {
	e := su.newEnv(t, name, nil)
	ctx := testContext(t, 20*time.Second)
	c := e.dial(ctx, nil)
	s := e.session(ctx)

	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	msgs := []struct {
		typ transport.MessageType
		p   []byte
	}{
		{transport.Text, []byte("hello")},
		{transport.Text, []byte("lines\r\n\r and \u2028 \u2029 NUL\x00 日本 😀")},
		{transport.Text, []byte{}},
		{transport.Binary, binary},
		{transport.Binary, []byte{}},
	}
	for _, m := range msgs {
		if err := c.Send(ctx, m.typ, m.p); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range msgs {
		typ, p, err := c.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if typ != m.typ || string(p) != string(m.p) {
			t.Fatalf("echo = %v %q, want %v %q", typ, p, m.typ, m.p)
		}
	}
	if got := s.Transport(); got != name {
		t.Fatalf("server transport %q, want %q", got, name)
	}
}

func (su suite) testOrdering(t *testing.T, name string) {
	e := su.newEnv(t, name, &session.Options{AckDelay: burstAckDelay})
	ctx := testContext(t, 30*time.Second)
	c := e.dial(ctx, nil)
	const n = 1000
	errc := make(chan error, 1)
	go func() {
		for i := range n {
			if err := c.Send(ctx, transport.Text, fmt.Appendf(nil, "%d", i)); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for i := range n {
		_, p, err := c.Recv(ctx)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if want := fmt.Sprint(i); string(p) != want {
			t.Fatalf("message %d is %q", i, p)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
