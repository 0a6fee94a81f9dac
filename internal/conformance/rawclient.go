package conformance

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet/transport"
)

// rawClient speaks the protocol by hand, so that conformance tests can send
// what the real client never would: oversize or invalid text, duplicates,
// requests without proof.
type rawClient struct {
	t       *testing.T
	base    string // http://host/prefix
	name    string
	neg     *transport.NegotiateResponse
	tickets []string
	attempt uint64
	ws      *websocket.Conn
	stream  *bufio.Reader // the body of the SSE or XHR stream, once attached
	body    io.Closer
}

func newRawClient(t *testing.T, base, name string) *rawClient {
	t.Helper()
	return newRawClientAsking(t, base, name, "")
}

// newRawClientAsking negotiates with body, a negotiate request's JSON
// ("" for none), as newRawClient does.
func newRawClientAsking(t *testing.T, base, name, body string) *rawClient {
	t.Helper()
	resp, err := http.Post(base+"/negotiate?v=1", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	neg, err := transport.ParseNegotiateResponse(answer)
	if err != nil {
		t.Fatalf("negotiate: %d %s: %v", resp.StatusCode, answer, err)
	}
	r := &rawClient{t: t, base: base, name: name, neg: neg, tickets: neg.Tickets}
	t.Cleanup(func() {
		if r.ws != nil {
			r.ws.Close()
		}
		if r.body != nil {
			r.body.Close()
		}
	})
	return r
}

// attachURL returns a fresh attach URL, spending a ticket.
func (r *rawClient) attachURL(ack uint64) string {
	r.attempt++
	p := transport.AttachParams{Session: r.neg.SessionID, Attempt: r.attempt, Ack: ack, Deliver: true}
	p.Ticket, r.tickets = r.tickets[0], r.tickets[1:]
	q := url.Values{}
	p.Encode(q)
	q.Set("z", fmt.Sprint(r.attempt))
	u := r.base + "/" + r.name + "?" + q.Encode()
	if r.name == transport.WebSocket {
		u = "ws" + strings.TrimPrefix(u, "http")
	}
	return u
}

// send delivers upstream frames: a WebSocket message, or a POST with the
// key frame first. It returns the POST's status (200 on WebSocket).
func (r *rawClient) send(frames ...string) int {
	r.t.Helper()
	batch := strings.Join(frames, "\n")
	if r.name == transport.WebSocket {
		if r.ws == nil {
			r.dialWebSocket(0)
		}
		if err := r.ws.WriteMessage(websocket.TextMessage, []byte(batch)); err != nil {
			r.t.Fatal(err)
		}
		return http.StatusOK
	}
	key := string(transport.AppendFrame(nil, &transport.Frame{Type: transport.TypeKey, Token: r.neg.Secret}))
	resp, err := http.Post(r.base+"/send?v=1&z=p&s="+r.neg.SessionID, "text/plain;charset=UTF-8",
		bytes.NewBufferString(key+"\n"+batch))
	if err != nil {
		r.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func (r *rawClient) dialWebSocket(ack uint64) {
	r.t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(r.attachURL(ack), nil)
	if err != nil {
		r.t.Fatalf("websocket attach: %v (%v)", err, resp)
	}
	r.ws = ws
}

// next returns the next downstream batch: a WebSocket message, an SSE
// event, a line of an XHR stream, or a poll.
func (r *rawClient) next(ctx context.Context, ack uint64) []transport.Frame {
	r.t.Helper()
	var body []byte
	switch r.name {
	case transport.SSE, transport.Streaming:
		body = r.nextOnStream(ctx, ack)
	case transport.WebSocket:
		if r.ws == nil {
			r.dialWebSocket(ack)
		}
		stop := context.AfterFunc(ctx, func() { r.ws.Close() })
		defer stop()
		_, msg, err := r.ws.ReadMessage()
		if err != nil {
			r.t.Fatalf("websocket read: %v", err)
		}
		body = msg
	default:
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.attachURL(ack), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			r.t.Fatalf("poll: %v", err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			r.t.Fatalf("poll: %d %s", resp.StatusCode, body)
		}
	}
	frames, err := transport.DecodeBatch(body)
	if err != nil {
		r.t.Fatalf("downstream %q: %v", body, err)
	}
	for _, f := range frames {
		if f.Type == transport.TypeOpen {
			r.tickets = append(r.tickets, f.Token)
		}
	}
	return frames
}

// nextOnStream attaches a stream if none is open and returns its next
// batch: the data of the next SSE event, or the next frame line of an XHR
// stream, padding skipped.
func (r *rawClient) nextOnStream(ctx context.Context, ack uint64) []byte {
	r.t.Helper()
	if r.stream == nil {
		req, _ := http.NewRequest(http.MethodGet, r.attachURL(ack), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			r.t.Fatalf("%s attach: %v", r.name, err)
		}
		if resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			r.t.Fatalf("%s attach: %d %s", r.name, resp.StatusCode, body)
		}
		r.stream, r.body = bufio.NewReader(resp.Body), resp.Body
	}
	stop := context.AfterFunc(ctx, func() { r.body.Close() })
	defer stop()
	var data []string
	for {
		line, err := r.stream.ReadString('\n')
		if err != nil {
			r.t.Fatalf("%s read: %v", r.name, err)
		}
		line = strings.TrimSuffix(line, "\n")
		if r.name == transport.Streaming {
			if strings.Trim(line, " ") != "" {
				return []byte(line)
			}
			continue
		}
		// The server ends lines with LF alone; comments and id and retry
		// fields carry nothing for this client.
		switch {
		case line == "" && data != nil:
			return []byte(strings.Join(data, "\n"))
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
}

// closeFrame reads downstream until a close frame arrives.
func (r *rawClient) closeFrame(ctx context.Context) transport.Frame {
	r.t.Helper()
	for {
		for _, f := range r.next(ctx, 0) {
			if f.Type == transport.TypeClose {
				// Acknowledge it, as a client must, so the server can forget
				// the session.
				r.send(string(transport.AppendFrame(nil, &transport.Frame{Type: transport.TypeAck, Ack: f.Seq})))
				return f
			}
		}
	}
}
