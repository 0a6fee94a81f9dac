package session

import (
	"strings"
	"testing"

	"github.com/seed-544bbf9f/comet/transport"
)

// TestPeerCloseAnswer checks what a client's close turns into: the close
// Recv returns, and the answering close the client receives, with and
// without noStatus agreed at negotiate.
func TestPeerCloseAnswer(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 70) // 140 bytes: only a client that broke the limit sends it
	tests := []struct {
		name     string
		noStatus bool
		close    string
		recv     transport.CloseError // Remote is always true
		answer   string
	}{
		{"echoed", true, `["c",1,4002,"bye now",0]`, transport.CloseError{Code: 4002, Reason: "bye now"}, `["c",1,4002,"bye now",0]`},
		{"without a code", true, `["c",1,1005,"",0]`, transport.CloseError{Code: 1005}, `["c",1,1005,"",0]`},
		{"a long reason truncated in the echo", true, `["c",1,1000,"` + long + `",0]`,
			transport.CloseError{Code: 1000, Reason: long}, `["c",1,1000,"` + long[:122] + `",0]`},
		{"not agreed: the reason is not echoed", false, `["c",1,4002,"bye now",0]`,
			transport.CloseError{Code: 4002, Reason: "bye now"}, `["c",1,4002,"",0]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newTestSession(t, newTestHandler(t, nil))
			s.noStatus = tc.noStatus // as negotiate sets it, before the session is shared
			a := attachStream(t, s, deliver(1, 0))
			a.ds.expect(t, `["o",1,0,"T",25000]`)
			mustUpstream(t, s, tc.close)
			_, _, err := s.Recv(t.Context())
			if ce := closeError(t, err); ce.Code != tc.recv.Code || ce.Reason != tc.recv.Reason || !ce.Remote {
				t.Fatalf("Recv = %+v, want %+v from the peer", ce, tc.recv)
			}
			frames := a.ds.expect(t, tc.answer)
			// Acknowledging the answer ends the session.
			mustUpstream(t, s, string(transport.AppendFrame(nil, &transport.Frame{Type: transport.TypeAck, Ack: frames[0].Seq})))
			waitFor(t, s.Done(), "the session to finish")
		})
	}
}

// TestValidClientClose lists the codes a client may close with.
func TestValidClientClose(t *testing.T) {
	t.Parallel()
	for code := transport.CloseCode(0); code < 5000; code++ {
		want := code >= 1000 && code <= 1015 && code != 1004 && code != 1005 && code != 1006 && code != 1015 || code >= 3000
		if got := validClientClose(code, false); got != want {
			t.Errorf("validClientClose(%d, false) = %v", code, got)
		}
		if got := validClientClose(code, true); got != (want || code == transport.CloseNoStatus) {
			t.Errorf("validClientClose(%d, true) = %v", code, got)
		}
	}
}
