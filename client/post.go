package client

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// maxResponse bounds the bodies the client reads whole: negotiate, error
// and POST responses, which are small.
const maxResponse = 64 << 10

// appendKeyLocked opens an upstream POST body with the key frame, which
// proves possession of the session secret and carries our ack, and
// returns that ack.
func (c *Conn) appendKeyLocked(b *transport.Batch, wantTicket bool) uint64 {
	ack := c.in.n
	b.Append(&transport.Frame{Type: transport.TypeKey, Token: c.secret, Ack: ack, WantTicket: wantTicket})
	return ack
}

// post sends one upstream batch, body (a key frame carrying ack, then any
// other frames), to P/send, and applies the response: the server's ack of
// upstream messages and a ticket if one was asked for. It returns the
// server's ack. At most one POST is in flight per session (PROTOCOL.md
// section 6): a ticket fetch waits for the long-poll sender's POST.
func (c *Conn) post(ctx context.Context, body []byte, ack uint64) (uint64, error) {
	select {
	case c.postSlot <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	defer func() { <-c.postSlot }()

	ctx, cancel := context.WithTimeout(ctx, c.lim.requestTimeout)
	defer cancel()
	q := url.Values{"v": {strconv.Itoa(transport.Version)}, "s": {c.sid}, "z": {cacheBuster()}}
	if c.replies {
		// The attachment we deliver by: the server puts messages in the
		// answer only while it delivers (PROTOCOL.md section 6).
		c.mu.Lock()
		q.Set("a", strconv.FormatUint(c.postAttempt, 10))
		c.mu.Unlock()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint("/send", q), bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	// text/plain keeps the request CORS-simple: no preflight per POST.
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	limit := maxResponse
	if c.replies {
		// The answer may hold messages: a batch of at most maxBatch.
		limit = max(limit, c.lim.maxBatch+1024)
	}
	data, err := readLimited(resp, limit)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, httpError(resp, data)
	}
	answer, err := parseAnswer(data, c.replies)
	if err != nil {
		return 0, fmt.Errorf("comet: POST response: %w", err)
	}

	c.mu.Lock()
	c.lastPost = time.Now()
	c.in.ackSent(ack)
	for _, n := range answer.acks {
		if _, err := c.out.Ack(n); err != nil {
			c.failLocked(transport.CloseProtocolError, err.Error())
		}
	}
	for _, t := range answer.tickets {
		c.tickets.add(t, time.Now())
	}
	acked := c.out.Acked()
	if len(answer.replies) == 0 {
		c.wakeLocked()
		c.mu.Unlock()
		return acked, nil
	}
	c.control.Wake() // the acks may matter to the writers; receive wakes the rest
	c.mu.Unlock()
	c.receive(answer.replies) // wakes the waiters once, with the replies queued
	return acked, nil
}

// postAnswer is the answer to an upstream POST (PROTOCOL.md section 6).
type postAnswer struct {
	acks    []uint64 // the server's cumulative acks of our messages
	tickets []string
	// replies are the downstream messages, closes and subscribed frames
	// the answer carries, in order, when negotiate agreed to them.
	replies []transport.Frame
}

// parseAnswer decodes the body of a POST's 200 answer. Frames other
// than acks, tickets and, in a session that agreed to replies in POST
// answers, sequenced frames are ignored, as they always were: a newer
// server may add some.
func parseAnswer(data []byte, replies bool) (postAnswer, error) {
	var a postAnswer
	frames, err := transport.DecodeBatch(data)
	if err != nil {
		return a, err
	}
	for i := range frames {
		switch f := &frames[i]; {
		case f.Type == transport.TypeAck:
			a.acks = append(a.acks, f.Ack)
		case f.Type == transport.TypeTicket:
			a.tickets = append(a.tickets, f.Token)
		case replies && f.Type.Sequenced():
			a.replies = append(a.replies, *f)
		}
	}
	return a, nil
}

// readBody reads and closes a response body of at most maxResponse bytes.
func readBody(resp *http.Response) ([]byte, error) {
	return readLimited(resp, maxResponse)
}

// readLimited reads and closes a response body of at most limit bytes.
func readLimited(resp *http.Response, limit int) ([]byte, error) {
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(data) > limit {
		return nil, fmt.Errorf("comet: response larger than %d bytes", limit)
	}
	return data, nil
}

// endpoint returns the URL of path under the mount URL, with query q.
func (c *Conn) endpoint(path string, q url.Values) string {
	return endpoint(c.base, path, q)
}

func endpoint(base *url.URL, path string, q url.Values) string {
	u := *base
	u.Path += path
	u.RawPath = ""
	u.RawQuery = q.Encode()
	return u.String()
}

// cacheBuster returns a value for the z parameter, unique per request, so
// that no cache between client and server answers a request with another's
// response (PROTOCOL.md section 2).
func cacheBuster() string {
	return strconv.FormatUint(rand.Uint64(), 36)
}
