package client

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/seed-544bbf9f/comet/transport"
)

// TestReceiveMergesPaths: in a session that agreed to replies in POST
// answers, a message that arrives before one it follows (the poll's, while
// the POST answer with the earlier one is on its way) waits for it; every
// message reaches Recv once, in order, and a gap no path could fill, past
// the server's window, is still a protocol error.
func TestReceiveMergesPaths(t *testing.T) {
	c := newTestConn(t, "http://127.0.0.1:1/comet", nil)
	c.replies = true
	c.receive([]transport.Frame{msg(3, "c"), msg(2, "b"), msg(3, "c")}) // the poll
	c.mu.Lock()
	n, queued, ahead := c.in.n, len(c.in.queue), len(c.in.ahead)
	c.mu.Unlock()
	if n != 0 || queued != 0 || ahead != 2 {
		t.Fatalf("before message 1: n=%d, %d queued, %d ahead; want 0, 0, 2", n, queued, ahead)
	}
	c.receive([]transport.Frame{msg(1, "a"), msg(2, "b")}) // the POST answer
	c.receive([]transport.Frame{msg(4, "d")})
	ctx := context.Background()
	for _, want := range []string{"a", "b", "c", "d"} {
		if _, p, err := c.Recv(ctx); err != nil || string(p) != want {
			t.Fatalf("Recv = %q, %v; want %q", p, err, want)
		}
	}
	c.mu.Lock()
	n, ahead = c.in.n, len(c.in.ahead)
	c.mu.Unlock()
	if n != 4 || ahead != 0 {
		t.Fatalf("after the merge: n=%d, %d ahead; want 4, 0", n, ahead)
	}

	// The test server's window is 8 messages, and a close may follow them.
	c.receive([]transport.Frame{msg(4+8+1, "last that fits")})
	c.receive([]transport.Frame{msg(4+8+2, "beyond the window")})
	_, _, err := c.Recv(ctx)
	if transport.CloseStatus(err) != transport.CloseProtocolError {
		t.Fatalf("Recv after a gap past the window = %v, want close 1002", err)
	}
}

// TestReceiveGapWithoutReplies: a session that did not agree keeps the
// sequence rule as it was: a gap is a protocol error at once.
func TestReceiveGapWithoutReplies(t *testing.T) {
	c := newTestConn(t, "http://127.0.0.1:1/comet", nil)
	c.receive([]transport.Frame{msg(2, "b")})
	_, _, err := c.Recv(context.Background())
	if transport.CloseStatus(err) != transport.CloseProtocolError {
		t.Fatalf("Recv after a gap = %v, want close 1002", err)
	}
}

// answerVectors is the golden file of POST answers (PROTOCOL.md section
// 12): answers.json.
type answerVectors struct {
	Valid []struct {
		Name    string   `json:"name"`
		Wire    string   `json:"wire"`
		Agreed  bool     `json:"agreed"`
		Acks    []uint64 `json:"acks"`
		Tickets []string `json:"tickets"`
		Replies []string `json:"replies"`
	} `json:"valid"`
	Invalid []struct {
		Name   string `json:"name"`
		Wire   string `json:"wire"`
		Agreed bool   `json:"agreed"`
		Error  string `json:"error"`
	} `json:"invalid"`
}

func loadAnswers(t testing.TB) *answerVectors {
	t.Helper()
	b, err := os.ReadFile("../testdata/answers.json")
	if err != nil {
		t.Fatal(err)
	}
	var v answerVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return &v
}

// TestAnswerGolden: parseAnswer reads every POST answer of the golden
// file as the file says, in a session that agreed to replies and in one
// that did not.
func TestAnswerGolden(t *testing.T) {
	v := loadAnswers(t)
	for _, tc := range v.Valid {
		t.Run(tc.Name, func(t *testing.T) {
			wire, err := hex.DecodeString(tc.Wire)
			if err != nil {
				t.Fatal(err)
			}
			a, err := parseAnswer(wire, tc.Agreed)
			if err != nil {
				t.Fatalf("parseAnswer: %v", err)
			}
			var replies []string
			for i := range a.replies {
				replies = append(replies, string(transport.AppendFrame(nil, &a.replies[i])))
			}
			if !slices.Equal(a.acks, tc.Acks) || !slices.Equal(a.tickets, tc.Tickets) || !slices.Equal(replies, tc.Replies) {
				t.Fatalf("parseAnswer = acks %v, tickets %q, replies %q; want %v, %q, %q",
					a.acks, a.tickets, replies, tc.Acks, tc.Tickets, tc.Replies)
			}
		})
	}
	for _, tc := range v.Invalid {
		t.Run(tc.Name, func(t *testing.T) {
			wire, err := hex.DecodeString(tc.Wire)
			if err != nil {
				t.Fatal(err)
			}
			_, err = parseAnswer(wire, tc.Agreed)
			want := transport.ErrMalformed
			if tc.Error == "invalid_utf8" {
				want = transport.ErrInvalidUTF8
			}
			if !errors.Is(err, want) {
				t.Fatalf("parseAnswer = %v, want %v", err, want)
			}
		})
	}
}

// FuzzParseAnswer checks the POST answer parser on any input: it never
// panics, and what it returns from a session that did not agree to
// replies is what it returns from one that did, less the replies, each
// of which is a sequenced frame that encodes again to what it decodes
// from.
func FuzzParseAnswer(f *testing.F) {
	v := loadAnswers(f)
	for _, tc := range v.Valid {
		wire, _ := hex.DecodeString(tc.Wire)
		f.Add(wire)
	}
	for _, tc := range v.Invalid {
		wire, _ := hex.DecodeString(tc.Wire)
		f.Add(wire)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		agreed, err := parseAnswer(data, true)
		plain, plainErr := parseAnswer(data, false)
		if (err == nil) != (plainErr == nil) {
			t.Fatalf("agreed: %v; not agreed: %v", err, plainErr)
		}
		if err != nil {
			return
		}
		if len(plain.replies) > 0 || !slices.Equal(agreed.acks, plain.acks) || !slices.Equal(agreed.tickets, plain.tickets) {
			t.Fatalf("agreed %+v, not agreed %+v", agreed, plain)
		}
		for i := range agreed.replies {
			f := &agreed.replies[i]
			if !f.Type.Sequenced() {
				t.Fatalf("reply %d is a %s frame", i, f.Type)
			}
			var back transport.Frame
			if err := transport.DecodeFrame(transport.AppendFrame(nil, f), &back); err != nil || back.Seq != f.Seq || back.Type != f.Type {
				t.Fatalf("reply %d does not encode again: %+v, %v", i, back, err)
			}
		}
	})
}
