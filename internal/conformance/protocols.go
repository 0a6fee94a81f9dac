package conformance

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// testProtocol: the subprotocol selected at negotiate is what the session
// and the client report, whichever transport carries them.
func (su suite) testProtocol(t *testing.T, name string) {
	e := su.newEnv(t, name, &session.Options{Protocols: []string{"v12.stomp", "v11.stomp"}})
	ctx := testContext(t, 20*time.Second)
	c := e.dial(ctx, &client.Options{Protocols: []string{"v10.stomp", "v11.stomp", "v12.stomp"}})
	s := e.session(ctx)
	const want = "v11.stomp" // the client's first that the server supports
	if c.Protocol() != want || s.Protocol() != want || s.Request().Protocol != want {
		t.Fatalf("Conn.Protocol %q, Session.Protocol %q, RequestInfo.Protocol %q; want %q",
			c.Protocol(), s.Protocol(), s.Request().Protocol, want)
	}
	if err := c.Send(ctx, transport.Text, []byte("CONNECT")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := c.Recv(ctx); err != nil || string(p) != "CONNECT" {
		t.Fatalf("echo = %q, %v", p, err)
	}
}

// testNoProtocol: a client whose subprotocols the server does not support
// fails to dial, as a WebSocket does, and no session is left behind.
func (su suite) testNoProtocol(t *testing.T) {
	t.Parallel()
	e := su.newEnv(t, transport.WebSocket, &session.Options{Protocols: []string{"mqtt"}})
	ctx := testContext(t, 20*time.Second)
	_, err := client.Dial(ctx, e.url, &client.Options{Protocols: []string{"graphql-transport-ws"}})
	var he *client.HTTPError
	if !errors.Is(err, client.ErrNoProtocol) || !errors.As(err, &he) || he.Body.Code != transport.CodeNoProtocol {
		t.Fatalf("Dial = %v, want ErrNoProtocol and a 400 no_protocol", err)
	}
	if n := e.sessionCount(); n != 0 {
		t.Fatalf("%d sessions after a refused negotiate", n)
	}
	_, err = client.Dial(ctx, e.url, &client.Options{Protocols: []string{"mqtt", "mqtt"}})
	if !errors.Is(err, comet.ErrInvalidProtocols) {
		t.Fatalf("Dial with a list listing mqtt twice = %v, want ErrInvalidProtocols", err)
	}
}

// testCloseNoStatus: the client's close without a code reaches the
// server's Recv as 1005, on every transport; with a server that refuses
// such closes (LegacyClose) it travels as 1000, and the client reports
// 1005 either way.
func (su suite) testCloseNoStatus(t *testing.T, name string) {
	for _, tc := range []struct {
		legacy bool
		want   transport.CloseCode // at the server
	}{
		{false, transport.CloseNoStatus},
		{true, transport.CloseNormal},
	} {
		t.Run(fmt.Sprintf("legacy=%v", tc.legacy), func(t *testing.T) {
			got := make(chan error, 1)
			e := su.newEnv(t, name, &session.Options{LegacyClose: tc.legacy, Serve: func(s *session.Session) {
				for {
					if _, _, err := s.Recv(s.Context()); err != nil {
						got <- err
						return
					}
				}
			}})
			ctx := testContext(t, 20*time.Second)
			c := e.dial(ctx, nil)
			s := e.session(ctx)
			if err := c.Send(ctx, transport.Text, []byte("before")); err != nil {
				t.Fatal(err)
			}
			if err := c.Close(comet.CloseNoStatus, ""); err != nil {
				t.Fatalf("Close: %v", err)
			}
			select {
			case err := <-got:
				wantClose(t, err, tc.want, "", true)
			case <-ctx.Done():
				t.Fatal("server never saw the close")
			}
			_, _, err := c.Recv(ctx)
			wantClose(t, err, transport.CloseNoStatus, "", false)
			select {
			case <-s.Done():
			case <-ctx.Done():
				t.Fatal("server kept the closed session")
			}
		})
	}
}

// testCloseEcho: the server answers a client's close with the client's
// code and reason, as an RFC 6455 server echoes a close, once the client
// asked (noStatus); a client that did not ask gets the empty reason it
// always got. Read by a raw client, which sees the answer on the wire.
func (su suite) testCloseEcho(t *testing.T, name string) {
	for _, tc := range []struct {
		name, ask, close string
		answer           transport.CloseError // at the client
		recv             transport.CloseError // at the server
	}{
		{"echo", `{"noStatus":true}`, `["c",1,4002,"client says bye",0]`,
			transport.CloseError{Code: 4002, Reason: "client says bye"}, transport.CloseError{Code: 4002, Reason: "client says bye"}},
		{"no status", `{"noStatus":true}`, `["c",1,1005,"",0]`,
			transport.CloseError{Code: 1005}, transport.CloseError{Code: 1005}},
		{"not asked", ``, `["c",1,4002,"client says bye",0]`,
			transport.CloseError{Code: 4002}, transport.CloseError{Code: 4002, Reason: "client says bye"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan error, 1)
			e := su.newEnv(t, name, &session.Options{Serve: func(s *session.Session) {
				_, _, err := s.Recv(s.Context())
				got <- err
			}})
			ctx := testContext(t, 20*time.Second)
			raw := newRawClientAsking(t, e.url, name, tc.ask)
			if status := raw.send(tc.close); status != 200 {
				t.Fatalf("POST of the close: %d", status)
			}
			if f := raw.closeFrame(ctx); f.Code != int(tc.answer.Code) || f.Reason != tc.answer.Reason {
				t.Fatalf("answering close %d %q, want %d %q", f.Code, f.Reason, tc.answer.Code, tc.answer.Reason)
			}
			select {
			case err := <-got:
				wantClose(t, err, tc.recv.Code, tc.recv.Reason, true)
			case <-ctx.Done():
				t.Fatal("server never saw the close")
			}
		})
	}
}
