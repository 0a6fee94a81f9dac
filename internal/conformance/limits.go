package conformance

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

func (su suite) testOversize(t *testing.T, name string) {
	e := su.newEnv(t, name, &session.Options{MaxMessage: 1024})
	ctx := testContext(t, 20*time.Second)

	// The client refuses to send what the server would refuse.
	c := e.dial(ctx, nil)
	if err := c.Send(ctx, transport.Text, make([]byte, 1025)); err == nil {
		t.Fatal("client sent a message above maxMessage")
	}

	// A peer that sends one anyway is closed with 1009.
	raw := newRawClient(t, e.url, name)
	raw.send(fmt.Sprintf(`["m",1,%q]`, strings.Repeat("x", 1025)))
	if f := raw.closeFrame(ctx); f.Code != int(transport.CloseMessageTooBig) {
		t.Fatalf("close %d %q, want 1009", f.Code, f.Reason)
	}
}

func (su suite) testInvalidUTF8(t *testing.T, name string) {
	e := su.newEnv(t, name, nil)
	ctx := testContext(t, 20*time.Second)
	for _, bad := range []string{`["m",1,"\ud800"]`, "[\"m\",1,\"\xff\"]"} {
		raw := newRawClient(t, e.url, name)
		raw.send(bad)
		if f := raw.closeFrame(ctx); f.Code != int(transport.CloseInvalidPayload) {
			t.Fatalf("%q: close %d %q, want 1007", bad, f.Code, f.Reason)
		}
	}
	c := e.dial(ctx, nil)
	if err := c.Send(ctx, transport.Text, []byte{0xff}); !errors.Is(err, transport.ErrInvalidUTF8) {
		t.Fatalf("client Send of invalid UTF-8 = %v", err)
	}
}

// testDuplicates resends upstream frames, as a retried POST or a resumed
// transport does: each message reaches the application once.
func (su suite) testDuplicates(t *testing.T, name string) {
	got := make(chan string, 8)
	e := su.newEnv(t, name, &session.Options{Serve: func(s *session.Session) {
		for {
			_, p, err := s.Recv(s.Context())
			if err != nil {
				return
			}
			got <- string(p)
		}
	}})
	ctx := testContext(t, 20*time.Second)
	raw := newRawClient(t, e.url, name)
	raw.send(`["m",1,"one"]`)
	raw.send(`["m",1,"one"]`, `["m",2,"two"]`)
	raw.send(`["m",2,"two"]`, `["m",3,"three"]`)
	for _, want := range []string{"one", "two", "three"} {
		select {
		case p := <-got:
			if p != want {
				t.Fatalf("got %q, want %q", p, want)
			}
		case <-ctx.Done():
			t.Fatalf("never got %q", want)
		}
	}
	select {
	case p := <-got:
		t.Fatalf("duplicate delivered: %q", p)
	default:
	}
}

// testProofRequired: the session id alone, as found in a proxy log, must
// not attach or send.
func (su suite) testProofRequired(t *testing.T, name string) {
	e := su.newEnv(t, name, nil)
	ctx := testContext(t, 20*time.Second)
	raw := newRawClient(t, e.url, name)
	// A message waits, so that a poll that is accepted answers at once
	// rather than park for the hold.
	if err := e.session(ctx).Send(ctx, transport.Text, []byte("waiting")); err != nil {
		t.Fatal(err)
	}
	good := raw.attachURL(0)
	forged := strings.Replace(good, "t="+raw.neg.Tickets[0], "t=forged", 1)
	for _, u := range []string{forged, strings.Replace(good, "t="+raw.neg.Tickets[0]+"&", "", 1)} {
		status := attachStatus(ctx, t, name, u)
		if status != http.StatusForbidden && status != http.StatusBadRequest {
			t.Fatalf("attach without a valid ticket: %d", status)
		}
	}
	// A ticket is single use: a replayed URL is refused.
	if status := attachStatus(ctx, t, name, good); status != http.StatusOK && status != http.StatusSwitchingProtocols {
		t.Fatalf("first attach: %d", status)
	}
	if status := attachStatus(ctx, t, name, good); status != http.StatusForbidden {
		t.Fatalf("replayed attach: %d, want 403", status)
	}
	resp, err := http.Post(e.url+"/send?v=1&s="+raw.neg.SessionID, "text/plain", strings.NewReader(`["k","wrong",0,0]`+"\n"+`["m",1,"x"]`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("POST without the secret: %d, want 403", resp.StatusCode)
	}
}

// attachStatus makes one attach request within ctx and returns its
// status; it does not read the body.
func attachStatus(ctx context.Context, t *testing.T, name, u string) int {
	t.Helper()
	if name == transport.WebSocket {
		ws, resp, err := websocket.DefaultDialer.DialContext(ctx, u, nil)
		if err == nil {
			ws.Close()
		}
		if resp == nil {
			t.Fatalf("attach: %v", err)
		}
		return resp.StatusCode
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (su suite) testSlowConsumer(t *testing.T, name string) {
	t.Run("send waits", func(t *testing.T) {
		result := make(chan error, 1)
		sent := make(chan int, 1)
		e := su.newEnv(t, name, &session.Options{WindowMessages: 8, Serve: func(s *session.Session) {
			for i := 0; ; i++ {
				ctx, cancel := context.WithTimeout(s.Context(), 300*time.Millisecond)
				err := s.Send(ctx, transport.Text, []byte("x"))
				cancel()
				if err != nil {
					sent <- i
					result <- err
					return
				}
			}
		}})
		ctx := testContext(t, 20*time.Second)
		e.dial(ctx, &client.Options{ReceiveBuffer: 4})
		if err := <-result; !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Send to a stalled client = %v, want it to wait until its ctx ends", err)
		}
		if n := <-sent; n < 8 {
			t.Fatalf("only %d messages fit a window of 8", n)
		}
	})
	t.Run("slow session closed", func(t *testing.T) {
		result := make(chan error, 1)
		e := su.newEnv(t, name, &session.Options{WindowMessages: 8, CloseSlowConsumers: true, Serve: func(s *session.Session) {
			for {
				if err := s.Send(s.Context(), transport.Text, []byte("x")); err != nil {
					result <- err
					return
				}
			}
		}})
		ctx := testContext(t, 20*time.Second)
		c := e.dial(ctx, &client.Options{ReceiveBuffer: 4})
		wantClose(t, <-result, transport.CloseSlowConsumer, "outbound window full", false)
		for {
			_, _, err := c.Recv(ctx)
			if err != nil {
				wantClose(t, err, transport.CloseSlowConsumer, "outbound window full", true)
				return
			}
		}
	})
}
