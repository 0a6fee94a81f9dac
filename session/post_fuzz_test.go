package session

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"

	"github.com/seed-544bbf9f/comet/transport"
)

// fuzzSecret is the secret of the sessions the POST fuzz targets make: a
// fixed one, so that the fuzzer can find other spellings of it.
const fuzzSecret = "q3VfE8m0Qx2wJb1kR9sT4A"

// fuzzSent is how many messages each fuzzed session has sent before the
// first POST, so that the key frame's and ack frames' acks release some.
const fuzzSent = 3

// fuzzHandler returns the handler the POST fuzz targets share. Its limits
// are small, so that inputs reach each of them: a 16-byte message, an
// inbound buffer of 4 messages, and an inbound burst of 6 messages whose
// refill is too slow to count within one input, so that an input meets
// the rate limit at the same message on every run.
func fuzzHandler() *Handler {
	return NewHandler(&Options{
		Logger:          slog.New(slog.DiscardHandler),
		MaxMessage:      16,
		InboundMessages: 4,
		InboundBytes:    32,
		InboundRate:     1e-9,
		InboundBurst:    6,
	})
}

// postFuzz is one fuzzed session and what its client has seen of it.
type postFuzz struct {
	t      *testing.T
	h      *Handler
	s      *Session
	ack    uint64 // the last ack a POST's answer carried
	maxSeq uint64 // the highest seq of a message or close POSTed
}

// newPostFuzz makes a session of h that has sent fuzzSent messages, with
// a delivering stream (attempt 1) and a probe (attempt 2), so that acks,
// probes and commits all reach something. When t ends the session is
// closed, its attachments waited for, and h must hold no buffered bytes.
func newPostFuzz(t *testing.T, h *Handler) *postFuzz {
	s := newSession(h, "fuzz-session", fuzzSecret, RequestInfo{})
	t.Cleanup(func() {
		if n := h.buffered.Load(); n != 0 {
			t.Errorf("the handler counts %d buffered bytes after the session ended", n)
		}
	})
	t.Cleanup(func() { s.CloseNow() })
	for _, a := range []*served{attachStream(t, s, deliver(1, 0)), attachStream(t, s, probe(2))} {
		waitFor(t, a.Started(), "attachment started")
	}
	for i := range fuzzSent {
		if err := s.TrySend(transport.Text, fmt.Appendf(nil, "down %d", i+1)); err != nil {
			t.Fatalf("TrySend: %v", err)
		}
	}
	return &postFuzz{t: t, h: h, s: s}
}

// post POSTs body, checks the answer or the error against the rules of
// PROTOCOL.md section 6, and reports whether the session took it.
func (p *postFuzz) post(body []byte) bool {
	t := p.t
	reply, err := p.s.post(body, 0)
	p.checkWindow()
	if err != nil {
		if reply != nil {
			t.Fatalf("post(%q) returned %q with its error %v", body, reply, err)
		}
		if errors.Is(err, errBadSecret) {
			return false
		}
		var pe *protocolError
		if !errors.As(err, &pe) {
			t.Fatalf("post(%q): %v is neither errBadSecret nor a *protocolError", body, err)
		}
		switch pe.Code {
		case transport.CloseProtocolError, transport.CloseInvalidPayload, transport.CloseMessageTooBig,
			transport.CloseRateExceeded:
		default:
			t.Fatalf("post(%q): a violation closing with %d", body, int(pe.Code))
		}
		if !isDone(p.s.Context().Done()) {
			t.Fatalf("post(%q) = %v, yet the session is not closing", body, err)
		}
		if _, err := p.drain(); !errors.As(err, new(*transport.CloseError)) {
			t.Fatalf("post(%q) closed the session, yet Recv returns %v", body, err)
		}
		return false
	}

	first, rest, _ := bytes.Cut(body, []byte{'\n'})
	var key transport.Frame
	frames, derr := transport.DecodeBatch(rest)
	if transport.DecodeFrame(first, &key) != nil || derr != nil {
		t.Fatalf("post(%q) took a body that does not decode: %v", body, derr)
	}
	want := 1 // ["a",n], and ["t","ticket"] if the key frame asks
	if key.WantTicket {
		want++
	}
	answer, err := transport.DecodeBatch(reply)
	if err != nil || len(answer) != want || answer[0].Type != transport.TypeAck ||
		key.WantTicket && (answer[1].Type != transport.TypeTicket || answer[1].Token == "") {
		t.Fatalf("post(%q) answered %q (%v); want an ack, and a ticket if asked", body, reply, err)
	}
	for i := range frames {
		if frames[i].Type.Sequenced() {
			p.maxSeq = max(p.maxSeq, frames[i].Seq)
		}
	}
	ack := answer[0].Ack
	if ack < p.ack || ack > p.maxSeq {
		t.Fatalf("post(%q) acknowledges %d after %d, with %d the highest seq POSTed", body, ack, p.ack, p.maxSeq)
	}

	// The messages acknowledged now are, in order, the first frame of
	// each newly acknowledged seq: a later one with the same seq is a
	// resend, dropped. A close takes its seq and yields no message.
	var expect []string
	for seq := p.ack + 1; seq <= ack; seq++ {
		i := slices.IndexFunc(frames, func(f transport.Frame) bool { return f.Type.Sequenced() && f.Seq == seq })
		if i < 0 {
			t.Fatalf("post(%q) acknowledges %d, which it does not hold", body, seq)
		}
		if f := frames[i]; f.Type != transport.TypeClose {
			expect = append(expect, fmt.Sprintf("%c %q", f.Type, f.Payload))
		}
	}
	if got, _ := p.drain(); !slices.Equal(got, expect) {
		t.Fatalf("post(%q) acknowledged %d after %d; Recv returns %q, want %q", body, ack, p.ack, got, expect)
	}
	p.ack = ack
	return true
}

// drain returns what Recv has without waiting, as "type payload"
// strings, and the error that ended it: the session's close, or
// context.Canceled if it is open.
func (p *postFuzz) drain() ([]string, error) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var got []string
	for {
		typ, b, err := p.s.Recv(ctx)
		if err != nil {
			return got, err
		}
		got = append(got, fmt.Sprintf("%c %q", typ.FrameType(), b))
	}
}

// checkWindow checks that the outbound window holds no more than the
// session sent: fuzzSent messages, and a close if it queued one.
func (p *postFuzz) checkWindow() {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	sent := uint64(fuzzSent)
	if s.sentClose != 0 {
		sent++
	}
	if last, acked := s.out.Last(), s.out.Acked(); last != sent || acked > last || uint64(s.out.Len()) > last-acked {
		p.t.Fatalf("the window holds %d entries, acknowledged up to %d of %d, after sending %d", s.out.Len(), acked, last, sent)
	}
}

// keyFrame is a key frame holding the session's secret, with its newline.
func keyFrame(ack uint64, wantTicket bool) []byte {
	want := 0
	if wantTicket {
		want = 1
	}
	return fmt.Appendf(nil, "[\"k\",%q,%d,%d]\n", fuzzSecret, ack, want)
}

// FuzzPostBody POSTs the frames after a valid key frame to a live session
// that has sent a few messages. The input is split at NUL bytes (which no
// frame holds) into up to 8 POSTs in a row, each after a key frame acking
// ack (mod fuzzSent+2, one more than was sent). Every POST must either be
// taken, answered with an ack that never decreases nor passes the highest
// seq POSTed, with Recv returning exactly the newly acknowledged messages
// in order; or refused as a violation with one of the close codes a POST
// can earn, and the session closing. The window never holds more than
// was sent.
func FuzzPostBody(f *testing.F) {
	for _, seed := range []struct {
		ack  uint8
		want bool
		body string
	}{
		{0, false, ""},
		{2, true, "[\"m\",1,\"hello\"]\n[\"b\",2,\"AAEC/w==\"]\n"},
		{3, false, "[\"m\",1,\"a\"]\n[\"m\",1,\"a again\"]\n[\"m\",2,\"b\"]\n\x00[\"m\",2,\"b\"]\n[\"m\",3,\"c\"]\n[\"a\",3]\n"},
		{1, false, "[\"m\",1,\"1\"]\n[\"m\",2,\"2\"]\n[\"m\",3,\"3\"]\n[\"m\",4,\"4\"]\n[\"m\",5,\"5\"]\n[\"m\",6,\"6\"]\n\x00[\"m\",5,\"5\"]\n[\"m\",6,\"6\"]\n[\"m\",7,\"7\"]\n"},
		{0, false, "[\"p\",0,\"tok\"]\n[\"p\",2,\"tok2\"]\n[\"u\",2]\n[\"h\"]\n[\"a\",2]\n"},
		{0, true, "[\"m\",1,\"bye soon\"]\n[\"c\",2,1000,\"done\",0]\n\x00[\"a\",4]\n"},
		{0, false, "[\"c\",1,4001,\"app\",0]\n[\"m\",2,\"late\"]\n"},
		{0, false, "[\"m\",2,\"gap\"]\n"},
		{0, false, "[\"m\",1,\"\\ud800\"]\n"},
		{0, false, "[\"m\",1,\"0123456789abcdefX\"]\n"},
		{0, false, "[\"a\",4]\n"},
		{0, false, "[\"o\",1,0,\"t\",1]\n"},
		{0, false, "[\"k\",\"" + fuzzSecret + "\",0,0]\n"},
		{0, false, "[\"c\",1,1005,\"\",0]\n"},
		{4, false, "[\"h\"]\n"},
	} {
		f.Add(seed.ack, seed.want, []byte(seed.body))
	}
	h := fuzzHandler()
	f.Fuzz(func(t *testing.T, ack uint8, want bool, in []byte) {
		p := newPostFuzz(t, h)
		key := keyFrame(uint64(ack%(fuzzSent+2)), want)
		for i, part := range bytes.Split(in, []byte{0}) {
			if i == 8 || !p.post(append(slices.Clip(key), part...)) {
				break
			}
		}
	})
}

// FuzzPostKey POSTs a fuzzed first line, then a message, to a live
// session. The session must refuse with errBadSecret, and be left as it
// was, unless the line is a key frame whose token is the secret; a line
// it takes must read, as JSON, as ["k", secret, ...].
func FuzzPostKey(f *testing.F) {
	for _, key := range []string{
		string(bytes.TrimSuffix(keyFrame(0, false), []byte{'\n'})),
		string(bytes.TrimSuffix(keyFrame(3, true), []byte{'\n'})),
		`["k","q3VfE8m0Qx2wJb1kR9sT4\u0041",1,0]`,
		` [ "k" , "` + fuzzSecret + `" , 2 , 1 ] `,
		`["k","` + fuzzSecret + `",4,0]`,
		`["k","` + fuzzSecret + `",0,2]`,
		`["k","` + fuzzSecret + `x",0,0]`,
		`["k","` + fuzzSecret[:len(fuzzSecret)-1] + `",0,0]`,
		`["k","",0,0]`,
		`["m",1,"` + fuzzSecret + `"]`,
		`["k","` + fuzzSecret + `",0,0]` + "\r",
		`{"k":"` + fuzzSecret + `"}`,
	} {
		f.Add([]byte(key))
	}
	h := fuzzHandler()
	f.Fuzz(func(t *testing.T, key []byte) {
		p := newPostFuzz(t, h)
		body := append(slices.Clip(key), "\n[\"m\",1,\"up\"]\n"...)
		first, _, _ := bytes.Cut(body, []byte{'\n'})
		if p.post(body) || p.s.Context().Err() != nil {
			// Taken, or refused as a violation after the secret was
			// checked: the line must hold the secret.
			var v []any
			if err := json.Unmarshal(first, &v); err != nil || len(v) < 2 || v[0] != "k" || v[1] != fuzzSecret {
				t.Fatalf("the session took %q as a key frame holding its secret (%v)", first, err)
			}
			return
		}
		// Refused for its secret: nothing changed.
		s := p.s
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.inSeq != 0 || s.out.Acked() != 0 || s.closeErr != nil {
			t.Fatalf("a refused key frame %q changed the session: inSeq %d, acked %d, closeErr %v",
				first, s.inSeq, s.out.Acked(), s.closeErr)
		}
	})
}
