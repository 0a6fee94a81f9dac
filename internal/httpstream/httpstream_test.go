package httpstream_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/seed-544bbf9f/comet/internal/httpstream"
	"github.com/seed-544bbf9f/comet/transport"
)

const wait = 10 * time.Second

// attachment records how it was ended.
type attachment struct {
	mu    sync.Mutex
	ended []error
}

func (a *attachment) End(err error) {
	a.mu.Lock()
	a.ended = append(a.ended, err)
	a.mu.Unlock()
}

func (a *attachment) endings() []error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]error(nil), a.ended...)
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		proto  int
		stream bool
		want   map[string]string
	}{
		{"stream on HTTP/1.1", 1, true, map[string]string{"Connection": "keep-alive"}},
		{"stream on HTTP/2", 2, true, map[string]string{"Connection": ""}},
		{"one-shot on HTTP/1.1", 1, false, map[string]string{"Connection": "keep-alive"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "/comet/x", nil)
			r.ProtoMajor = tc.proto
			w := httptest.NewRecorder()
			// A middleware in front set a length and a Connection field.
			w.Header().Set("Content-Length", "42")
			w.Header().Set("Connection", "close")
			resp, err := httpstream.Start(w, r, &attachment{}, httpstream.Config{ContentType: "text/x; charset=utf-8", Stream: tc.stream})
			if err != nil {
				t.Fatal(err)
			}
			resp.Finish()
			want := map[string]string{
				"Content-Type":           "text/x; charset=utf-8",
				"Cache-Control":          "no-store, no-transform",
				"X-Accel-Buffering":      "no",
				"X-Content-Type-Options": "nosniff",
				"Content-Length":         "",
			}
			for k, v := range tc.want {
				want[k] = v
			}
			for k, v := range want {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			// A stream commits its headers at once; a one-shot response
			// leaves that to its body.
			if w.Flushed != tc.stream {
				t.Errorf("headers flushed: %v, want %v", w.Flushed, tc.stream)
			}
		})
	}
}

func TestPreambleFlushedAtOnce(t *testing.T) {
	t.Parallel()
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	resp, err := httpstream.Start(w, r, &attachment{}, httpstream.Config{ContentType: "text/plain", Stream: true, Preamble: []byte("  \n")})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Finish()
	if w.Body.String() != "  \n" || !w.Flushed || w.Code != http.StatusOK {
		t.Errorf("after Start: %d %q flushed %v, want 200 and the preamble, flushed", w.Code, w.Body, w.Flushed)
	}
}

// noFlush hides Flush and has no Unwrap, as a buffering middleware's
// writer does.
type noFlush struct{ http.ResponseWriter }

func TestCannotFlush(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	_, err := httpstream.Start(noFlush{rec}, httptest.NewRequest(http.MethodGet, "/", nil), &attachment{},
		httpstream.Config{ContentType: "text/plain", Stream: true, Preamble: []byte("\n")})
	if !errors.Is(err, http.ErrNotSupported) {
		t.Fatalf("Start = %v, want %v", err, http.ErrNotSupported)
	}
	var body transport.ErrorBody
	if rec.Code != http.StatusInternalServerError || rec.Header().Get("Content-Type") != "application/json" ||
		json.Unmarshal(rec.Body.Bytes(), &body) != nil || body.Code != transport.CodeStreamingBroken {
		t.Fatalf("answer %d %v %s, want 500 %s", rec.Code, rec.Header(), rec.Body, transport.CodeStreamingBroken)
	}
	for _, k := range []string{"X-Accel-Buffering", "Connection"} {
		if v := rec.Header().Get(k); v != "" {
			t.Errorf("the refusal carries the stream's %s: %s", k, v)
		}
	}
	if !strings.Contains(body.Message, "middleware") {
		t.Errorf("message %q does not name the likely cause", body.Message)
	}
}

// TestContextEndsAttachment runs in a synctest bubble, where Wait says
// when the context's AfterFunc has run, or surely will not.
func TestContextEndsAttachment(t *testing.T) {
	for _, finished := range []bool{false, true} {
		t.Run(fmt.Sprintf("finished=%v", finished), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				r := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
				a := &attachment{}
				resp, err := httpstream.Start(httptest.NewRecorder(), r, a, httpstream.Config{Stream: true, WriteTimeout: time.Second})
				if err != nil {
					t.Fatal(err)
				}
				if err := resp.Write([]byte("x")); err != nil {
					t.Fatal(err) // a recorder has no deadlines; they are skipped
				}
				if finished {
					resp.Finish()
				}
				cancel()
				synctest.Wait()
				got := a.endings()
				switch {
				case finished && len(got) != 0:
					t.Errorf("a finished response ended its attachment: %v", got)
				case !finished && (len(got) != 1 || !errors.Is(got[0], httpstream.ErrClientGone)):
					t.Errorf("attachment ended with %v, want once with %v", got, httpstream.ErrClientGone)
				}
				if !finished {
					resp.Finish()
				}
			})
		})
	}
}

func TestWriteAfterClose(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	resp, err := httpstream.Start(httptest.NewRecorder(), r, &attachment{}, httpstream.Config{Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Finish()
	for range 2 {
		if err := resp.Close(); err != nil {
			t.Fatalf("Close = %v", err)
		}
	}
	if err := resp.Write([]byte("late")); err != httpstream.ErrClosed {
		t.Errorf("Write after Close = %v, want %v", err, httpstream.ErrClosed)
	}
}

// huge is more than a client that does not read can take: more than the
// socket buffers of a loopback connection, or an HTTP/2 stream's window.
var huge = make([]byte, 64<<20)

// signalling is a middleware's writer: it hides Flush behind Unwrap, and
// tells when a write of huge has begun.
type signalling struct {
	http.ResponseWriter
	once    sync.Once
	writing chan struct{}
}

func (s *signalling) Write(p []byte) (int, error) {
	if len(p) >= len(huge) {
		s.once.Do(func() { close(s.writing) })
	}
	return s.ResponseWriter.Write(p)
}

func (s *signalling) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// tapListener hands out connections that show each write to onWrite
// before making it. They are no *net.TCPConn, so that a response that
// takes one over writes to it as to a TLS connection, waiting on the
// client.
type tapListener struct {
	net.Listener
	onWrite func(p []byte)
}

func (l *tapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &tapConn{Conn: c, onWrite: l.onWrite}, nil
}

type tapConn struct {
	net.Conn
	onWrite func(p []byte)
}

func (c *tapConn) Write(p []byte) (int, error) {
	c.onWrite(p)
	return c.Conn.Write(p)
}

// How a writer's response is served.
const (
	viaTCP     = iota // HTTP/1.1 on TCP: taken over, its writes never wait
	viaConn           // HTTP/1.1 on another net.Conn: taken over, its writes wait
	viaHTTP2          // HTTP/2: net/http's
	viaWrapper        // HTTP/1.1 through a writer that cannot hijack: net/http's
)

var modes = []struct {
	name string
	mode int
}{{"taken over", viaConn}, {"http2", viaHTTP2}, {"not taken over", viaWrapper}}

// noHijack is a middleware's writer that hides Hijack and has no Unwrap.
type noHijack struct{ http.ResponseWriter }

func (n noHijack) Flush() { n.ResponseWriter.(http.Flusher).Flush() }

func (n noHijack) SetWriteDeadline(t time.Time) error {
	return http.NewResponseController(n.ResponseWriter).SetWriteDeadline(t)
}

// writer serves one stream that writes huge to a client that never reads,
// so that the write blocks.
type writer struct {
	srv     *httptest.Server
	resp    chan *httpstream.Response
	writing chan struct{} // closed once the write of huge has begun
	done    chan error    // the error that ended it
}

func startWriter(t *testing.T, mode int, timeout time.Duration) *writer {
	t.Helper()
	wr := &writer{resp: make(chan *httpstream.Response, 1), writing: make(chan struct{}), done: make(chan error, 1)}
	wr.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch mode {
		case viaHTTP2:
			w = &signalling{ResponseWriter: w, writing: wr.writing}
		case viaWrapper:
			w = &signalling{ResponseWriter: noHijack{w}, writing: wr.writing}
		}
		resp, err := httpstream.Start(w, r, &attachment{}, httpstream.Config{Stream: true, WriteTimeout: timeout})
		if err != nil {
			wr.done <- err
			return
		}
		if took := mode == viaTCP || mode == viaConn; resp.TookOver() != took || resp.Prompt() != (mode == viaTCP) {
			t.Errorf("took over %v, prompt %v; want %v, %v", resp.TookOver(), resp.Prompt(), took, mode == viaTCP)
		}
		defer resp.Finish()
		wr.resp <- resp
		wr.done <- resp.Write(huge)
	}))
	switch mode {
	case viaHTTP2:
		wr.srv.EnableHTTP2 = true
		wr.srv.StartTLS()
	case viaConn:
		var once sync.Once
		wr.srv.Listener = &tapListener{Listener: wr.srv.Listener, onWrite: func(p []byte) {
			if len(p) >= len(huge) {
				once.Do(func() { close(wr.writing) })
			}
		}}
		wr.srv.Start()
	default:
		wr.srv.Start()
	}
	t.Cleanup(wr.srv.Close)
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	t.Cleanup(cancel)
	if mode == viaHTTP2 {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, wr.srv.URL, nil)
		resp, err := wr.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ProtoMajor != 2 {
			t.Fatalf("response over %s, want HTTP/2", resp.Proto)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return wr
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", wr.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", wr.srv.Listener.Addr())
	return wr
}

func (wr *writer) result(t *testing.T) error {
	t.Helper()
	select {
	case err := <-wr.done:
		return err
	case <-time.After(wait):
		t.Fatalf("the write still blocks after %v", wait)
		return nil
	}
}

// TestCloseUnblocksWrite closes a stream while it writes more than a
// client that does not read can take: only Close can end that write in
// time, since its deadline is a minute away.
func TestCloseUnblocksWrite(t *testing.T) {
	t.Parallel()
	for _, tc := range modes {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wr := startWriter(t, tc.mode, time.Minute)
			resp := <-wr.resp
			select {
			case <-wr.writing:
			case err := <-wr.done:
				t.Fatalf("the write ended with %v before it began", err)
			}
			resp.Close()
			if err := wr.result(t); err != httpstream.ErrClosed {
				t.Errorf("blocked write ended with %v, want %v", err, httpstream.ErrClosed)
			}
		})
	}
}

// TestWriteDeadline lets a write block on a client that does not read
// until the per-write deadline fails it.
func TestWriteDeadline(t *testing.T) {
	t.Parallel()
	for _, tc := range modes {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wr := startWriter(t, tc.mode, 100*time.Millisecond)
			if err := wr.result(t); errors.Is(err, httpstream.ErrClosed) || err == nil {
				t.Errorf("blocked write ended with %v, want a timeout", err)
			} else if tc.mode != viaHTTP2 && !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("blocked write ended with %v, want %v", err, os.ErrDeadlineExceeded)
			}
		})
	}
}

// TestPromptWrite writes more than a client that does not read can take
// to a stream taken over on TCP: the write returns at once, and Close
// ends the stream however much is still waiting for the client.
func TestPromptWrite(t *testing.T) {
	t.Parallel()
	wr := startWriter(t, viaTCP, time.Minute)
	resp := <-wr.resp
	if err := wr.result(t); err != nil {
		t.Fatalf("Write = %v, want it to return at once", err)
	}
	if err := resp.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if err := resp.Write([]byte("late")); err != httpstream.ErrClosed {
		t.Errorf("Write after Close = %v, want %v", err, httpstream.ErrClosed)
	}
}

// TestTakenOverWire reads a stream taken over byte by byte: net/http's
// headers and chunked preamble, each Write one chunk framed as net/http
// frames it, and Close the last chunk and the connection's end.
func TestTakenOverWire(t *testing.T) {
	t.Parallel()
	a := &attachment{}
	resps := make(chan *httpstream.Response, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := httpstream.Start(w, r, a, httpstream.Config{ContentType: "text/x", Stream: true, Preamble: []byte("pre\n")})
		if err != nil || !resp.TookOver() {
			t.Errorf("Start = %v, took over %v", err, err == nil && resp.TookOver())
			return
		}
		resps <- resp
	}))
	defer srv.Close()
	conn := rawGet(t, srv.Listener.Addr().String())
	resp := <-resps
	if err := resp.Write([]byte("0123456789abcdef!")); err != nil {
		t.Fatal(err)
	}
	if err := resp.Close(); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(wait))
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	head, body, _ := strings.Cut(string(got), "\r\n\r\n")
	for _, line := range []string{"HTTP/1.1 200 OK", "Cache-Control: no-store, no-transform", "Connection: close",
		"Content-Type: text/x", "Transfer-Encoding: chunked", "X-Accel-Buffering: no", "X-Content-Type-Options: nosniff"} {
		if !strings.Contains(head+"\r\n", line+"\r\n") {
			t.Errorf("headers %q lack %q", head, line)
		}
	}
	if want := "4\r\npre\n\r\n11\r\n0123456789abcdef!\r\n0\r\n\r\n"; body != want {
		t.Errorf("body %q, want %q", body, want)
	}
}

// TestTakenOverClientGone drops the client of a stream taken over: the
// connection's reader ends the attachment, since no request's context is
// left to.
func TestTakenOverClientGone(t *testing.T) {
	t.Parallel()
	a := &ending{done: make(chan error, 1)}
	resps := make(chan *httpstream.Response, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := httpstream.Start(w, r, a, httpstream.Config{Stream: true})
		if err != nil || !resp.TookOver() {
			t.Errorf("Start = %v, took over %v", err, err == nil && resp.TookOver())
			return
		}
		resps <- resp
	}))
	defer srv.Close()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close() // the transport closes the connection of a body not read to its end
	defer (<-resps).Close()
	select {
	case err := <-a.done:
		if !errors.Is(err, httpstream.ErrClientGone) {
			t.Errorf("attachment ended with %v, want %v", err, httpstream.ErrClientGone)
		}
	case <-time.After(wait):
		t.Fatal("the attachment was not ended")
	}
}

// ending tells how it was ended.
type ending struct{ done chan error }

func (e *ending) End(err error) { e.done <- err }

// TestHeadersWithPreamble checks that a stream on net/http's writer sends
// its headers and its preamble in one write, not the headers first.
func TestHeadersWithPreamble(t *testing.T) {
	t.Parallel()
	started := make(chan *httpstream.Response, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := httpstream.Start(w, r, &attachment{}, httpstream.Config{ContentType: "text/x", Stream: true, Preamble: []byte("pre\n")})
		if err != nil {
			t.Error(err)
			return
		}
		started <- resp
	}))
	var mu sync.Mutex
	var writes []string
	srv.Listener = &tapListener{Listener: srv.Listener, onWrite: func(p []byte) {
		mu.Lock()
		writes = append(writes, string(p))
		mu.Unlock()
	}}
	srv.Start()
	defer srv.Close()
	rawGet(t, srv.Listener.Addr().String())
	resp := <-started
	defer resp.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(writes) != 1 || !strings.HasPrefix(writes[0], "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(writes[0], "\r\n\r\n4\r\npre\n\r\n") {
		t.Errorf("writes before Start returned: %q, want one: the headers and the preamble", writes)
	}
}

// rawGet sends a bare HTTP/1.1 GET of / to addr on a connection of its
// own, closed when the test ends, and returns the connection to read the
// answer from.
func rawGet(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	return conn
}
