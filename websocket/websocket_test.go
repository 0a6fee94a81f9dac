package websocket_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet/internal/httpstream/streamtest"
	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
	"github.com/seed-544bbf9f/comet/websocket"
)

// These tests speak to the adapter over real WebSocket connections on
// loopback, with gorilla's client writing and reading raw batches.

const prefix = streamtest.Prefix

// server is a Handler offering only WebSocket, shut down when the test
// ends.
type server struct{ *streamtest.Server }

// start serves a Handler with opts (nil for defaults). opts.Serve runs the
// application; nil idles each session until it closes.
func start(t *testing.T, opts *session.Options) *server {
	t.Helper()
	return &server{streamtest.Start(t, streamtest.Config{Options: opts, Adapters: []transport.Adapter{websocket.New(nil)}})}
}

// echo is an application that sends every message back.
func echo(s *session.Session) {
	for {
		typ, p, err := s.Recv(s.Context())
		if err != nil {
			return
		}
		if err := s.Send(s.Context(), typ, p); err != nil {
			return
		}
	}
}

func (s *server) negotiate(t *testing.T) *transport.NegotiateResponse {
	t.Helper()
	_, n := s.negotiateBody(t, "")
	return n
}

// session returns the Session a negotiate made.
func (s *server) session(t *testing.T, n *transport.NegotiateResponse) *session.Session {
	t.Helper()
	ss := s.H.Session(n.SessionID)
	if ss == nil {
		t.Fatalf("the handler holds no session %s", n.SessionID)
	}
	return ss
}

var cacheBuster atomic.Uint64

func (s *server) url(p transport.AttachParams) string {
	q := url.Values{}
	p.Encode(q)
	q.Set("z", strconv.FormatUint(cacheBuster.Add(1), 36))
	return "ws" + strings.TrimPrefix(s.Srv.URL, "http") + prefix + "/websocket?" + q.Encode()
}

// dial attaches by WebSocket. A refused handshake returns the response,
// its body readable.
func (s *server) dial(t *testing.T, p transport.AttachParams, hdr http.Header) (*peer, *http.Response, error) {
	t.Helper()
	return s.dialWith(t, &gorilla.Dialer{}, p, hdr)
}

// dialWith attaches by WebSocket with the dialer d.
func (s *server) dialWith(t *testing.T, d *gorilla.Dialer, p transport.AttachParams, hdr http.Header) (*peer, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testutil.Wait)
	defer cancel()
	conn, resp, err := d.DialContext(ctx, s.url(p), hdr)
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetReadDeadline(time.Now().Add(testutil.Wait))
	return &peer{t: t, conn: conn}, resp, nil
}

// mustDial attaches and returns the connection and its open frame.
func (s *server) mustDial(t *testing.T, p transport.AttachParams) (*peer, transport.Frame) {
	t.Helper()
	return s.mustDialWith(t, &gorilla.Dialer{}, p)
}

// mustDialWith attaches with the dialer d and returns the connection and
// its open frame.
func (s *server) mustDialWith(t *testing.T, d *gorilla.Dialer, p transport.AttachParams) (*peer, transport.Frame) {
	t.Helper()
	c, _, err := s.dialWith(t, d, p, nil)
	if err != nil {
		t.Fatalf("dial attempt %d: %v", p.Attempt, err)
	}
	open := c.next()
	if open.Type != transport.TypeOpen || open.Attempt != p.Attempt {
		t.Fatalf("first frame %+v, want the open frame of attempt %d", open, p.Attempt)
	}
	return c, open
}

func deliver(n *transport.NegotiateResponse, ticket string, attempt uint64) transport.AttachParams {
	return transport.AttachParams{Session: n.SessionID, Ticket: ticket, Attempt: attempt, Deliver: true}
}

// peer is the client end of one WebSocket, reading frame by frame.
type peer struct {
	t     *testing.T
	conn  *gorilla.Conn
	queue []transport.Frame
	acked uint64 // highest ["a",n] the server sent
	raw   int    // raw binary messages read
}

// read returns the next frame, or the error that ended the connection.
func (p *peer) read() (transport.Frame, error) {
	p.t.Helper()
	for len(p.queue) == 0 {
		typ, msg, err := p.conn.ReadMessage()
		if err != nil {
			return transport.Frame{}, err
		}
		if typ == gorilla.BinaryMessage {
			var f transport.Frame
			if err := transport.DecodeRaw(msg, &f); err != nil {
				p.t.Fatalf("server sent a binary message %q that is not a raw binary message: %v", msg, err)
			}
			p.raw++
			p.queue = append(p.queue, f)
			continue
		}
		frames, err := transport.DecodeBatch(msg)
		if err != nil || len(frames) == 0 {
			p.t.Fatalf("server sent %q, not a batch: %v", msg, err)
		}
		p.queue = frames
	}
	f := p.queue[0]
	p.queue = p.queue[1:]
	if f.Type == transport.TypeAck {
		p.acked = max(p.acked, f.Ack)
	}
	return f, nil
}

// next returns the next frame, failing the test if the connection ended.
func (p *peer) next() transport.Frame {
	p.t.Helper()
	f, err := p.read()
	if err != nil {
		p.t.Fatalf("connection ended: %v", err)
	}
	return f
}

// nextOf skips frames until one of type typ.
func (p *peer) nextOf(typ transport.Type) transport.Frame {
	p.t.Helper()
	for {
		if f := p.next(); f.Type == typ {
			return f
		}
	}
}

// drain reads until the server ends the connection and returns the error
// the end showed as.
func (p *peer) drain() error {
	p.t.Helper()
	for {
		if _, err := p.read(); err != nil {
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				p.t.Fatalf("the server did not end the connection within %v", testutil.Wait)
			}
			return err
		}
	}
}

// send writes frames as one batch.
func (p *peer) send(frames ...transport.Frame) {
	p.t.Helper()
	var b transport.Batch
	for i := range frames {
		b.Append(&frames[i])
	}
	p.write(gorilla.TextMessage, b.Bytes)
}

func (p *peer) write(typ int, data []byte) {
	p.t.Helper()
	p.conn.SetWriteDeadline(time.Now().Add(testutil.Wait))
	if err := p.conn.WriteMessage(typ, data); err != nil {
		p.t.Fatalf("write: %v", err)
	}
}

func TestEcho(t *testing.T) {
	t.Parallel()
	s := start(t, &session.Options{Serve: echo})
	n := s.negotiate(t)
	c, _ := s.mustDial(t, deliver(n, n.Tickets[0], 1))
	tests := []struct {
		name string
		typ  transport.Type
		p    string
	}{
		{"text", transport.TypeText, "hello"},
		{"text to escape", transport.TypeText, "line\n\"quoted\"\t\\ \u2028 \x00 ✓ 😀"},
		{"empty text", transport.TypeText, ""},
		{"binary", transport.TypeBinary, "\x00\x01\xfe\xff"},
		{"binary, not UTF-8", transport.TypeBinary, "\xc3\x28"},
		{"empty binary", transport.TypeBinary, ""},
	}
	// Subtests share the connection and its sequence, so they run in order.
	for i, tc := range tests {
		seq := uint64(i + 1)
		t.Run(tc.name, func(t *testing.T) {
			c.t = t // failures belong to the subtest
			c.send(transport.Frame{Type: tc.typ, Seq: seq, Payload: []byte(tc.p)})
			for {
				f := c.next()
				if !f.Type.IsMessage() {
					continue
				}
				if f.Seq != seq || f.Type != tc.typ || string(f.Payload) != tc.p {
					t.Fatalf("echo = %c %d %q, want %c %d %q", f.Type, f.Seq, f.Payload, tc.typ, seq, tc.p)
				}
				return
			}
		})
	}
	c.t = t
	// The server acknowledges what it reads with ["a",n].
	for c.acked < uint64(len(tests)) {
		c.next()
	}
}

func TestOpenFrameFirst(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		hb   uint64
		want uint64 // the interval in force, ms
	}{
		{"server's heartbeat", 0, 1000},
		{"shorter, asked", 300, 300},
		{"below the minimum", 50, 100},
		{"above the server's", 5000, 1000},
	}
	// The application sends at once, so a message is waiting when the
	// client attaches: the open frame must still come first.
	s := start(t, &session.Options{Heartbeat: time.Second, MinHeartbeat: 100 * time.Millisecond,
		Serve: func(ss *session.Session) {
			ss.Send(ss.Context(), transport.Text, []byte("welcome"))
			<-ss.Context().Done()
		}})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := s.negotiate(t)
			p := deliver(n, n.Tickets[0], 7)
			p.Heartbeat = tc.hb
			c, resp, err := s.dial(t, p, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.Header.Get("Cache-Control"); got != "no-store, no-transform" {
				t.Errorf("Cache-Control = %q on the upgrade", got)
			}
			open := c.next()
			if open.Type != transport.TypeOpen || open.Attempt != 7 || open.Ack != 0 ||
				open.Token == "" || open.Interval != tc.want {
				t.Errorf("first frame %+v, want open attempt 7, ack 0, a ticket, interval %d", open, tc.want)
			}
			if m := c.nextOf(transport.TypeText); m.Seq != 1 || string(m.Payload) != "welcome" {
				t.Errorf("message %+v, want 1 welcome", m)
			}
		})
	}
}

func TestUpgradeRefused(t *testing.T) {
	t.Parallel()
	s := start(t, nil)
	used := s.negotiate(t)
	s.mustDial(t, deliver(used, used.Tickets[0], 1))
	tests := []struct {
		name   string
		params func(n *transport.NegotiateResponse) transport.AttachParams
		hdr    http.Header
		status int
		code   string
	}{
		{"used ticket", func(*transport.NegotiateResponse) transport.AttachParams { return deliver(used, used.Tickets[0], 2) },
			nil, http.StatusForbidden, transport.CodeBadTicket},
		{"unknown ticket", func(n *transport.NegotiateResponse) transport.AttachParams { return deliver(n, "bm9uZQ", 1) },
			nil, http.StatusForbidden, transport.CodeBadTicket},
		{"ticket of another session", func(n *transport.NegotiateResponse) transport.AttachParams {
			return deliver(n, used.Tickets[1], 1)
		}, nil, http.StatusForbidden, transport.CodeBadTicket},
		{"unknown session", func(n *transport.NegotiateResponse) transport.AttachParams {
			return transport.AttachParams{Session: "no-such-session", Ticket: n.Tickets[0], Attempt: 1}
		}, nil, http.StatusNotFound, transport.CodeSessionNotFound},
		{"foreign origin", func(n *transport.NegotiateResponse) transport.AttachParams { return deliver(n, n.Tickets[0], 1) },
			http.Header{"Origin": {"https://evil.example"}}, http.StatusForbidden, transport.CodeOriginRefused},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := s.negotiate(t)
			c, resp, err := s.dial(t, tc.params(n), tc.hdr)
			if c != nil || !errors.Is(err, gorilla.ErrBadHandshake) {
				t.Fatalf("dial = %v, want a refused handshake", err)
			}
			wantError(t, resp, tc.status, tc.code)
			if resp.Header.Get("Upgrade") != "" || resp.Header.Get("Sec-Websocket-Accept") != "" {
				t.Errorf("the refusal carries upgrade headers: %v", resp.Header)
			}
		})
	}

	t.Run("not a WebSocket request", func(t *testing.T) {
		n := s.negotiate(t)
		u := "http" + strings.TrimPrefix(s.url(deliver(n, n.Tickets[0], 1)), "ws")
		resp, err := s.Srv.Client().Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		wantError(t, resp, http.StatusBadRequest, transport.CodeBadRequest)
	})
}

// wantError checks that resp is a JSON refusal with the status and code.
func wantError(t *testing.T, resp *http.Response, status int, code string) {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("refusal: %s %q, want %d application/json", resp.Status, resp.Header.Get("Content-Type"), status)
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store, no-transform" {
		t.Errorf("Cache-Control = %q", got)
	}
	var e transport.ErrorBody
	if err := json.Unmarshal(body, &e); err != nil || e.Code != code {
		t.Errorf("refusal body %q, want code %q", body, code)
	}
}

func TestViolationClosesSession(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		typ  int
		data string
		code transport.CloseCode
		// cut is true when the server drops the connection at once, so
		// the close is delivered on the next attach; otherwise the close
		// arrives on the same connection.
		cut bool
	}{
		{"message above maxBatch", gorilla.TextMessage, `["m",1,"` + strings.Repeat("x", 2000) + `"]`,
			transport.CloseMessageTooBig, true},
		{"binary WebSocket message", gorilla.BinaryMessage, `["m",1,"x"]`, transport.CloseProtocolError, true},
		{"malformed batch", gorilla.TextMessage, `["m",1,"x"`, transport.CloseProtocolError, false},
		{"unknown frame", gorilla.TextMessage, `["q"]`, transport.CloseProtocolError, false},
		{"key frame on a WebSocket", gorilla.TextMessage, `["k","secret",0,0]`, transport.CloseProtocolError, false},
		{"sequence gap", gorilla.TextMessage, `["m",2,"x"]`, transport.CloseProtocolError, false},
		{"unpaired surrogate", gorilla.TextMessage, `["m",1,"\udc00"]`, transport.CloseInvalidPayload, false},
		{"message above maxMessage", gorilla.TextMessage, `["m",1,"` + strings.Repeat("x", 101) + `"]`,
			transport.CloseMessageTooBig, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := start(t, &session.Options{MaxMessage: 100, MaxBatch: 1024})
			s.violate(t, "", tc.typ, []byte(tc.data), tc.cut, tc.code)
		})
	}
}

// violate negotiates with body (empty: none), attaches, writes one
// WebSocket message of typ holding data, and checks that the session
// closes with code as its first message: on the same connection, or, when
// cut, on the next attachment, because the server dropped the connection
// at once. Acknowledging the close then ends the session.
func (s *server) violate(t *testing.T, body string, typ int, data []byte, cut bool, code transport.CloseCode) {
	t.Helper()
	s.violateWith(t, &gorilla.Dialer{}, body, typ, data, cut, code)
}

// violateWith is violate with the dialer d, the first attach's.
func (s *server) violateWith(t *testing.T, d *gorilla.Dialer, body string, typ int, data []byte, cut bool, code transport.CloseCode) {
	t.Helper()
	_, n := s.negotiateBody(t, body)
	ss := s.session(t, n)
	c, open := s.mustDialWith(t, d, deliver(n, n.Tickets[0], 1))
	c.write(typ, data)
	if cut {
		c.drain()
		c, _ = s.mustDial(t, deliver(n, open.Token, 2))
	}
	cl := c.nextOf(transport.TypeClose)
	if transport.CloseCode(cl.Code) != code || cl.Seq != 1 {
		t.Fatalf("close frame %+v, want seq 1 code %d", cl, code)
	}
	c.send(transport.Frame{Type: transport.TypeAck, Ack: cl.Seq})
	c.drain()
	testutil.Receive(t, ss.Done(), "end of the session")
}

func TestHeartbeat(t *testing.T) {
	t.Parallel()
	const interval = 200 * time.Millisecond

	t.Run("answered", func(t *testing.T) {
		t.Parallel()
		s := start(t, &session.Options{Heartbeat: interval})
		n := s.negotiate(t)
		c, open := s.mustDial(t, deliver(n, n.Tickets[0], 1))
		if open.Interval != uint64(interval.Milliseconds()) {
			t.Fatalf("open interval %d, want %d", open.Interval, interval.Milliseconds())
		}
		// Three beats outlast the two silent intervals that would drop a
		// client; answering each keeps this one.
		last := time.Now()
		for range 3 {
			c.nextOf(transport.TypeHeartbeat)
			if gap := time.Since(last); gap < interval/2 {
				t.Errorf("heartbeat %v after the previous frame, want about %v", gap, interval)
			}
			last = time.Now()
			c.send(transport.Frame{Type: transport.TypeAck})
		}
		select {
		case err := <-s.Lost:
			t.Errorf("an answering client was dropped: %v", err)
		default:
		}
	})

	t.Run("silent client dropped", func(t *testing.T) {
		t.Parallel()
		s := start(t, &session.Options{Heartbeat: interval})
		n := s.negotiate(t)
		begin := time.Now()
		c, _ := s.mustDial(t, deliver(n, n.Tickets[0], 1))
		beats := 0
		for {
			f, err := c.read()
			if err != nil {
				break
			}
			if f.Type == transport.TypeHeartbeat {
				beats++
			}
		}
		if elapsed := time.Since(begin); elapsed < 2*interval {
			t.Errorf("dropped after %v, before two intervals (%v)", elapsed, 2*interval)
		}
		// Each beat comes an interval after the last write, so the silence
		// check that follows the first beat already finds two intervals
		// passed. Counting beats bounds the drop without a clock.
		if beats < 1 || beats > 2 {
			t.Errorf("%d heartbeats before the drop, want 1 (2 at most)", beats)
		}
		if err := testutil.Receive(t, s.Lost, "TransportLost"); err == nil {
			t.Error("TransportLost with a nil error")
		}
	})
}

func TestSupersede(t *testing.T) {
	t.Parallel()

	t.Run("newer attempt", func(t *testing.T) {
		t.Parallel()
		s := start(t, &session.Options{Serve: echo})
		n := s.negotiate(t)
		first, open := s.mustDial(t, deliver(n, n.Tickets[0], 1))
		second, _ := s.mustDial(t, deliver(n, open.Token, 2))
		first.nextOf(transport.TypeSuperseded)
		first.drain()

		second.send(transport.Frame{Type: transport.TypeText, Seq: 1, Payload: []byte("still here")})
		if m := second.nextOf(transport.TypeText); string(m.Payload) != "still here" {
			t.Errorf("echo on the newer connection = %q", m.Payload)
		}
	})

	t.Run("older attempt", func(t *testing.T) {
		t.Parallel()
		s := start(t, &session.Options{Serve: echo})
		n := s.negotiate(t)
		newer, _ := s.mustDial(t, deliver(n, n.Tickets[0], 2))
		// A delayed request never takes delivery back.
		older, _ := s.mustDial(t, deliver(n, n.Tickets[1], 1))
		if f := older.next(); f.Type != transport.TypeSuperseded {
			t.Errorf("older attempt got %+v after its open frame, want [\"s\"]", f)
		}
		older.drain()

		newer.send(transport.Frame{Type: transport.TypeText, Seq: 1, Payload: []byte("still here")})
		if m := newer.nextOf(transport.TypeText); string(m.Payload) != "still here" {
			t.Errorf("echo on the newer connection = %q", m.Payload)
		}
	})
}

func TestProbeAndCommit(t *testing.T) {
	t.Parallel()
	s := start(t, &session.Options{Serve: echo})
	n := s.negotiate(t)
	first, _ := s.mustDial(t, deliver(n, n.Tickets[0], 1))
	probe, _ := s.mustDial(t, transport.AttachParams{Session: n.SessionID, Ticket: n.Tickets[1], Attempt: 2})

	// A probe sees echoes but no messages; the echo proves its path.
	first.send(transport.Frame{Type: transport.TypeProbe, Attempt: 2, Token: "tok"},
		transport.Frame{Type: transport.TypeText, Seq: 1, Payload: []byte("m1")})
	if e := probe.next(); e.Type != transport.TypeEcho || e.Token != "tok" {
		t.Fatalf("probe got %+v, want [\"e\",\"tok\"]", e)
	}
	if m := first.nextOf(transport.TypeText); string(m.Payload) != "m1" {
		t.Fatalf("delivering connection got %q, want m1", m.Payload)
	}

	// Committing moves delivery: the first connection is superseded and
	// the probe, which acknowledged nothing, gets m1 again.
	first.send(transport.Frame{Type: transport.TypeCommit, Attempt: 2})
	first.nextOf(transport.TypeSuperseded)
	first.drain()
	if m := probe.nextOf(transport.TypeText); m.Seq != 1 || string(m.Payload) != "m1" {
		t.Errorf("committed connection got %d %q, want the resend of 1 m1", m.Seq, m.Payload)
	}
}

// TestProbeAtOnce: a probe sent on a WebSocket the moment it connects, before
// its open frame is read, finds the attachment: the reader waits until the
// session has registered it.
func TestProbeAtOnce(t *testing.T) {
	t.Parallel()
	s := start(t, nil)
	n := s.negotiate(t)
	for attempt := uint64(1); attempt <= 20; attempt++ {
		ticket := n.Tickets[0]
		if attempt > 1 {
			ticket = n.Tickets[1]
		}
		c, _, err := s.dial(t, transport.AttachParams{Session: n.SessionID, Ticket: ticket, Attempt: attempt}, nil)
		if err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
		c.send(transport.Frame{Type: transport.TypeProbe, Attempt: attempt, Token: "now"})
		open := c.next()
		if e := c.nextOf(transport.TypeEcho); e.Token != "now" {
			t.Fatalf("attempt %d: echo %+v", attempt, e)
		}
		n.Tickets[1] = open.Token
		c.conn.Close()
	}
}
