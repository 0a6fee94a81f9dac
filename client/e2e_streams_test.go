package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// rewriteStreams wraps a server so that f may rewrite each write to a
// response on path: call is the response's number among them (from 0),
// write the write's within the response (0 is the preamble). An error
// from f fails the write, and the server ends the attachment.
func rewriteStreams(path string, f func(call, write int, p []byte) ([]byte, error)) func(http.Handler) http.Handler {
	var mu sync.Mutex
	calls := 0
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != path {
				h.ServeHTTP(w, r)
				return
			}
			mu.Lock()
			call := calls
			calls++
			mu.Unlock()
			h.ServeHTTP(&rewriter{ResponseWriter: w, f: func(write int, p []byte) ([]byte, error) {
				return f(call, write, p)
			}}, r)
		})
	}
}

// rewriter passes its writes through f. It keeps every ability of the
// writer it wraps, flushing and deadlines, through FlushError and Unwrap.
type rewriter struct {
	http.ResponseWriter
	f      func(write int, p []byte) ([]byte, error)
	writes int
}

func (w *rewriter) Write(p []byte) (int, error) {
	q, err := w.f(w.writes, p)
	w.writes++
	if _, werr := w.ResponseWriter.Write(q); werr != nil {
		return 0, werr
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w *rewriter) FlushError() error { return http.NewResponseController(w.ResponseWriter).Flush() }

func (w *rewriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// changes records OnTransport calls.
type changes chan [3]string

func (ch changes) record(from, to, reason string) { ch <- [3]string{from, to, reason} }

func (ch changes) expect(t *testing.T, ctx context.Context, want [3]string) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("OnTransport%q, want %q", got, want)
		}
	case <-ctx.Done():
		t.Fatalf("no OnTransport%q", want)
	}
}

func (ch changes) none(t *testing.T) {
	t.Helper()
	select {
	case got := <-ch:
		t.Fatalf("unexpected OnTransport%q", got)
	default:
	}
}

var echoEvent = regexp.MustCompile(`data: \["e","[^"]*"\]\n\n`)

// TestProbeFailureDemotes drops every probe echo from the SSE stream: the
// client's first probe fails within the attach timeout and the session
// moves to long-polling, with stream_buffered; forced to SSE, the client
// keeps the stream, whose messages still flow.
func TestProbeFailureDemotes(t *testing.T) {
	dropEchoes := rewriteStreams("/comet/sse", func(_, _ int, p []byte) ([]byte, error) {
		return echoEvent.ReplaceAll(p, nil), nil
	})
	for _, tc := range []struct {
		name       string
		transports []string
		want       string
	}{
		{"falls back", []string{transport.SSE, transport.LongPoll}, transport.LongPoll},
		{"forced", []string{transport.SSE}, transport.SSE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			srv := newServer(t, session.Options{Serve: echo, MinClientTimeout: 100 * time.Millisecond}, dropEchoes)
			ch := make(changes, 4)
			c, err := client.Dial(ctx, srv.url, &client.Options{Transports: tc.transports, OnTransport: ch.record})
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer c.Close(transport.CloseNormal, "")
			ch.expect(t, ctx, [3]string{"", transport.SSE, ""})
			msgs := numbered(20)
			for _, m := range msgs {
				if err := c.Send(ctx, transport.Text, []byte(m)); err != nil {
					t.Fatal(err)
				}
			}
			if tc.want == transport.LongPoll {
				ch.expect(t, ctx, [3]string{transport.SSE, transport.LongPoll, "stream_buffered"})
			}
			expectEchoes(t, ctx, c, msgs)
			if c.Transport() != tc.want {
				t.Fatalf("Transport() = %q, want %q", c.Transport(), tc.want)
			}
			ch.none(t)
		})
	}
}

// TestProbeOnlyWhenItCanDemote counts the probes a stream's client sends
// after attaching: one when a buffered stream would be left for
// long-polling, none when the stream is forced and a failed probe could
// change nothing.
func TestProbeOnlyWhenItCanDemote(t *testing.T) {
	for _, tc := range []struct {
		name       string
		transports []string
		probes     bool
	}{
		{"can fall back", []string{transport.SSE, transport.LongPoll}, true},
		{"forced", []string{transport.SSE}, false},
		{"forced streaming", []string{transport.Streaming}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			probed := make(chan struct{}, 1)
			countProbes := func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodPost {
						body, err := io.ReadAll(r.Body)
						if err != nil {
							http.Error(w, err.Error(), http.StatusBadRequest)
							return
						}
						if bytes.Contains(body, []byte(`["p",`)) {
							select {
							case probed <- struct{}{}:
							default:
							}
						}
						r.Body = io.NopCloser(bytes.NewReader(body))
					}
					h.ServeHTTP(w, r)
				})
			}
			srv := newServer(t, session.Options{Serve: echo}, countProbes)
			c, err := client.Dial(ctx, srv.url, &client.Options{Transports: tc.transports})
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer c.Close(transport.CloseNormal, "")
			// An echo round trip: a probe sent right after attaching has
			// reached the server by the time the echo comes back, since
			// the client posts in order on one path.
			msgs := numbered(1)
			if err := c.Send(ctx, transport.Text, []byte(msgs[0])); err != nil {
				t.Fatal(err)
			}
			expectEchoes(t, ctx, c, msgs)
			if !tc.probes {
				select {
				case <-probed:
					t.Fatal("a forced stream sent a probe")
				default:
				}
				return
			}
			select {
			case <-probed:
			case <-ctx.Done():
				t.Fatal("no probe after attaching")
			}
		})
	}
}

// TestHeartbeatBurstDemotes adds two heartbeats to the SSE stream right
// after its open frame, as a proxy that held them would release them: the
// client leaves the stream for long-polling.
func TestHeartbeatBurstDemotes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	burst := rewriteStreams("/comet/sse", func(call, _ int, p []byte) ([]byte, error) {
		if call == 0 && bytes.Contains(p, []byte(`data: ["o",`)) {
			p = append(bytes.Clone(p), "data: [\"h\"]\n\ndata: [\"h\"]\n\n"...)
		}
		return p, nil
	})
	srv := newServer(t, session.Options{Serve: echo}, burst)
	ch := make(changes, 4)
	c, err := client.Dial(ctx, srv.url, &client.Options{Transports: []string{transport.SSE, transport.LongPoll}, OnTransport: ch.record})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close(transport.CloseNormal, "")
	ch.expect(t, ctx, [3]string{"", transport.SSE, ""})
	ch.expect(t, ctx, [3]string{transport.SSE, transport.LongPoll, "stream_buffered"})
	exchange(t, ctx, c, numbered(5), 0, 5)
}

// TestStreamCutMidFrame ends the first XHR stream in the middle of a
// frame: the client takes it for a cut, not a recycle nor a malformed
// frame, attaches again, and every message arrives once.
func TestStreamCutMidFrame(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	errCut := errors.New("test: cut")
	cut := rewriteStreams("/comet/streaming", func(call, _ int, p []byte) ([]byte, error) {
		if call == 0 && bytes.Contains(p, []byte(`["m",3,`)) {
			i := bytes.Index(p, []byte(`["m",3,`))
			return p[:i+5], errCut
		}
		return p, nil
	})
	srv := newServer(t, session.Options{Serve: echo}, cut)
	c := dial(t, ctx, srv.url, transport.Streaming, nil)
	exchange(t, ctx, c, numbered(10), 0, 10)
}

// TestStreamNotOurs answers the SSE attach with a page that is not an
// event stream, as a captive portal or a proxy's error page would: the
// attach fails at once, not after the attach timeout, and the client
// moves on to the next transport.
func TestStreamNotOurs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	srv := newServer(t, session.Options{Serve: echo, MaxClientTimeout: 5 * time.Second, MinClientTimeout: 5 * time.Second},
		func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/comet/sse" {
					w.Header().Set("Content-Type", "text/html")
					w.Write([]byte("<html>Please log in</html>"))
					return
				}
				h.ServeHTTP(w, r)
			})
		})
	ch := make(changes, 4)
	start := time.Now()
	c, err := client.Dial(ctx, srv.url, &client.Options{Transports: []string{transport.SSE, transport.Streaming}, OnTransport: ch.record})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close(transport.CloseNormal, "")
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("Dial took %v: the refusal waited for the attach timeout", d)
	}
	ch.expect(t, ctx, [3]string{transport.SSE, transport.Streaming, ""})
	exchange(t, ctx, c, numbered(3), 0, 3)
}

// TestStreamMalformedFrame puts a frame of no known type on the stream
// after its open frame: the client closes the session with 1002, and the
// server hears the close.
func TestStreamMalformedFrame(t *testing.T) {
	runStreams(t, func(t *testing.T, name string) {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		bad := "[\"zz\"]\n"
		if name == transport.SSE {
			bad = "data: [\"zz\"]\n\n"
		}
		inject := rewriteStreams("/comet/"+name, func(call, write int, p []byte) ([]byte, error) {
			if call == 0 && write == 1 {
				p = append(bytes.Clone(p), bad...)
			}
			return p, nil
		})
		got := make(chan error, 1)
		// The client does not wait for the answer to its close: a short
		// grace lets the server forget the session.
		srv := newServer(t, session.Options{Grace: 100 * time.Millisecond, Serve: func(s *session.Session) {
			// Not s.Context(): it ends as the close arrives, and Recv may
			// report either.
			_, _, err := s.Recv(ctx)
			got <- err
		}}, inject)
		c := dial(t, ctx, srv.url, name, nil)
		if _, _, err := c.Recv(ctx); transport.CloseStatus(err) != transport.CloseProtocolError {
			t.Fatalf("Recv = %v, want a CloseError 1002", err)
		}
		select {
		case err := <-got:
			if transport.CloseStatus(err) != transport.CloseProtocolError {
				t.Fatalf("server Recv = %v, want the client's close 1002", err)
			}
		case <-ctx.Done():
			t.Fatal("the server never heard the close")
		}
	})
}

// runStreams runs f on each stream transport, forced, in parallel.
func runStreams(t *testing.T, f func(t *testing.T, name string)) {
	for _, name := range []string{transport.SSE, transport.Streaming} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f(t, name)
		})
	}
}

// TestForcedStreamBuffered holds every SSE response back, as a buffering
// proxy would: forced to SSE, Dial fails with 3004 once
// Options.LastResortTimeout has passed, and tries nothing else.
func TestForcedStreamBuffered(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var mu sync.Mutex
	paths := map[string]int{}
	srv := newServer(t, session.Options{Serve: echo, Grace: 100 * time.Millisecond}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			paths[r.URL.Path]++
			mu.Unlock()
			if r.URL.Path == "/comet/sse" {
				<-r.Context().Done()
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	start := time.Now()
	_, err := client.Dial(ctx, srv.url, &client.Options{Transports: []string{transport.SSE}, LastResortTimeout: 500 * time.Millisecond})
	if transport.CloseStatus(err) != transport.CloseUnreachable {
		t.Fatalf("Dial = %v, want a CloseError 3004", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if paths["/comet/sse"] != 1 || len(paths) != 1 {
		t.Fatalf("requests %v, want one SSE attach, which negotiates", paths)
	}
	t.Logf("gave up on a buffered stream after %v", time.Since(start))
}
