package longpoll_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/internal/httpstream/streamtest"
	"github.com/seed-544bbf9f/comet/internal/leakcheck"
	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/longpoll"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// These tests poll the adapter with raw HTTP requests on loopback. A poll
// that should be answered at once runs with a hold of a minute: if it
// parked instead, the test's bound, not a timing assertion, catches it.

const prefix = streamtest.Prefix

// server is a Handler offering only long-polling, shut down when the test
// ends.
type server struct{ *streamtest.Server }

// start serves a Handler with opts (nil for defaults). opts.Serve runs the
// application; nil idles each session until it closes.
func start(t *testing.T, opts *session.Options) *server {
	t.Helper()
	return &server{streamtest.Start(t, streamtest.Config{Options: opts, Adapters: []transport.Adapter{longpoll.New()}})}
}

// request sends one request and reads the whole response.
func (s *server) request(ctx context.Context, method, target, body string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.Srv.URL+target, strings.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	resp, err := s.Srv.Client().Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func (s *server) negotiate(t *testing.T) (*transport.NegotiateResponse, *session.Session) {
	t.Helper()
	resp, body, err := s.request(t.Context(), http.MethodPost, prefix+"/negotiate?v=1", "")
	if err != nil {
		t.Fatal(err)
	}
	n, err := transport.ParseNegotiateResponse(body)
	if resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("negotiate: %s %v; body %s", resp.Status, err, body)
	}
	ss := s.H.Session(n.SessionID)
	if ss == nil {
		t.Fatalf("the handler holds no session %s", n.SessionID)
	}
	return n, ss
}

var cacheBuster atomic.Uint64

// poll is one long-poll as the client sees it.
type poll struct {
	resp    *http.Response
	frames  []transport.Frame
	elapsed time.Duration
	err     error
}

// poll sends a poll and waits for its answer, for at most wait.
func (s *server) poll(ctx context.Context, p transport.AttachParams) poll {
	ctx, cancel := context.WithTimeout(ctx, testutil.Wait)
	defer cancel()
	q := url.Values{}
	p.Encode(q)
	q.Set("z", strconv.FormatUint(cacheBuster.Add(1), 36))
	begin := time.Now()
	resp, body, err := s.request(ctx, http.MethodGet, prefix+"/longpoll?"+q.Encode(), "")
	r := poll{resp: resp, elapsed: time.Since(begin), err: err}
	if err == nil {
		r.frames, r.err = transport.DecodeBatch(body)
	}
	return r
}

// pollAsync starts a poll and delivers its answer on the channel.
func (s *server) pollAsync(ctx context.Context, p transport.AttachParams) <-chan poll {
	ch := make(chan poll, 1)
	go func() { ch <- s.poll(ctx, p) }()
	return ch
}

// want checks a poll's answer: a fresh, uncacheable batch that opens with
// the open frame of the attempt, followed by frames of the given types.
// It returns the frames.
func (r poll) want(t *testing.T, attempt uint64, types ...transport.Type) []transport.Frame {
	t.Helper()
	if r.err != nil {
		t.Fatalf("poll of attempt %d: %v", attempt, r.err)
	}
	h := r.resp.Header
	if r.resp.StatusCode != http.StatusOK || h.Get("Content-Type") != "text/plain; charset=utf-8" ||
		h.Get("Cache-Control") != "no-store, no-transform" || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("poll answered %s with headers %v", r.resp.Status, h)
	}
	got := make([]transport.Type, len(r.frames))
	for i, f := range r.frames {
		got[i] = f.Type
	}
	want := append([]transport.Type{transport.TypeOpen}, types...)
	if string(got) != string(want) {
		t.Fatalf("poll of attempt %d answered frames %q, want %q", attempt, got, want)
	}
	if r.frames[0].Attempt != attempt || r.frames[0].Token == "" {
		t.Fatalf("open frame %+v, want attempt %d and a ticket", r.frames[0], attempt)
	}
	return r.frames
}

// releases are the two ways a parked poll is served: on its request's
// goroutine to the end, and taken over from net/http once parked (at
// once here, rather than after the default half second).
var releases = []struct {
	name string
	d    time.Duration
}{{"kept", -1}, {"taken over", time.Nanosecond}}

// eachRelease runs f, in parallel, once for each way of serving a parked
// poll: opts gets its PollRelease.
func eachRelease(t *testing.T, opts session.Options, f func(t *testing.T, s *server)) {
	for _, r := range releases {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			o := opts
			o.PollRelease = r.d
			f(t, start(t, &o))
		})
	}
}

func deliver(n *transport.NegotiateResponse, ticket string, attempt, ack uint64) transport.AttachParams {
	return transport.AttachParams{Session: n.SessionID, Ticket: ticket, Attempt: attempt, Ack: ack, Deliver: true}
}

func send(t *testing.T, ss *session.Session, msg string) {
	t.Helper()
	if err := ss.Send(t.Context(), transport.Text, []byte(msg)); err != nil {
		t.Fatalf("Send: %v", err)
	}
}

func TestPollParksUntilMessage(t *testing.T) {
	t.Parallel()
	eachRelease(t, session.Options{Hold: time.Minute}, testPollParksUntilMessage)
}

func testPollParksUntilMessage(t *testing.T, s *server) {
	n, ss := s.negotiate(t)

	parked := s.pollAsync(t.Context(), deliver(n, n.Tickets[0], 1, 0))
	testutil.Receive(t, s.Attached, "attach")
	send(t, ss, "hi")
	f := testutil.Receive(t, parked, "poll answer").want(t, 1, transport.TypeText)
	if f[1].Seq != 1 || string(f[1].Payload) != "hi" {
		t.Errorf("message %d %q, want 1 hi", f[1].Seq, f[1].Payload)
	}

	// A poll that does not acknowledge m1 gets it again, at once: delivery
	// continues from what the client has, not from what was sent.
	f = s.poll(t.Context(), deliver(n, f[0].Token, 2, 0)).want(t, 2, transport.TypeText)
	if f[1].Seq != 1 {
		t.Errorf("resend of seq %d, want 1", f[1].Seq)
	}
	// One that acknowledges it gets only what followed.
	send(t, ss, "two")
	f = s.poll(t.Context(), deliver(n, f[0].Token, 3, 1)).want(t, 3, transport.TypeText)
	if f[1].Seq != 2 || string(f[1].Payload) != "two" {
		t.Errorf("message %d %q, want 2 two", f[1].Seq, f[1].Payload)
	}
}

func TestPollHold(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		hb   uint64
		want time.Duration
	}{
		{"server's hold", 0, 300 * time.Millisecond},
		{"shorter, asked", 150, 150 * time.Millisecond},
		{"below the minimum", 50, 100 * time.Millisecond},
		{"above the server's", 5000, 300 * time.Millisecond},
	}
	eachRelease(t, session.Options{Hold: 300 * time.Millisecond, MinHeartbeat: 100 * time.Millisecond}, func(t *testing.T, s *server) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				n, _ := s.negotiate(t)
				p := deliver(n, n.Tickets[0], 1, 0)
				p.Heartbeat = tc.hb
				r := s.poll(t.Context(), p)
				f := r.want(t, 1, transport.TypeHeartbeat)
				if f[0].Interval != uint64(tc.want.Milliseconds()) {
					t.Errorf("open interval %d, want %d", f[0].Interval, tc.want.Milliseconds())
				}
				if r.elapsed < tc.want {
					t.Errorf("heartbeat after %v, before the hold of %v", r.elapsed, tc.want)
				}
			})
		}
	})
}

func TestPollProbeAnsweredAtOnce(t *testing.T) {
	t.Parallel()
	s := start(t, &session.Options{Hold: time.Minute})
	n, ss := s.negotiate(t)
	send(t, ss, "not for probes")
	probe := transport.AttachParams{Session: n.SessionID, Ticket: n.Tickets[0], Attempt: 1}
	s.poll(t.Context(), probe).want(t, 1)
}

func TestNewerPollSupersedesOlder(t *testing.T) {
	t.Parallel()
	eachRelease(t, session.Options{Hold: time.Minute}, testNewerPollSupersedesOlder)
}

func testNewerPollSupersedesOlder(t *testing.T, s *server) {
	n, ss := s.negotiate(t)

	older := s.pollAsync(t.Context(), deliver(n, n.Tickets[0], 1, 0))
	testutil.Receive(t, s.Attached, "attach")
	newer := s.pollAsync(t.Context(), deliver(n, n.Tickets[1], 2, 0))
	testutil.Receive(t, older, "older poll's answer").want(t, 1, transport.TypeSuperseded)

	send(t, ss, "hi")
	testutil.Receive(t, newer, "newer poll's answer").want(t, 2, transport.TypeText)
}

func TestOlderPollRefusedDelivery(t *testing.T) {
	t.Parallel()
	eachRelease(t, session.Options{Hold: time.Minute}, testOlderPollRefusedDelivery)
}

func testOlderPollRefusedDelivery(t *testing.T, s *server) {
	n, ss := s.negotiate(t)

	newer := s.pollAsync(t.Context(), deliver(n, n.Tickets[0], 2, 0))
	testutil.Receive(t, s.Attached, "attach")
	// A delayed or retried poll never takes delivery back, and does not
	// park: two polls must not ping-pong.
	s.poll(t.Context(), deliver(n, n.Tickets[1], 1, 0)).want(t, 1, transport.TypeSuperseded)

	send(t, ss, "hi")
	testutil.Receive(t, newer, "newer poll's answer").want(t, 2, transport.TypeText)
}

// TestPollCancelled runs alone: its goroutine check would count a parallel
// test's goroutines as its own.
func TestPollCancelled(t *testing.T) {
	for _, r := range releases {
		t.Run(r.name, func(t *testing.T) {
			leakcheck.Check(t)
			testPollCancelled(t, start(t, &session.Options{Hold: time.Minute, PollRelease: r.d}))
		})
	}
}

func testPollCancelled(t *testing.T, s *server) {
	n, ss := s.negotiate(t)

	ctx, cancel := context.WithCancel(t.Context())
	parked := s.pollAsync(ctx, deliver(n, n.Tickets[0], 1, 0))
	testutil.Receive(t, s.Attached, "attach")
	cancel()
	if r := testutil.Receive(t, parked, "cancelled poll"); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("cancelled poll returned %v", r.err)
	}
	// The server ends the attachment at once rather than holding it for
	// the rest of the hold.
	if err := testutil.Receive(t, s.Lost, "TransportLost"); err == nil {
		t.Error("TransportLost with a nil error")
	}

	// The session goes on: what was sent meanwhile comes with the next poll.
	send(t, ss, "after")
	f := s.poll(t.Context(), deliver(n, n.Tickets[1], 2, 0)).want(t, 2, transport.TypeText)
	if string(f[1].Payload) != "after" {
		t.Errorf("message %q, want after", f[1].Payload)
	}
}

func TestShutdownDeliversClose(t *testing.T) {
	t.Parallel()
	// The grace period outlasts the test's bound: only the client's
	// acknowledgement can end the session in time.
	eachRelease(t, session.Options{Hold: time.Minute, Grace: time.Minute, ShutdownRetry: shutdownRetry},
		testShutdownDeliversClose)
}

const shutdownRetry = 300 * time.Millisecond

func testShutdownDeliversClose(t *testing.T, s *server) {
	const retry = shutdownRetry
	n, _ := s.negotiate(t)

	parked := s.pollAsync(t.Context(), deliver(n, n.Tickets[0], 1, 0))
	testutil.Receive(t, s.Attached, "attach")
	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
		defer cancel()
		shutdown <- s.H.Shutdown(ctx)
	}()

	c := testutil.Receive(t, parked, "poll answer").want(t, 1, transport.TypeClose)[1]
	if transport.CloseCode(c.Code) != transport.CloseServerShutdown || c.Seq != 1 || c.Retry > uint64(retry.Milliseconds()) {
		t.Errorf("close frame %+v, want seq 1, code 3001, retry at most %d", c, retry.Milliseconds())
	}

	var key transport.Batch
	key.Append(&transport.Frame{Type: transport.TypeKey, Token: n.Secret, Ack: c.Seq})
	resp, body, err := s.request(t.Context(), http.MethodPost, prefix+"/send?v=1&z=ack&s="+n.SessionID, string(key.Bytes))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("acknowledging the close: %v %v %s", err, resp, body)
	}
	if err := testutil.Receive(t, shutdown, "Shutdown"); err != nil {
		t.Errorf("Shutdown = %v, want nil once the close was acknowledged", err)
	}
}

// TestPollTakenOver speaks HTTP/1.1 by hand, to see what a poll taken over
// puts on the wire: the handler has returned while the poll is parked,
// and the answer, when it comes, carries the response's headers (one set
// by a middleware in front included), its length, and the connection's
// close, which follows.
func TestPollTakenOver(t *testing.T) {
	t.Parallel()
	returned := make(chan struct{}, 1)
	s := &server{streamtest.Start(t, streamtest.Config{
		Options:  &session.Options{Hold: time.Minute, PollRelease: time.Nanosecond},
		Adapters: []transport.Adapter{longpoll.New()},
		Wrap: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Middleware", "kept")
				h.ServeHTTP(w, r)
				if r.URL.Path == prefix+"/longpoll" {
					returned <- struct{}{}
				}
			})
		},
	})}
	n, ss := s.negotiate(t)

	conn, err := net.Dial("tcp", s.Srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	q := url.Values{}
	deliver(n, n.Tickets[0], 1, 0).Encode(q)
	fmt.Fprintf(conn, "GET %s/longpoll?%s HTTP/1.1\r\nHost: %s\r\n\r\n", prefix, q.Encode(), s.Srv.Listener.Addr())
	testutil.Receive(t, s.Attached, "attach")
	// The request's goroutine is let go while the poll waits.
	testutil.Receive(t, returned, "the handler's return")

	send(t, ss, "after the takeover")
	conn.SetReadDeadline(time.Now().Add(testutil.Wait))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	h := resp.Header
	if resp.StatusCode != http.StatusOK || !resp.Close ||
		resp.ContentLength != int64(len(body)) || h.Get("Content-Type") != "text/plain; charset=utf-8" ||
		h.Get("Cache-Control") != "no-store, no-transform" || h.Get("X-Middleware") != "kept" || h.Get("Date") == "" {
		t.Errorf("answer %s, length %d for %d bytes, headers %v", resp.Status, resp.ContentLength, len(body), h)
	}
	f := poll{resp: resp}
	if f.frames, f.err = transport.DecodeBatch(body); f.err != nil {
		t.Fatalf("body %q: %v", body, f.err)
	}
	if m := f.want(t, 1, transport.TypeText)[1]; string(m.Payload) != "after the takeover" {
		t.Errorf("message %q", m.Payload)
	}
	// The server closes the connection after the answer.
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("after the answer: read %d bytes, %v; want EOF", n, err)
	}
}

// TestPollTakenOverTLS parks a poll on HTTP/1.1 over TLS, where the
// connection taken over is a TLS one, and on HTTP/2, where no poll is
// taken over: both are answered.
func TestPollTakenOverTLS(t *testing.T) {
	t.Parallel()
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("HTTP/2 %v", h2), func(t *testing.T) {
			t.Parallel()
			returned := make(chan struct{}, 1)
			s := &server{streamtest.Start(t, streamtest.Config{
				Options:  &session.Options{Hold: time.Minute, PollRelease: time.Nanosecond},
				Adapters: []transport.Adapter{longpoll.New()},
				TLS:      true,
				HTTP2:    h2,
				Wrap: func(h http.Handler) http.Handler {
					return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						h.ServeHTTP(w, r)
						if r.URL.Path == prefix+"/longpoll" {
							returned <- struct{}{}
						}
					})
				},
			})}
			n, ss := s.negotiate(t)
			parked := s.pollAsync(t.Context(), deliver(n, n.Tickets[0], 1, 0))
			testutil.Receive(t, s.Attached, "attach")
			if !h2 {
				// Taken over: the handler returns while the poll waits.
				testutil.Receive(t, returned, "the handler's return")
			}
			send(t, ss, "over TLS")
			r := testutil.Receive(t, parked, "poll answer")
			if m := r.want(t, 1, transport.TypeText)[1]; string(m.Payload) != "over TLS" {
				t.Errorf("message %q", m.Payload)
			}
			if r.resp.ProtoMajor != map[bool]int{false: 1, true: 2}[h2] || r.resp.Close == h2 {
				t.Errorf("answered on %s, closing the connection: %v", r.resp.Proto, r.resp.Close)
			}
		})
	}
}

// TestPollTakenOverEndedEmpty ends a session whose poll was taken over:
// the poll is answered with an empty 200, as net/http answers a handler
// that wrote nothing, and the connection closes.
func TestPollTakenOverEndedEmpty(t *testing.T) {
	t.Parallel()
	s := start(t, &session.Options{Hold: time.Minute, PollRelease: time.Nanosecond})
	n, ss := s.negotiate(t)
	parked := s.pollAsync(t.Context(), deliver(n, n.Tickets[0], 1, 0))
	testutil.Receive(t, s.Attached, "attach")
	ss.CloseNow()
	r := testutil.Receive(t, parked, "poll answer")
	if r.err != nil || r.resp.StatusCode != http.StatusOK || len(r.frames) != 0 {
		t.Fatalf("answer %v %v, frames %v; want an empty 200", r.resp, r.err, r.frames)
	}
}
