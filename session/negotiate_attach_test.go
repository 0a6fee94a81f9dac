package session_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// negotiatingTarget is the path and query of a WebSocket upgrade that
// negotiates with the body n.
func negotiatingTarget(n string, extra url.Values) string {
	q := url.Values{"v": {"1"}, "a": {"1"}, "d": {"1"}, "n": {n}, "z": {strconv.FormatUint(cacheBuster.Add(1), 36)}}
	for k, v := range extra {
		q[k] = v
	}
	return prefix + "/websocket?" + q.Encode()
}

// dialNegotiating runs an upgrade that negotiates with the body n.
func (l *live) dialNegotiating(t *testing.T, n string, extra url.Values, hdr http.Header) (*gorilla.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	u := "ws" + strings.TrimPrefix(l.srv.URL, "http") + negotiatingTarget(n, extra)
	conn, resp, err := (&gorilla.Dialer{}).DialContext(ctx, u, hdr)
	if conn != nil {
		t.Cleanup(func() { conn.Close() })
	}
	return conn, resp, err
}

// TestNegotiateUpgrade makes a session in its WebSocket upgrade: the 101
// carries the negotiate response, the connection is the session's
// delivering attachment from its open frame on, both ways, and the
// negotiate body's fields take effect as in a POST.
func TestNegotiateUpgrade(t *testing.T) {
	t.Parallel()
	got := make(chan *session.Session, 1)
	l := startLive(t, &session.Options{Protocols: []string{"chat.v2"}, Serve: func(s *session.Session) {
		got <- s
		for {
			typ, p, err := s.Recv(s.Context())
			if err != nil {
				return
			}
			if s.Send(s.Context(), typ, p) != nil {
				return
			}
		}
	}})
	conn, resp, err := l.dialNegotiating(t, `{"transports":["websocket"],"protocols":["chat.v1","chat.v2"],"binary":true,"noStatus":true,"replies":true}`,
		nil, http.Header{"Cookie": {"user=ada"}})
	if err != nil {
		t.Fatalf("upgrade: %v (%v)", err, resp)
	}
	neg, err := transport.ParseNegotiateResponse([]byte(resp.Header.Get(transport.NegotiateHeader)))
	if err != nil {
		t.Fatalf("the 101's %s: %v", transport.NegotiateHeader, err)
	}
	if neg.Protocol != "chat.v2" || !neg.Binary || !neg.NoStatus || !neg.Replies || len(neg.Tickets) != 2 ||
		len(neg.Transports) != 1 || neg.Transports[0] != transport.WebSocket {
		t.Errorf("negotiate response %+v: want chat.v2, binary, noStatus, replies, two tickets, websocket only", neg)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store, no-transform" {
		t.Errorf("Cache-Control %q", cc)
	}
	s := <-got
	if s.ID() != neg.SessionID || s.Protocol() != "chat.v2" {
		t.Fatalf("the application's session %s (%q), want %s (chat.v2)", s.ID(), s.Protocol(), neg.SessionID)
	}
	if c := s.Request().Cookies; len(c) != 1 || c[0].Name != "user" || c[0].Value != "ada" {
		t.Errorf("the application sees the upgrade's cookies as %v, want user=ada", c)
	}
	frames := readFrames(t, conn)
	if frames[0].Type != transport.TypeOpen || frames[0].Attempt != 1 {
		t.Fatalf("first frames %+v, want the open frame of attempt 1", frames)
	}
	if err := conn.WriteMessage(gorilla.TextMessage, []byte(batch(text(1, "hello")))); err != nil {
		t.Fatal(err)
	}
	for {
		for _, f := range frames {
			if f.Type == transport.TypeText && f.Seq == 1 && string(f.Payload) == "hello" {
				return
			}
		}
		frames = readFrames(t, conn)
	}
}

// TestNegotiateUpgradeRefused: an upgrade that negotiates is refused as a
// negotiate POST is, with the same status and JSON body and no upgrade,
// and a refused or malformed one leaves no session behind.
func TestNegotiateUpgradeRefused(t *testing.T) {
	t.Parallel()
	errDenied := &session.AuthError{Status: http.StatusUnauthorized, Message: "who are you?"}
	l := startLive(t, &session.Options{
		AllowedOrigins: []string{"https://app.example"},
		Negotiate: func(n *session.Negotiation) (session.Decision, error) {
			switch n.Request.Header.Get("X-Case") {
			case "deny":
				return session.Decision{}, errDenied
			case "redirect":
				return session.Decision{RedirectURL: "https://other.example/comet", RedirectToken: "tok"}, nil
			}
			return session.Decision{}, nil
		},
	})
	for _, tc := range []struct {
		name     string
		n        string
		extra    url.Values
		hdr      http.Header
		status   int
		code     string
		redirect bool
	}{
		{name: "origin", n: `{}`, hdr: http.Header{"Origin": {"https://evil.example"}}, status: 403, code: transport.CodeOriginRefused},
		{name: "unauthorized", n: `{}`, hdr: http.Header{"X-Case": {"deny"}}, status: 401, code: transport.CodeUnauthorized},
		{name: "bad body", n: `{`, status: 400, code: transport.CodeBadRequest},
		{name: "with a session", n: `{}`, extra: url.Values{"s": {unknownSID}, "t": {"x"}}, status: 400, code: transport.CodeBadRequest},
		{name: "no protocol", n: `{"protocols":["mqtt"]}`, status: 400, code: transport.CodeNoProtocol},
		{name: "no transport", n: `{"transports":["carrier-pigeon"]}`, status: 400, code: transport.CodeBadRequest},
		{name: "redirect", n: `{}`, hdr: http.Header{"X-Case": {"redirect"}}, status: 200, redirect: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, resp, err := l.dialNegotiating(t, tc.n, tc.extra, tc.hdr)
			if !errors.Is(err, gorilla.ErrBadHandshake) || resp == nil {
				t.Fatalf("upgrade: %v, want a refused handshake", err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if resp.Header.Get(transport.NegotiateHeader) != "" {
				t.Errorf("a refusal carries %s", transport.NegotiateHeader)
			}
			if tc.redirect {
				var r transport.NegotiateResponse
				if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.URL != "https://other.example/comet" || r.Token != "tok" || r.SessionID != "" {
					t.Fatalf("redirect body %+v, %v: want the URL and token, no session", r, err)
				}
				return
			}
			var body transport.ErrorBody
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Code != tc.code {
				t.Fatalf("body %+v, %v: want code %s", body, err, tc.code)
			}
		})
	}
	if n := l.h.Sessions(); n != 0 {
		t.Errorf("%d sessions left by refused upgrades, want none", n)
	}
	st := l.h.Stats()
	for code, n := range map[string]uint64{transport.CodeOriginRefused: 1, transport.CodeUnauthorized: 1,
		transport.CodeBadRequest: 3, transport.CodeNoProtocol: 1} {
		if st.NegotiateRefusals[code] != n {
			t.Errorf("NegotiateRefusals = %v, want %d of %s", st.NegotiateRefusals, n, code)
		}
	}
}

// TestNegotiateUpgradeNotUpgrade: n on a plain GET of the WebSocket path
// is a 400 and makes no session.
func TestNegotiateUpgradeNotUpgrade(t *testing.T) {
	t.Parallel()
	l := startLive(t, nil)
	resp, body := l.do(t, http.MethodGet, negotiatingTarget(`{}`, nil), nil, "")
	var e transport.ErrorBody
	if resp.StatusCode != http.StatusBadRequest || json.Unmarshal(body, &e) != nil || e.Code != transport.CodeBadRequest {
		t.Fatalf("%s %s, want 400 bad_request", resp.Status, body)
	}
	if n := l.h.Sessions(); n != 0 {
		t.Errorf("%d sessions, want none", n)
	}
}

// TestNegotiateUpgradeRateLimited: an upgrade that negotiates spends the
// negotiate rate of its address like a POST.
func TestNegotiateUpgradeRateLimited(t *testing.T) {
	t.Parallel()
	l := startLive(t, &session.Options{NegotiateRate: 0.001, NegotiateBurst: 1})
	if _, resp, err := l.dialNegotiating(t, `{}`, nil, nil); err != nil {
		t.Fatalf("first upgrade: %v (%v)", err, resp)
	}
	_, resp, err := l.dialNegotiating(t, `{}`, nil, nil)
	if !errors.Is(err, gorilla.ErrBadHandshake) || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second upgrade: %v, %v; want 429 with Retry-After", err, resp)
	}
	if resp, body := l.do(t, http.MethodPost, prefix+"/negotiate?v=1", nil, ""); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("negotiate POST after: %s %s, want 429", resp.Status, body)
	}
}

// readFrames reads one text WebSocket message and decodes its batch.
func readFrames(t *testing.T, conn *gorilla.Conn) []transport.Frame {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(wait))
	typ, msg, err := conn.ReadMessage()
	if err != nil || typ != gorilla.TextMessage {
		t.Fatalf("reading a message: type %d, %v", typ, err)
	}
	return decode(t, msg)
}

// TestNegotiateAttachLongPoll makes a session in a long-poll that
// negotiates: with the Comet-Negotiate request header, the poll's 200
// carries the negotiate response in that header and the open frame of
// attempt 1 in its body; without it (a GET any page could send another
// site, cookies and all) it is a 400 that makes no session.
func TestNegotiateAttachLongPoll(t *testing.T) {
	t.Parallel()
	l := startLive(t, nil)
	target := prefix + "/longpoll?" + url.Values{"v": {"1"}, "a": {"1"}, "n": {`{"transports":["longpoll"]}`},
		"z": {strconv.FormatUint(cacheBuster.Add(1), 36)}}.Encode()

	resp, body := l.do(t, http.MethodGet, target, nil, "")
	wantError(t, resp, body, http.StatusBadRequest, transport.CodeBadRequest)
	if n := l.h.Sessions(); n != 0 {
		t.Fatalf("%d sessions after a poll without the header, want none", n)
	}

	resp, body = l.do(t, http.MethodGet, target, http.Header{transport.NegotiateHeader: {"1"}}, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s", resp.Status, body)
	}
	neg, err := transport.ParseNegotiateResponse([]byte(resp.Header.Get(transport.NegotiateHeader)))
	if err != nil {
		t.Fatalf("the answer's %s: %v", transport.NegotiateHeader, err)
	}
	if len(neg.Transports) != 1 || neg.Transports[0] != transport.LongPoll || len(neg.Tickets) != 2 {
		t.Errorf("negotiate response %+v: want longpoll only and two tickets", neg)
	}
	wantNoStore(t, resp.Header)
	frames := decode(t, body)
	if len(frames) == 0 || frames[0].Type != transport.TypeOpen || frames[0].Attempt != 1 {
		t.Fatalf("body %q, want the open frame of attempt 1", body)
	}
	// The session is the negotiated one: the next poll attaches with a
	// ticket of the response.
	p := transport.AttachParams{Session: neg.SessionID, Ticket: neg.Tickets[0], Attempt: 2}
	if resp, body := l.do(t, http.MethodGet, attachTarget(transport.LongPoll, p), nil, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("the next poll: %s %s", resp.Status, body)
	}
}

// TestNegotiateUpgradeBroken: an upgrade that negotiates but that the
// upgrader refuses (no Sec-WebSocket-Key) makes a session nobody can
// reach, which the server closes at once rather than after its grace
// period.
func TestNegotiateUpgradeBroken(t *testing.T) {
	t.Parallel()
	closed := make(chan *transport.CloseError, 1)
	l := startLive(t, &session.Options{Grace: time.Hour, Observer: &session.Observer{
		SessionClosed: func(_ *session.Session, err *transport.CloseError) { closed <- err },
	}})
	resp, _ := l.do(t, http.MethodGet, negotiatingTarget(`{}`, nil), http.Header{
		"Upgrade": {"websocket"}, "Connection": {"Upgrade"}, "Sec-Websocket-Version": {"13"}}, "")
	if resp.StatusCode == http.StatusSwitchingProtocols {
		t.Fatal("upgraded without a Sec-WebSocket-Key")
	}
	select {
	case err := <-closed:
		// Not the grace period's expiry: an hour, longer than the test.
		if err == nil || err.Code != transport.CloseSessionExpired || !strings.Contains(err.Reason, "attach") {
			t.Fatalf("the session closed with %v, want 3000 for the failed attach", err)
		}
	case <-time.After(wait):
		t.Fatal("the session made by the broken upgrade was never closed")
	}
}
