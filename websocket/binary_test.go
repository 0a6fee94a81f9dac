package websocket_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// Raw binary WebSocket messages (PROTOCOL.md section 4), agreed at
// negotiate, against a gorilla client on loopback.

// negotiateBody negotiates with body and returns the response's bytes and
// its parse.
func (s *server) negotiateBody(t *testing.T, body string) ([]byte, *transport.NegotiateResponse) {
	t.Helper()
	resp, err := s.Srv.Client().Post(s.Srv.URL+prefix+"/negotiate?v=1", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	n, err := transport.ParseNegotiateResponse(b)
	if resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("negotiate: %s %v; body %s", resp.Status, err, b)
	}
	return b, n
}

// writeRaw sends a raw binary message.
func (p *peer) writeRaw(seq uint64, payload []byte) {
	p.t.Helper()
	p.write(gorilla.BinaryMessage, append(transport.AppendRawHeader(nil, seq), payload...))
}

func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func TestNegotiateBinary(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts session.Options
		body string
		want bool
	}{
		{"asked", session.Options{}, `{"binary":true}`, true},
		{"not asked", session.Options{}, ``, false},
		{"asked false", session.Options{}, `{"binary":false}`, false},
		{"refused by NoBinaryFrames", session.Options{NoBinaryFrames: true}, `{"binary":true}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := start(t, &tc.opts)
			body, n := s.negotiateBody(t, tc.body)
			if n.Binary != tc.want {
				t.Fatalf("binary = %v, want %v", n.Binary, tc.want)
			}
			var fields map[string]json.RawMessage
			json.Unmarshal(body, &fields)
			if _, ok := fields["binary"]; ok != tc.want {
				t.Fatalf("response %s: binary field present %v, want %v", body, ok, tc.want)
			}
		})
	}
}

// TestRawEcho sends text and binary messages mixed, binary ones raw, and
// checks the echo keeps their order, carries binary ones raw and text
// ones in text messages.
func TestRawEcho(t *testing.T) {
	t.Parallel()
	s := start(t, &session.Options{Serve: echo})
	_, n := s.negotiateBody(t, `{"binary":true}`)
	c, _ := s.mustDial(t, deliver(n, n.Tickets[0], 1))
	sent := []struct {
		typ transport.Type
		p   []byte
	}{
		{transport.TypeText, []byte("first")},
		{transport.TypeBinary, allBytes()},
		{transport.TypeBinary, nil},
		{transport.TypeText, []byte("fourth")},
		{transport.TypeBinary, []byte("[\"r\",9]\n\r\n")},
		// A binary message in a batch, base64, is still accepted.
		{transport.TypeBinary, []byte{0xff, 0}},
	}
	for i, m := range sent {
		seq := uint64(i + 1)
		switch {
		case m.typ == transport.TypeBinary && i != len(sent)-1:
			c.writeRaw(seq, m.p)
		default:
			c.send(transport.Frame{Type: m.typ, Seq: seq, Payload: m.p})
		}
	}
	for i, m := range sent {
		f := c.next()
		for !f.Type.IsMessage() {
			f = c.next()
		}
		if f.Seq != uint64(i+1) || f.Type != m.typ || !bytes.Equal(f.Payload, m.p) {
			t.Fatalf("echo %d = %c %d %q, want %c %d %q", i, f.Type, f.Seq, f.Payload, m.typ, i+1, m.p)
		}
	}
	if c.raw != 4 {
		t.Fatalf("%d raw binary messages downstream, want 4 (every binary echo)", c.raw)
	}
	for c.acked < uint64(len(sent)) {
		c.next()
	}
}

func TestRawViolations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		agree bool
		data  []byte
		code  transport.CloseCode
		cut   bool // the connection drops at once; the close comes on the next attach
	}{
		{"payload above maxMessage", true, append([]byte("[\"r\",1]\n"), make([]byte, 101)...), transport.CloseMessageTooBig, false},
		{"message above maxBatch", true, append([]byte("[\"r\",1]\n"), make([]byte, 2000)...), transport.CloseMessageTooBig, true},
		{"no header line", true, []byte(`["r",1]`), transport.CloseProtocolError, false},
		{"bad sequence number", true, []byte("[\"r\",01]\nx"), transport.CloseProtocolError, false},
		{"wrong type", true, []byte("[\"b\",1]\nx"), transport.CloseProtocolError, false},
		{"extra element", true, []byte("[\"r\",1,2]\nx"), transport.CloseProtocolError, false},
		{"sequence gap", true, []byte("[\"r\",2]\nx"), transport.CloseProtocolError, false},
		{"not agreed", false, []byte("[\"r\",1]\nx"), transport.CloseProtocolError, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := start(t, &session.Options{MaxMessage: 100, MaxBatch: 1024})
			body := ""
			if tc.agree {
				body = `{"binary":true}`
			}
			s.violate(t, body, gorilla.BinaryMessage, tc.data, tc.cut, tc.code)
		})
	}
}

// TestRawResume drops a connection with raw messages unacknowledged: the
// next attachment replays them, raw, from the client's ack.
func TestRawResume(t *testing.T) {
	t.Parallel()
	s := start(t, nil)
	_, n := s.negotiateBody(t, `{"binary":true}`)
	ss := s.session(t, n)
	c, open := s.mustDial(t, deliver(n, n.Tickets[0], 1))
	payloads := [][]byte{allBytes(), {}, []byte("third")}
	for _, p := range payloads {
		if err := ss.Send(t.Context(), transport.Binary, p); err != nil {
			t.Fatal(err)
		}
	}
	for i := range payloads {
		if f := c.nextOf(transport.TypeBinary); f.Seq != uint64(i+1) {
			t.Fatalf("got seq %d, want %d", f.Seq, i+1)
		}
	}
	c.conn.Close()
	p := deliver(n, open.Token, 2)
	p.Ack = 1
	c, _ = s.mustDial(t, p)
	for i := 1; i < len(payloads); i++ {
		f := c.nextOf(transport.TypeBinary)
		if f.Seq != uint64(i+1) || !bytes.Equal(f.Payload, payloads[i]) {
			t.Fatalf("replayed %d %q, want %d %q", f.Seq, f.Payload, i+1, payloads[i])
		}
	}
	if c.raw != 2 {
		t.Fatalf("%d raw messages replayed, want 2", c.raw)
	}
}

// TestBase64WithoutAgreement checks that a client that did not ask, and a
// client of a server with NoBinaryFrames, get binary messages as before:
// ["b",seq,"base64"] in a text message, byte for byte.
func TestBase64WithoutAgreement(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts session.Options
		body string
	}{
		{"not asked", session.Options{}, ""},
		{"NoBinaryFrames", session.Options{NoBinaryFrames: true}, `{"binary":true}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := start(t, &tc.opts)
			_, n := s.negotiateBody(t, tc.body)
			ss := s.session(t, n)
			c, _ := s.mustDial(t, deliver(n, n.Tickets[0], 1))
			if err := ss.Send(t.Context(), transport.Binary, allBytes()); err != nil {
				t.Fatal(err)
			}
			c.conn.SetReadDeadline(time.Now().Add(testutil.Wait))
			typ, msg, err := c.conn.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			want := `["b",1,"` + base64.StdEncoding.EncodeToString(allBytes()) + `"]` + "\n"
			if typ != gorilla.TextMessage || string(msg) != want {
				t.Fatalf("got message type %d %q, want text %q", typ, msg, want)
			}
		})
	}
}

// TestBroadcastBinary offers one prepared binary message to a session
// that agreed to raw binary messages and one that did not: each gets it
// in its own form, from the one PreparedMessage.
func TestBroadcastBinary(t *testing.T) {
	t.Parallel()
	s := start(t, nil)
	_, agreed := s.negotiateBody(t, `{"binary":true}`)
	_, plain := s.negotiateBody(t, ``)
	ca, _ := s.mustDial(t, deliver(agreed, agreed.Tickets[0], 1))
	cp, _ := s.mustDial(t, deliver(plain, plain.Tickets[0], 1))
	m, err := s.H.NewPreparedMessage(transport.Binary, allBytes())
	if err != nil {
		t.Fatal(err)
	}
	if n := s.H.Broadcast(m); n != 2 {
		t.Fatalf("Broadcast reached %d sessions, want 2", n)
	}
	for _, c := range []*peer{ca, cp} {
		if f := c.nextOf(transport.TypeBinary); f.Seq != 1 || !bytes.Equal(f.Payload, allBytes()) {
			t.Fatalf("got %d %x", f.Seq, f.Payload)
		}
	}
	if ca.raw != 1 || cp.raw != 0 {
		t.Fatalf("raw binary messages: %d to the agreed session, %d to the other; want 1 and 0", ca.raw, cp.raw)
	}
}
