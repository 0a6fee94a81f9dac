// Package streamtest serves a session.Handler on loopback and speaks the
// protocol to it by hand, for the tests of the transport adapters: raw
// requests check the wire of PROTOCOL.md rather than what a client happens
// to send. RunStreamSuite holds the tests that every stream adapter (SSE,
// XHR streaming) must pass, each adapter described by a StreamAdapter: how
// to make it and how its wire reads. The WebSocket adapter's tests use
// only its Server, and speak WebSocket themselves. It is imported by tests
// only.
//
// A Server belongs to one test; its methods may be called from any
// goroutine of that test.
package streamtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// Prefix is where the handler is mounted.
const Prefix = "/comet"

// Wait bounds every step that waits for the server.
const Wait = testutil.Wait

// Config describes a Server.
type Config struct {
	// Options for the handler; nil for defaults. Unless set, the negotiate
	// rate limit is off, the grace period is 1s and each session idles
	// until it is closed.
	Options *session.Options
	// Adapters are the transports offered.
	Adapters []transport.Adapter
	// Wrap, if set, wraps the handler, as a middleware in front would.
	Wrap func(http.Handler) http.Handler
	// HTTP2 serves TLS with HTTP/2 enabled.
	HTTP2 bool
	// TLS serves TLS with HTTP/1.1 only (ignored with HTTP2).
	TLS bool
	// Listener, if set, wraps the server's listener, as a
	// wirecount.Listener does to watch the wire.
	Listener func(net.Listener) net.Listener
}

// Server is a Handler served on loopback for one test. Its cleanup ends
// the sessions the test left open, shuts the handler down and closes the
// server, so that nothing outlives the test.
type Server struct {
	t   *testing.T
	H   *session.Handler
	Srv *httptest.Server
	// Attached receives the transport of every TransportChanged event: a
	// first delivering attachment began.
	Attached chan string
	// Lost receives the error of every TransportLost event.
	Lost chan error
}

// Start serves a handler as cfg says.
func Start(t *testing.T, cfg Config) *Server {
	t.Helper()
	var o session.Options
	if cfg.Options != nil {
		o = *cfg.Options
	}
	o.Logger = testutil.Logger(t)
	if o.NegotiateRate == 0 {
		o.NegotiateRate = -1
	}
	if o.Grace == 0 {
		o.Grace = time.Second
	}
	if o.Serve == nil {
		o.Serve = func(s *session.Session) { <-s.Context().Done() }
	}
	s := &Server{t: t, Attached: make(chan string, 16), Lost: make(chan error, 16)}
	o.Observer = &session.Observer{
		TransportChanged: func(_ *session.Session, _, to, _ string) { testutil.Offer(s.Attached, to) },
		TransportLost:    func(_ *session.Session, _ string, err error) { testutil.Offer(s.Lost, err) },
	}
	s.H = session.NewHandler(&o, cfg.Adapters...)
	var h http.Handler = s.H
	if cfg.Wrap != nil {
		h = cfg.Wrap(h)
	}
	s.Srv = httptest.NewUnstartedServer(h)
	if cfg.Listener != nil {
		s.Srv.Listener = cfg.Listener(s.Srv.Listener)
	}
	if cfg.HTTP2 || cfg.TLS {
		s.Srv.EnableHTTP2 = cfg.HTTP2
		s.Srv.StartTLS()
	} else {
		s.Srv.Start()
	}
	t.Cleanup(func() {
		// Sessions whose clients are gone would wait out the grace period;
		// end them first, so that Shutdown waits only for Serve.
		s.H.Range(func(ss *session.Session) bool {
			ss.CloseNow()
			return true
		})
		ctx, cancel := context.WithTimeout(context.Background(), Wait)
		defer cancel()
		if err := s.H.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		s.Srv.Close()
	})
	return s
}

// Bound returns a context that ends after Wait or with the test.
func Bound(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), Wait)
	t.Cleanup(cancel)
	return ctx
}

// Session is one negotiated session: the client's view and the server's.
type Session struct {
	N *transport.NegotiateResponse
	S *session.Session
}

// Negotiate creates a session.
func (s *Server) Negotiate() *Session {
	s.t.Helper()
	resp, body := s.Do(http.MethodPost, Prefix+"/negotiate?v=1", "")
	n, err := transport.ParseNegotiateResponse(body)
	if resp.StatusCode != http.StatusOK || err != nil {
		s.t.Fatalf("negotiate: %s %v; body %s", resp.Status, err, body)
	}
	ss := s.H.Session(n.SessionID)
	if ss == nil {
		s.t.Fatalf("the handler holds no session %s", n.SessionID)
	}
	return &Session{N: n, S: ss}
}

// Do sends a request and reads the whole response, within Wait.
func (s *Server) Do(method, target, body string) (*http.Response, []byte) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.t.Context(), Wait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.Srv.URL+target, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	resp, err := s.Srv.Client().Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: reading the body: %v", method, target, err)
	}
	return resp, b
}

var cacheBuster atomic.Uint64

// Deliver returns attach parameters that take delivery at once.
func (ss *Session) Deliver(ticket string, attempt, ack uint64) transport.AttachParams {
	return transport.AttachParams{Session: ss.N.SessionID, Ticket: ticket, Attempt: attempt, Ack: ack, Deliver: true}
}

// Target returns the path and query of an attach request, with a fresh
// cache buster.
func Target(name string, p transport.AttachParams) string {
	q := url.Values{}
	p.Encode(q)
	q.Set("z", strconv.FormatUint(cacheBuster.Add(1), 36))
	return Prefix + "/" + name + "?" + q.Encode()
}

// Attach sends an attach GET for target and returns the live response;
// the caller closes its body. ctx bounds the whole response.
func (s *Server) Attach(ctx context.Context, target string) *http.Response {
	s.t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Srv.URL+target, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	resp, err := s.Srv.Client().Do(req)
	if err != nil {
		s.t.Fatalf("attach: %v", err)
	}
	return resp
}

// Post sends upstream frames after the key frame carrying ack, and
// returns the response's status and body.
func (s *Server) Post(ss *Session, ack uint64, frames ...string) (int, []byte) {
	s.t.Helper()
	key := transport.AppendFrame(nil, &transport.Frame{Type: transport.TypeKey, Token: ss.N.Secret, Ack: ack})
	body := string(key) + "\n" + strings.Join(frames, "\n")
	resp, b := s.Do(http.MethodPost, Prefix+"/send?v=1&z="+strconv.FormatUint(cacheBuster.Add(1), 36)+"&s="+ss.N.SessionID, body)
	return resp.StatusCode, b
}

// Ack acknowledges downstream messages up to ack, as a client must.
func (s *Server) Ack(ss *Session, ack uint64) {
	s.t.Helper()
	if status, body := s.Post(ss, ack); status != http.StatusOK {
		s.t.Fatalf("ack %d: %d %s", ack, status, body)
	}
}

// Send sends a text message from the server side of ss.
func (ss *Session) Send(t *testing.T, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), Wait)
	defer cancel()
	if err := ss.S.Send(ctx, transport.Text, []byte(msg)); err != nil {
		t.Fatalf("Send: %v", err)
	}
}

// Chunked is an HTTP/1.1 response read off a raw connection, chunk by
// chunk: each chunk is one write and flush of the server's, which a
// client's transport would hide.
type Chunked struct {
	Status int
	Header http.Header
	conn   net.Conn
	r      *bufio.Reader
}

// AttachRaw sends an attach GET over a fresh connection and reads the
// response head; ctx bounds the whole response. The caller closes it.
func (s *Server) AttachRaw(ctx context.Context, target string) *Chunked {
	s.t.Helper()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.Srv.Listener.Addr().String())
	if err != nil {
		s.t.Fatal(err)
	}
	context.AfterFunc(ctx, func() { conn.Close() })
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, s.Srv.Listener.Addr())
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		conn.Close()
		s.t.Fatalf("raw attach: %v", err)
	}
	c := &Chunked{Status: resp.StatusCode, Header: resp.Header, conn: conn, r: r}
	if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		conn.Close()
		s.t.Fatalf("raw attach: %d with transfer encoding %v, want chunked", resp.StatusCode, resp.TransferEncoding)
	}
	return c
}

// Next returns the next chunk; io.EOF after the last one.
func (c *Chunked) Next() ([]byte, error) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	size, err := strconv.ParseUint(strings.TrimSpace(line), 16, 32)
	if err != nil {
		return nil, fmt.Errorf("chunk size line %q: %v", line, err)
	}
	if size == 0 {
		return nil, io.EOF
	}
	p := make([]byte, size+2)
	if _, err := io.ReadFull(c.r, p); err != nil {
		return nil, err
	}
	if string(p[size:]) != "\r\n" {
		return nil, fmt.Errorf("chunk of %d bytes not followed by CRLF", size)
	}
	return p[:size], nil
}

// Close closes the connection.
func (c *Chunked) Close() error { return c.conn.Close() }

// HideFlush wraps w as a buffering middleware does (a compression
// middleware, say): Flush is hidden, and so is the writer beneath.
func HideFlush(w http.ResponseWriter) http.ResponseWriter { return noFlush{w} }

// HideFlushUnwrap hides Flush too, but offers Unwrap, through which
// http.ResponseController reaches the writer beneath.
func HideFlushUnwrap(w http.ResponseWriter) http.ResponseWriter { return unwrapping{noFlush{w}} }

type noFlush struct{ w http.ResponseWriter }

func (n noFlush) Header() http.Header         { return n.w.Header() }
func (n noFlush) Write(p []byte) (int, error) { return n.w.Write(p) }
func (n noFlush) WriteHeader(code int)        { n.w.WriteHeader(code) }

type unwrapping struct{ noFlush }

func (u unwrapping) Unwrap() http.ResponseWriter { return u.w }
