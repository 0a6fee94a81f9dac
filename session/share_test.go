package session_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// These tests drive shared attachments (PROTOCOL.md section 16) over real
// HTTP: a carrier, the sub-requests of two sessions through it, and what
// each of them gets back.

// subResponse is a sub-request's response as the carrier delivered it.
type subResponse struct {
	status int
	body   string
	ended  bool
}

// carrierReader gathers a carrier's frames, by sub-request.
type carrierReader struct {
	last  uint64 // the number of the last frame read
	subs  map[uint64]*subResponse
	pings int
	beats int
}

// read takes one frame line, checking that it is numbered next.
func (cr *carrierReader) read(t *testing.T, line string) {
	t.Helper()
	var f []json.RawMessage
	if err := json.Unmarshal([]byte(line), &f); err != nil || len(f) < 3 {
		t.Fatalf("carrier frame %q: %v", line, err)
	}
	var n, sub uint64
	var kind string
	json.Unmarshal(f[0], &n)
	json.Unmarshal(f[1], &sub)
	json.Unmarshal(f[2], &kind)
	if n != cr.last+1 {
		t.Fatalf("frame %q is numbered %d after %d", line, n, cr.last)
	}
	cr.last = n
	if cr.subs == nil {
		cr.subs = map[uint64]*subResponse{}
	}
	r := cr.subs[sub]
	if r == nil && sub != 0 {
		r = &subResponse{}
		cr.subs[sub] = r
	}
	switch kind {
	case "h":
		json.Unmarshal(f[3], &r.status)
	case "d":
		var s string
		json.Unmarshal(f[3], &s)
		if r.status == 0 {
			t.Fatalf("sub-request %d: a part before its head", sub)
		}
		r.body += s
	case "e":
		r.ended = true
	case "p":
		cr.pings++
	case "k":
		cr.beats++
	default:
		t.Fatalf("frame %q: unknown kind", line)
	}
}

// openPolls opens a carrier of polls and returns its id.
func (l *live) openPolls(t *testing.T) string {
	t.Helper()
	resp, body := l.do(t, http.MethodGet, prefix+"/share?v=1", nil, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("open: %s %s", resp.Status, body)
	}
	wantNoStore(t, resp.Header)
	var hello []any
	if err := json.Unmarshal(body, &hello); err != nil || len(hello) != 3 || hello[0] != "o" {
		t.Fatalf("hello = %q, want [\"o\",id,max]", body)
	}
	return hello[1].(string)
}

// poll polls the carrier once and reads what it delivers.
func (l *live) poll(t *testing.T, id string, cr *carrierReader) {
	t.Helper()
	resp, body := l.do(t, http.MethodGet, prefix+"/share?v=1&c="+id+"&n="+strconv.FormatUint(cr.last, 10), nil, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("poll: %s %s", resp.Status, body)
	}
	for line := range strings.Lines(string(body)) {
		cr.read(t, strings.TrimSuffix(line, "\n"))
	}
}

// pollUntil polls until done holds.
func (l *live) pollUntil(t *testing.T, id string, cr *carrierReader, done func() bool) {
	t.Helper()
	for i := 0; !done(); i++ {
		if i == 100 {
			t.Fatalf("the carrier did not deliver what was expected; it gave %+v", cr.subs)
		}
		l.poll(t, id, cr)
	}
}

// ops POSTs ops to a carrier.
func (l *live) ops(t *testing.T, id string, ops ...[]any) (*http.Response, []byte) {
	t.Helper()
	b, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	return l.do(t, http.MethodPost, prefix+"/share?v=1&c="+id, textPlain, string(b))
}

func (l *live) opsOK(t *testing.T, id string, ops ...[]any) {
	t.Helper()
	if resp, body := l.ops(t, id, ops...); resp.StatusCode != http.StatusOK || string(body) != "{}" {
		t.Fatalf("ops: %s %s", resp.Status, body)
	}
}

func ended(cr *carrierReader, subs ...uint64) func() bool {
	return func() bool {
		for _, s := range subs {
			if r := cr.subs[s]; r == nil || !r.ended {
				return false
			}
		}
		return true
	}
}

// TestShareTwoSessions sends two sessions' attaches and POSTs through one
// carrier of polls: each gets its own answers, and one session's secret
// does not admit frames to the other.
func TestShareTwoSessions(t *testing.T) {
	t.Parallel()
	l := startLive(t, nil)
	id := l.openPolls(t)
	na, nb := l.negotiate(t), l.negotiate(t)
	sa, sb := l.session(t, na), l.session(t, nb)
	l.opsOK(t, id,
		[]any{1, "GET", attachTarget(transport.LongPoll, transport.AttachParams{Session: na.SessionID, Ticket: na.Tickets[0], Attempt: 1, Deliver: true})},
		[]any{2, "POST", sendTarget(na.SessionID), batch(key(na.Secret, 0, false), text(1, "one"))},
		[]any{3, "GET", attachTarget(transport.LongPoll, transport.AttachParams{Session: nb.SessionID, Ticket: nb.Tickets[0], Attempt: 1, Deliver: true})},
		[]any{4, "POST", sendTarget(nb.SessionID), batch(key(na.Secret, 0, false), text(1, "intruder"))},
		[]any{5, "GET", attachTarget(transport.LongPoll, transport.AttachParams{Session: nb.SessionID, Ticket: na.Tickets[1], Attempt: 2, Deliver: true})},
	)
	var cr carrierReader
	l.pollUntil(t, id, &cr, ended(&cr, 2, 4, 5))
	if st := l.h.Stats(); st.CarriersOpen["polls"] != 1 || st.CarriersOpen["stream"] != 0 || st.SubRequests != 5 {
		t.Errorf("Stats: carriers %v, sub-requests %d; want one of polls, 5", st.CarriersOpen, st.SubRequests)
	}
	if r := cr.subs[2]; r.status != http.StatusOK || r.body != `["a",1]`+"\n" {
		t.Errorf("A's POST: %d %q, want 200 [\"a\",1]", r.status, r.body)
	}
	for sub, code := range map[uint64]string{4: transport.CodeBadSecret, 5: transport.CodeBadTicket} {
		var e transport.ErrorBody
		if r := cr.subs[sub]; r.status != http.StatusForbidden || json.Unmarshal([]byte(r.body), &e) != nil || e.Code != code {
			t.Errorf("sub-request %d with A's proof for B: %d %q, want 403 %s", sub, r.status, r.body, code)
		}
	}
	wantRecv(t, sa, "one")

	// Each poll answers its own session's messages.
	if err := sb.Send(t.Context(), transport.Text, []byte("to b")); err != nil {
		t.Fatal(err)
	}
	l.pollUntil(t, id, &cr, ended(&cr, 3))
	if r := cr.subs[1]; r != nil {
		t.Errorf("A's poll answered with B's message: %+v", r)
	}
	frames := decode(t, []byte(cr.subs[3].body))
	if last := frames[len(frames)-1]; last.Type != transport.TypeText || string(last.Payload) != "to b" {
		t.Errorf("B's poll = %q, want its message last", cr.subs[3].body)
	}
	if err := sa.Send(t.Context(), transport.Text, []byte("to a")); err != nil {
		t.Fatal(err)
	}
	l.pollUntil(t, id, &cr, ended(&cr, 1))
	if !strings.Contains(cr.subs[1].body, `"to a"`) || strings.Contains(cr.subs[1].body, "to b") {
		t.Errorf("A's poll = %q, want its message alone", cr.subs[1].body)
	}
}

// TestShareRetriedOps sends the same POST twice, as a client does whose
// first answer was lost: nothing starts twice.
func TestShareRetriedOps(t *testing.T) {
	t.Parallel()
	l := startLive(t, nil)
	id := l.openPolls(t)
	n := l.negotiate(t)
	s := l.session(t, n)
	op := []any{1, "POST", sendTarget(n.SessionID), batch(key(n.Secret, 0, false), text(1, "once"))}
	l.opsOK(t, id, op)
	l.opsOK(t, id, op, []any{0, "p"})
	var cr carrierReader
	l.pollUntil(t, id, &cr, func() bool { return cr.pings == 1 && ended(&cr, 1)() })
	if r := cr.subs[1]; r.status != http.StatusOK || r.body != `["a",1]`+"\n" {
		t.Errorf("POST: %d %q, want one answer, 200 [\"a\",1]", r.status, r.body)
	}
	wantRecv(t, s, "once")
}

// TestShareAbort aborts a parked poll: its session's attachment ends,
// and the sub-request gets nothing more.
func TestShareAbort(t *testing.T) {
	t.Parallel()
	l := startLive(t, nil)
	id := l.openPolls(t)
	n := l.negotiate(t)
	s := l.session(t, n)
	l.opsOK(t, id, []any{1, "GET", attachTarget(transport.LongPoll, transport.AttachParams{Session: n.SessionID, Ticket: n.Tickets[0], Attempt: 1, Deliver: true})})
	l.opsOK(t, id, []any{1, "x"}, []any{0, "p"})
	var cr carrierReader
	l.pollUntil(t, id, &cr, func() bool { return cr.pings == 1 })
	// The next attach takes delivery; had the aborted poll kept it, the
	// message would go to the aborted one.
	l.opsOK(t, id, []any{2, "GET", attachTarget(transport.LongPoll, transport.AttachParams{Session: n.SessionID, Ticket: n.Tickets[1], Attempt: 2, Deliver: true})})
	if err := s.Send(t.Context(), transport.Text, []byte("after")); err != nil {
		t.Fatal(err)
	}
	l.pollUntil(t, id, &cr, ended(&cr, 2))
	if !strings.Contains(cr.subs[2].body, `"after"`) {
		t.Errorf("second poll = %q, want the message", cr.subs[2].body)
	}
	if r := cr.subs[1]; r != nil {
		t.Errorf("aborted poll got %+v, want nothing", r)
	}
}

// TestShareStream opens a carrier stream: the pad, the hello, frames as
// they come, a heartbeat; its end ends its sub-requests.
func TestShareStream(t *testing.T) {
	t.Parallel()
	l := startLive(t, &session.Options{Heartbeat: 100e6, MinHeartbeat: 100e6})
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, l.srv.URL+prefix+"/share?v=1&s=1", nil)
	resp, err := l.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Accel-Buffering") != "no" {
		t.Fatalf("stream: %s %v", resp.Status, resp.Header)
	}
	rd := bufio.NewReader(resp.Body)
	line := func() string {
		s, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		return strings.TrimSuffix(s, "\n")
	}
	if pad := line(); strings.Trim(pad, " ") != "" || len(pad) < 2048 {
		t.Fatalf("first line %q, want the pad", pad)
	}
	var hello []any
	if err := json.Unmarshal([]byte(line()), &hello); err != nil || hello[0] != "o" {
		t.Fatalf("hello: %v %v", hello, err)
	}
	id := hello[1].(string)
	if resp, body := l.do(t, http.MethodGet, prefix+"/share?v=1&c="+id+"&n=0", nil, ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a poll of a stream carrier: %s %s, want 404", resp.Status, body)
	}
	n := l.negotiate(t)
	s := l.session(t, n)
	l.opsOK(t, id, []any{1, "GET", attachTarget(transport.LongPoll, transport.AttachParams{Session: n.SessionID, Ticket: n.Tickets[0], Attempt: 1, Deliver: true})}, []any{0, "p"})
	var cr carrierReader
	for cr.pings == 0 || cr.beats == 0 {
		cr.read(t, line())
	}
	if err := s.Send(t.Context(), transport.Text, []byte("streamed")); err != nil {
		t.Fatal(err)
	}
	for !ended(&cr, 1)() {
		cr.read(t, line())
	}
	if !strings.Contains(cr.subs[1].body, `"streamed"`) {
		t.Errorf("poll through the stream = %q", cr.subs[1].body)
	}
	// The poll that follows is parked when the stream ends: the carrier
	// ends with it, and so does the poll, which lets the session go.
	l.opsOK(t, id, []any{2, "GET", attachTarget(transport.LongPoll, transport.AttachParams{Session: n.SessionID, Ticket: n.Tickets[1], Attempt: 2, Deliver: true})}, []any{0, "p"})
	for cr.pings < 2 {
		cr.read(t, line())
	}
	cancel()
	for i := 0; ; i++ {
		resp, body := l.ops(t, id, []any{0, "p"})
		if resp.StatusCode == http.StatusNotFound {
			wantError(t, resp, body, http.StatusNotFound, transport.CodeShareNotFound)
			break
		}
		if i == 1000 {
			t.Fatal("the carrier outlived its stream")
		}
	}
}

// TestShareRefusals checks that every bad request gets a clear answer.
func TestShareRefusals(t *testing.T) {
	t.Parallel()
	l := startLive(t, nil)
	id := l.openPolls(t)
	for _, tc := range []struct {
		name, method, target, body string
		status                     int
		code                       string
	}{
		{"no version", http.MethodGet, "/share", "", http.StatusBadRequest, transport.CodeUnsupportedVersion},
		{"unknown carrier", http.MethodGet, "/share?v=1&c=nope&n=0", "", http.StatusNotFound, transport.CodeShareNotFound},
		{"no ack", http.MethodGet, "/share?v=1&c=" + id, "", http.StatusBadRequest, transport.CodeBadRequest},
		{"ops to an unknown carrier", http.MethodPost, "/share?v=1&c=nope", "[]", http.StatusNotFound, transport.CodeShareNotFound},
		{"ops not JSON", http.MethodPost, "/share?v=1&c=" + id, "[", http.StatusBadRequest, transport.CodeMalformed},
		{"ops not an array", http.MethodPost, "/share?v=1&c=" + id, "{}", http.StatusBadRequest, transport.CodeMalformed},
		{"unknown op", http.MethodPost, "/share?v=1&c=" + id, `[[1,"PUT","/comet/send"]]`, http.StatusBadRequest, transport.CodeMalformed},
		{"op without target", http.MethodPost, "/share?v=1&c=" + id, `[[1,"GET"]]`, http.StatusBadRequest, transport.CodeMalformed},
		{"POST without body", http.MethodPost, "/share?v=1&c=" + id, `[[1,"POST","/comet/send"]]`, http.StatusBadRequest, transport.CodeMalformed},
		{"numbered ping", http.MethodPost, "/share?v=1&c=" + id, `[[1,"p"]]`, http.StatusBadRequest, transport.CodeMalformed},
		{"sub-request 0", http.MethodPost, "/share?v=1&c=" + id, `[[0,"GET","/comet/longpoll"]]`, http.StatusBadRequest, transport.CodeMalformed},
		{"fractional number", http.MethodPost, "/share?v=1&c=" + id, `[[1.5,"GET","/comet/longpoll"]]`, http.StatusBadRequest, transport.CodeMalformed},
		{"too large", http.MethodPost, "/share?v=1&c=" + id, `["` + strings.Repeat("x", 7<<20) + `"]`, http.StatusRequestEntityTooLarge, transport.CodeTooLarge},
		{"PUT", http.MethodPut, "/share?v=1", "", http.StatusMethodNotAllowed, transport.CodeMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := http.Header{}
			if tc.method == http.MethodPost {
				hdr = textPlain
			}
			resp, body := l.do(t, tc.method, prefix+tc.target, hdr, tc.body)
			wantError(t, resp, body, tc.status, tc.code)
		})
	}
	// A sub-request to anything but a session path of an HTTP transport
	// is answered as a sub-request, with the refusal.
	var cr carrierReader
	subs := []struct {
		op     []any
		status int
		code   string
	}{
		{[]any{1, "GET", prefix + "/negotiate"}, http.StatusNotFound, transport.CodeNotFound},
		{[]any{2, "GET", attachTarget(transport.WebSocket, transport.AttachParams{Session: unknownSID, Ticket: "t", Attempt: 1})}, http.StatusNotFound, transport.CodeNotFound},
		{[]any{3, "GET", prefix + "/share?v=1"}, http.StatusNotFound, transport.CodeNotFound},
		{[]any{4, "POST", prefix + "/longpoll?v=1", ""}, http.StatusMethodNotAllowed, transport.CodeMethodNotAllowed},
		{[]any{5, "GET", "http://example.com" + prefix + "/longpoll"}, http.StatusBadRequest, transport.CodeBadRequest},
		{[]any{6, "GET", prefix + "/comet.js"}, http.StatusNotFound, transport.CodeNotFound},
		{[]any{7, "GET", attachTarget(transport.LongPoll, transport.AttachParams{Session: unknownSID, Ticket: "t", Attempt: 1})}, http.StatusNotFound, transport.CodeSessionNotFound},
	}
	var ops [][]any
	for _, s := range subs {
		ops = append(ops, s.op)
	}
	l.opsOK(t, id, ops...)
	l.pollUntil(t, id, &cr, ended(&cr, 1, 2, 3, 4, 5, 6, 7))
	for i, s := range subs {
		r := cr.subs[uint64(i+1)]
		var e transport.ErrorBody
		if r.status != s.status || json.Unmarshal([]byte(r.body), &e) != nil || e.Code != s.code || e.Message == "" {
			t.Errorf("%v: %d %q, want %d %s", s.op, r.status, r.body, s.status, s.code)
		}
	}
}

// TestShareOff checks the servers that do not share: a carrier cannot be
// opened, and the refusal is clear.
func TestShareOff(t *testing.T) {
	t.Parallel()
	l := startLive(t, &session.Options{NoSharing: true})
	if st := l.h.Stats(); st.CarriersOpen != nil {
		t.Errorf("Stats.CarriersOpen = %v with sharing off", st.CarriersOpen)
	}
	resp, body := l.do(t, http.MethodGet, prefix+"/share?v=1", nil, "")
	wantError(t, resp, body, http.StatusNotFound, transport.CodeNotFound)
	resp, body = l.do(t, http.MethodPost, prefix+"/share?v=1&c=x", textPlain, "[]")
	wantError(t, resp, body, http.StatusNotFound, transport.CodeNotFound)
}

// TestShareOrigin checks that a carrier is refused to a page of an
// origin the handler does not allow, as every session request is.
func TestShareOrigin(t *testing.T) {
	t.Parallel()
	l := startLive(t, nil)
	hdr := http.Header{"Origin": {"http://elsewhere.example"}}
	resp, body := l.do(t, http.MethodGet, prefix+"/share?v=1", hdr, "")
	wantError(t, resp, body, http.StatusForbidden, transport.CodeOriginRefused)
	if got := fmt.Sprint(l.h.Sessions()); got != "0" {
		t.Errorf("sessions = %s", got)
	}
}
