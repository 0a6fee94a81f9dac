package client

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

func TestSendValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		typ  transport.MessageType
		p    string
		want error // nil: queued
	}{
		{"text", transport.Text, "héllo", nil},
		{"empty text", transport.Text, "", nil},
		{"binary, not UTF-8", transport.Binary, "\xff\xfe", nil},
		{"text at the limit", transport.Text, strings.Repeat("x", 64), nil},
		{"invalid UTF-8", transport.Text, "bad \xff text", transport.ErrInvalidUTF8},
		{"unpaired surrogate in UTF-8", transport.Text, "\xed\xa0\x80", transport.ErrInvalidUTF8},
		{"text over the limit", transport.Text, strings.Repeat("x", 65), ErrMessageTooBig},
		{"binary over the limit", transport.Binary, strings.Repeat("x", 65), ErrMessageTooBig},
		{"unknown type", transport.MessageType(9), "x", ErrInvalidMessageType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestConn(t, "http://127.0.0.1:1/comet", nil)
			err := c.Send(context.Background(), tc.typ, []byte(tc.p))
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Send = %v, want %v", err, tc.want)
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			if queued := c.out.Len() == 1; queued != (tc.want == nil) {
				t.Fatalf("queued = %v after Send = %v: a refused message must not be sent", queued, err)
			}
		})
	}
}

func TestSendWaitsForWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestConn(t, "http://127.0.0.1:1/comet", &Options{WindowMessages: 2})
		ctx := context.Background()
		for _, m := range []string{"1", "2"} {
			if err := c.Send(ctx, transport.Text, []byte(m)); err != nil {
				t.Fatalf("Send: %v", err)
			}
		}
		short, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := c.Send(short, transport.Text, []byte("3")); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Send to a full window = %v, want its context's error", err)
		}

		sent := make(chan error)
		go func() { sent <- c.Send(ctx, transport.Text, []byte("3")) }()
		synctest.Wait()
		select {
		case err := <-sent:
			t.Fatalf("Send returned %v with the window full", err)
		default:
		}
		c.receive([]transport.Frame{{Type: transport.TypeAck, Ack: 1}})
		if err := <-sent; err != nil {
			t.Fatalf("Send after an ack: %v", err)
		}

		go func() { sent <- c.Send(ctx, transport.Text, []byte("4")) }()
		synctest.Wait()
		c.endWith(&transport.CloseError{Code: transport.CloseGoingAway})
		if err := <-sent; transport.CloseStatus(err) != transport.CloseGoingAway {
			t.Fatalf("Send blocked when the session ended = %v, want the CloseError", err)
		}
	})
}

func TestRecvContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestConn(t, "http://127.0.0.1:1/comet", nil)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, _, err := c.Recv(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Recv = %v, want its context's error", err)
		}
		got := make(chan string)
		go func() {
			_, p, _ := c.Recv(context.Background())
			got <- string(p)
		}()
		synctest.Wait()
		c.receive([]transport.Frame{msg(1, "late")})
		if p := <-got; p != "late" {
			t.Fatalf("Recv = %q, want late", p)
		}
	})
}

func TestReceiveBufferStopsReading(t *testing.T) {
	c := newTestConn(t, "http://127.0.0.1:1/comet", &Options{ReceiveBuffer: 2})
	c.receive([]transport.Frame{msg(1, "a"), msg(2, "b"), msg(3, "c")}) // one batch is never split
	c.mu.Lock()
	room, queued := c.roomLocked(), len(c.in.queue)
	c.mu.Unlock()
	if room || queued != 3 {
		t.Fatalf("room=%v with %d queued; want no room, nothing dropped", room, queued)
	}
	c.Recv(context.Background())
	c.Recv(context.Background())
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.roomLocked() {
		t.Fatal("no room after Recv drained the buffer")
	}
}

func TestCloseInvalidCode(t *testing.T) {
	c := newTestConn(t, "http://127.0.0.1:1/comet", nil)
	for _, code := range []transport.CloseCode{transport.CloseProtocolError, transport.CloseSessionExpired, 5000, 0} {
		if err := c.Close(code, ""); !errors.Is(err, ErrInvalidCloseCode) {
			t.Errorf("Close(%d) = %v, want ErrInvalidCloseCode", code, err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeErr != nil || c.out.Len() != 0 {
		t.Fatal("a refused Close changed the session")
	}
}

func TestCloseTimesOut(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  time.Duration
		want time.Duration
	}{
		{"default", 0, 5 * time.Second},
		{"CloseTimeout", 750 * time.Millisecond, 750 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newTestConn(t, "http://127.0.0.1:1/comet", &Options{CloseTimeout: tc.set})
				start := time.Now()
				c.mu.Lock()
				c.closeErr = &transport.CloseError{Code: transport.CloseNormal}
				c.queueCloseLocked(transport.CloseNormal, "")
				c.mu.Unlock()
				<-c.ctx.Done()
				if d := time.Since(start); d != tc.want {
					t.Fatalf("the session ended %v after Close, want %v", d, tc.want)
				}
				c.mu.Lock()
				defer c.mu.Unlock()
				if !c.timedOut {
					t.Fatal("timedOut not set")
				}
			})
		})
	}
}

func TestCloseHandshake(t *testing.T) {
	for _, tc := range []struct {
		name   string
		steps  func(c *Conn)
		finish bool
	}{
		{"our close written, no answer yet", func(c *Conn) { c.wroteLocked(c.closeSeq) }, false},
		{"answer received, not yet acknowledged", func(c *Conn) {
			c.wroteLocked(c.closeSeq)
			c.in.n = 1
			c.peerClosedLocked(&transport.Frame{Type: transport.TypeClose, Seq: 1, Code: 1000})
		}, false},
		{"answer received and acknowledged", func(c *Conn) {
			c.wroteLocked(c.closeSeq)
			c.in.n = 1
			c.peerClosedLocked(&transport.Frame{Type: transport.TypeClose, Seq: 1, Code: 1000})
			c.in.ackSent(1)
			c.checkFinishedLocked()
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestConn(t, "http://127.0.0.1:1/comet", nil)
			c.mu.Lock()
			c.closeErr = &transport.CloseError{Code: transport.CloseNormal}
			c.queueCloseLocked(transport.CloseNormal, "")
			tc.steps(c)
			c.mu.Unlock()
			if finished := c.ctx.Err() != nil; finished != tc.finish {
				t.Fatalf("finished = %v, want %v", finished, tc.finish)
			}
		})
	}
}
