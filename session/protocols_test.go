package session_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// negotiateFields negotiates with body and returns the answer's JSON
// fields, failing unless it is a 200.
func negotiateFields(t *testing.T, l *live, hdr http.Header, body string) (*transport.NegotiateResponse, map[string]any) {
	t.Helper()
	resp, raw := l.do(t, http.MethodPost, prefix+"/negotiate?v=1", hdr, body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("negotiate %s: %s %s", body, resp.Status, raw)
	}
	n, err := transport.ParseNegotiateResponse(raw)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	return n, fields
}

// TestNegotiateProtocols checks the selection rule of Options.Protocols
// (the client's order decides), the refusals, and that the session
// reports the choice.
func TestNegotiateProtocols(t *testing.T) {
	t.Parallel()
	l := startLive(t, &session.Options{Protocols: []string{"v12.stomp", "v11.stomp", "mqtt", "not a token"}})
	for _, tc := range []struct {
		name, body string
		want       string // the protocol selected; "" for none
	}{
		{"no body", ``, ""},
		{"no protocols", `{"transports":["longpoll"]}`, ""},
		{"an empty list", `{"protocols":[]}`, ""},
		{"the client's first supported", `{"protocols":["v10.stomp","v11.stomp","v12.stomp"]}`, "v11.stomp"},
		{"one", `{"protocols":["mqtt"]}`, "mqtt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, fields := negotiateFields(t, l, nil, tc.body)
			if _, present := fields["protocol"]; n.Protocol != tc.want || present != (tc.want != "") {
				t.Fatalf("protocol %q (field present %v), want %q", n.Protocol, present, tc.want)
			}
			s := l.session(t, n)
			if s.Protocol() != tc.want || s.Request().Protocol != tc.want {
				t.Fatalf("Session.Protocol %q, RequestInfo.Protocol %q; want %q", s.Protocol(), s.Request().Protocol, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name, body string
		status     int
		code, msg  string
	}{
		{"none in common", `{"protocols":["graphql-transport-ws","not"]}`, http.StatusBadRequest, transport.CodeNoProtocol,
			`the client offers ["graphql-transport-ws" "not"], this server supports ["v12.stomp" "v11.stomp" "mqtt"]`},
		{"not a token", `{"protocols":["mqtt","a b"]}`, http.StatusBadRequest, transport.CodeBadRequest, `"a b" is not a token`},
		{"an empty name", `{"protocols":[""]}`, http.StatusBadRequest, transport.CodeBadRequest, `"" is not a token`},
		{"twice", `{"protocols":["mqtt","mqtt"]}`, http.StatusBadRequest, transport.CodeBadRequest, `"mqtt" is listed twice`},
		{"not strings", `{"protocols":[1]}`, http.StatusBadRequest, transport.CodeBadRequest, "negotiate body"},
		{"too long", `{"protocols":["` + strings.Repeat("x", transport.MaxProtocolBytes+1) + `"]}`,
			http.StatusBadRequest, transport.CodeBadRequest, "longer than 128 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := l.do(t, http.MethodPost, prefix+"/negotiate?v=1", nil, tc.body)
			if e := wantError(t, resp, body, tc.status, tc.code); !strings.Contains(e.Message, tc.msg) {
				t.Fatalf("message %q, want it to say %s", e.Message, tc.msg)
			}
		})
	}
	if st := l.h.Stats(); st.NegotiateRefusals[transport.CodeNoProtocol] != 1 {
		t.Errorf("NegotiateRefusals = %v, want one no_protocol", st.NegotiateRefusals)
	}
}

// TestNegotiateNoProtocols: a server that supports no subprotocol refuses
// a client that asks for one, as a WebSocket server that selects none
// fails the browser's handshake, and says so.
func TestNegotiateNoProtocols(t *testing.T) {
	t.Parallel()
	l := startLive(t, nil)
	resp, body := l.do(t, http.MethodPost, prefix+"/negotiate?v=1", nil, `{"protocols":["chat"]}`)
	if e := wantError(t, resp, body, http.StatusBadRequest, transport.CodeNoProtocol); !strings.HasSuffix(e.Message, "this server supports none") {
		t.Fatalf("message %q", e.Message)
	}
}

// TestNegotiateProtocolHook: Options.Negotiate sees the client's list and
// its Decision.Protocol overrides Options.Protocols; a choice outside the
// client's list is the server's error.
func TestNegotiateProtocolHook(t *testing.T) {
	t.Parallel()
	seen := make(chan []string, 8)
	l := startLive(t, &session.Options{Protocols: []string{"a", "b"}, Negotiate: func(n *session.Negotiation) (session.Decision, error) {
		seen <- n.Protocols
		switch n.Request.Header.Get("X-Case") {
		case "last":
			return session.Decision{Protocol: n.Protocols[len(n.Protocols)-1]}, nil
		case "foreign":
			return session.Decision{Protocol: "z"}, nil
		case "redirect":
			return session.Decision{Protocol: "z", RedirectURL: "https://eu.example/comet"}, nil
		}
		return session.Decision{}, nil
	}})
	hdr := func(c string) http.Header { return http.Header{"X-Case": {c}} }

	n, _ := negotiateFields(t, l, hdr("last"), `{"protocols":["b","a","c"]}`)
	if got := <-seen; !slices.Equal(got, []string{"b", "a", "c"}) {
		t.Errorf("Negotiation.Protocols = %q", got)
	}
	if n.Protocol != "c" || l.session(t, n).Protocol() != "c" {
		t.Errorf("protocol %q, want the hook's c", n.Protocol)
	}

	n, _ = negotiateFields(t, l, hdr("default"), `{"protocols":["c","b","a"]}`)
	<-seen
	if n.Protocol != "b" {
		t.Errorf("protocol %q, want Options.Protocols' b when the hook leaves it", n.Protocol)
	}

	// A redirect carries no protocol: the server redirected to selects.
	_, fields := negotiateFields(t, l, hdr("redirect"), `{"protocols":["a"]}`)
	<-seen
	if _, present := fields["protocol"]; present || fields["url"] != "https://eu.example/comet" {
		t.Errorf("redirect = %v", fields)
	}

	for _, body := range []string{`{"protocols":["a","b"]}`, ``} {
		resp, raw := l.do(t, http.MethodPost, prefix+"/negotiate?v=1", hdr("foreign"), body)
		<-seen
		if e := wantError(t, resp, raw, http.StatusInternalServerError, transport.CodeInternalError); strings.Contains(e.Message, `"z"`) {
			t.Errorf("message %q: the hook's detail is for the log, not the client", e.Message)
		}
	}
	if got := l.h.Sessions(); got != 2 {
		t.Errorf("the handler holds %d sessions, want the two admitted", got)
	}
}

// TestLazyAckTerms: lazy acks are granted with the server's delay and
// thresholds, each held within what the window and heartbeat allow.
func TestLazyAckTerms(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts session.Options
		want transport.LazyAcks
	}{
		{"defaults", session.Options{}, transport.LazyAcks{Delay: 25000, Messages: 64, Bytes: 64 << 10}},
		{"default delay, the heartbeat interval", session.Options{Heartbeat: 10 * time.Second},
			transport.LazyAcks{Delay: 10000, Messages: 64, Bytes: 64 << 10}},
		{"set", session.Options{LazyAckDelay: 2 * time.Second, LazyAckMessages: 10, LazyAckBytes: 1000},
			transport.LazyAcks{Delay: 2000, Messages: 10, Bytes: 1000}},
		{"held to half the window", session.Options{WindowMessages: 16, WindowBytes: 64 << 10},
			transport.LazyAcks{Delay: 25000, Messages: 8, Bytes: 32 << 10}},
		{"held to the heartbeat", session.Options{Heartbeat: 3 * time.Second, LazyAckDelay: time.Minute},
			transport.LazyAcks{Delay: 3000, Messages: 64, Bytes: 64 << 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n, _ := negotiateFields(t, startLive(t, &tc.opts), nil, `{"lazyAcks":true}`)
			if n.LazyAcks == nil || *n.LazyAcks != tc.want {
				t.Fatalf("lazyAcks %+v, want %+v", n.LazyAcks, tc.want)
			}
		})
	}
}

// TestNegotiateOptIns: each addition a client asks for at negotiate is
// agreed when asked, unless the server's option refuses it; a request
// that does not ask gets no new field.
func TestNegotiateOptIns(t *testing.T) {
	t.Parallel()
	noStatus := func(n *transport.NegotiateResponse) bool { return n.NoStatus }
	replies := func(n *transport.NegotiateResponse) bool { return n.Replies }
	lazy := func(n *transport.NegotiateResponse) bool { return n.LazyAcks != nil }
	for _, tc := range []struct {
		name   string
		field  string
		agreed func(*transport.NegotiateResponse) bool
		opts   session.Options
		body   string
		want   bool
	}{
		{"noStatus asked", "noStatus", noStatus, session.Options{}, `{"noStatus":true}`, true},
		{"noStatus not asked", "noStatus", noStatus, session.Options{}, ``, false},
		{"noStatus refused by LegacyClose", "noStatus", noStatus, session.Options{LegacyClose: true}, `{"noStatus":true}`, false},
		{"replies asked", "replies", replies, session.Options{}, `{"replies":true}`, true},
		{"replies not asked", "replies", replies, session.Options{}, ``, false},
		{"replies refused by a negative ReplyWait", "replies", replies, session.Options{ReplyWait: -1}, `{"replies":true}`, false},
		{"lazyAcks asked", "lazyAcks", lazy, session.Options{}, `{"lazyAcks":true}`, true},
		{"lazyAcks not asked", "lazyAcks", lazy, session.Options{}, ``, false},
		{"lazyAcks refused by a negative LazyAckDelay", "lazyAcks", lazy, session.Options{LazyAckDelay: -1}, `{"lazyAcks":true}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := startLive(t, &tc.opts)
			n, fields := negotiateFields(t, l, nil, tc.body)
			if _, present := fields[tc.field]; tc.agreed(n) != tc.want || present != tc.want {
				t.Fatalf("%s %v (present %v), want %v", tc.field, tc.agreed(n), present, tc.want)
			}
			if _, present := fields["protocol"]; present {
				t.Fatalf("a protocol field in %v", fields)
			}
		})
	}
}
