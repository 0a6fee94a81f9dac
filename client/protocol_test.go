package client

import (
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/seed-544bbf9f/comet/transport"
)

// TestOptionsProtocols: a list the browser's WebSocket would refuse fails
// Dial before anything is sent.
func TestOptionsProtocols(t *testing.T) {
	var requests atomic.Int32
	ts := negotiateStub(t, func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		writeJSON(w, http.StatusForbidden, transport.ErrorBody{Code: transport.CodeForbidden, Message: "stub"})
	})
	long := strings.Repeat("p", transport.MaxProtocolBytes+1)
	many := make([]string, transport.MaxProtocols+1)
	for i := range many {
		many[i] = "p" + strings.Repeat("x", i)
	}
	for _, tc := range []struct {
		name      string
		protocols []string
		want      string
	}{
		{"empty name", []string{""}, `"" is not a token`},
		{"space", []string{"a b"}, `"a b" is not a token`},
		{"separator", []string{"chat,v2"}, `"chat,v2" is not a token`},
		{"non-ASCII", []string{"chät"}, "is not a token"},
		{"control", []string{"a\x7f"}, "is not a token"},
		{"twice", []string{"mqtt", "v12.stomp", "mqtt"}, `"mqtt" is listed twice`},
		{"too long", []string{long}, "longer than 128 bytes"},
		{"too many", many, "33 subprotocols, more than 32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Dial(t.Context(), ts.URL+"/comet", &Options{Protocols: tc.protocols})
			if !errors.Is(err, transport.ErrInvalidProtocols) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Dial = %v, want ErrInvalidProtocols saying %s", err, tc.want)
			}
		})
	}
	if n := requests.Load(); n != 0 {
		t.Fatalf("%d negotiates sent for invalid lists, want none", n)
	}
	// Case matters, as in the browser: these are two names.
	if err := transport.CheckProtocols([]string{"Chat", "chat"}); err != nil {
		t.Fatalf("CheckProtocols(Chat, chat) = %v", err)
	}
}

// TestDialProtocol: Dial fails clearly when the server's answer does not
// select one of the offered subprotocols, and the failure says which way.
func TestDialProtocol(t *testing.T) {
	for _, tc := range []struct {
		name      string
		offered   []string
		status    int
		protocol  string // of a 200 answer
		wantIs    error
		wantInErr string
	}{
		{"refused", []string{"graphql-transport-ws"}, http.StatusBadRequest, "", ErrNoProtocol, "no_protocol"},
		{"an old server", []string{"graphql-transport-ws"}, http.StatusOK, "", ErrNoProtocol, "predate subprotocols"},
		{"not offered", []string{"v12.stomp"}, http.StatusOK, "v10.stomp", transport.ErrMalformed, `"v10.stomp", not one of`},
		{"none offered", nil, http.StatusOK, "mqtt", transport.ErrMalformed, `"mqtt", not one of`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := negotiateStub(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.status != http.StatusOK {
					writeJSON(w, tc.status, transport.ErrorBody{Code: transport.CodeNoProtocol, Message: "this server supports [\"mqtt\"]"})
					return
				}
				n := testNegotiate()
				n.Protocol = tc.protocol
				writeJSON(w, http.StatusOK, n)
			})
			_, err := Dial(t.Context(), ts.URL+"/comet", &Options{Protocols: tc.offered, Transports: []string{transport.LongPoll}})
			if !errors.Is(err, tc.wantIs) || !strings.Contains(err.Error(), tc.wantInErr) {
				t.Fatalf("Dial = %v, want %v saying %s", err, tc.wantIs, tc.wantInErr)
			}
			var he *HTTPError
			if refused := errors.As(err, &he); refused != (tc.status != http.StatusOK) {
				t.Fatalf("Dial = %v: wraps an *HTTPError %v, want %v", err, refused, !refused)
			}
		})
	}
}

// TestCloseNoStatusReason: a close without a code takes no reason, as the
// browser's close(undefined, reason) throws; nothing is queued.
func TestCloseNoStatusReason(t *testing.T) {
	c := newTestConn(t, "http://127.0.0.1:1/comet", nil)
	if err := c.Close(transport.CloseNoStatus, "why"); !errors.Is(err, ErrInvalidCloseCode) {
		t.Fatalf("Close(1005, reason) = %v, want ErrInvalidCloseCode", err)
	}
	for _, code := range []transport.CloseCode{1001, 1002, 1006, 3000, 5000} {
		if err := c.Close(code, ""); !errors.Is(err, ErrInvalidCloseCode) {
			t.Fatalf("Close(%d) = %v, want ErrInvalidCloseCode", code, err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeErr != nil || c.closeSeq != 0 {
		t.Fatalf("a refused Close changed the Conn: %+v, close seq %d", c.closeErr, c.closeSeq)
	}
}
