package httpstream_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	if len(p) == len(huge) {
		s.once.Do(func() { close(s.writing) })
	}
	return s.ResponseWriter.Write(p)
}

func (s *signalling) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// writer serves one stream that writes huge to a client that never reads,
// so that the write blocks.
type writer struct {
	srv     *httptest.Server
	resp    chan *httpstream.Response
	writing chan struct{} // closed once the write of huge has begun
	done    chan error    // the error that ended it
}

func startWriter(t *testing.T, http2 bool, timeout time.Duration) *writer {
	t.Helper()
	wr := &writer{resp: make(chan *httpstream.Response, 1), writing: make(chan struct{}), done: make(chan error, 1)}
	wr.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w = &signalling{ResponseWriter: w, writing: wr.writing}
		resp, err := httpstream.Start(w, r, &attachment{}, httpstream.Config{Stream: true, WriteTimeout: timeout})
		if err != nil {
			wr.done <- err
			return
		}
		defer resp.Finish()
		wr.resp <- resp
		wr.done <- resp.Write(huge)
	}))
	if http2 {
		wr.srv.EnableHTTP2 = true
		wr.srv.StartTLS()
	} else {
		wr.srv.Start()
	}
	t.Cleanup(wr.srv.Close)
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	t.Cleanup(cancel)
	if http2 {
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
	for _, http2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("http2=%v", http2), func(t *testing.T) {
			t.Parallel()
			wr := startWriter(t, http2, time.Minute)
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
	for _, http2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("http2=%v", http2), func(t *testing.T) {
			t.Parallel()
			wr := startWriter(t, http2, 100*time.Millisecond)
			if err := wr.result(t); errors.Is(err, httpstream.ErrClosed) || err == nil {
				t.Errorf("blocked write ended with %v, want a timeout", err)
			} else if !http2 && !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("blocked write ended with %v, want %v", err, os.ErrDeadlineExceeded)
			}
		})
	}
}
