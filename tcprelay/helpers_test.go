package tcprelay

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/internal/testutil"
)

// harness is a Comet handler serving a Relay on loopback, with the
// relay's events.
type harness struct {
	url    string
	dials  chan DialEvent
	closes chan CloseEvent
}

// startRelay serves a relay with o (events hooked, logs to t) behind a
// handler with ho (nil for defaults), and stops both when t ends.
func startRelay(t testing.TB, o Options, ho *comet.Options) *harness {
	t.Helper()
	hs := &harness{dials: make(chan DialEvent, 64), closes: make(chan CloseEvent, 64)}
	o.OnDial = func(e DialEvent) { testutil.Offer(hs.dials, e) }
	o.OnClose = func(e CloseEvent) { testutil.Offer(hs.closes, e) }
	if o.Logger == nil {
		o.Logger = testutil.Logger(t)
	}
	relay := New(&o)
	var opts comet.Options
	if ho != nil {
		opts = *ho
	}
	opts.Serve = relay.Serve
	opts.Logger = o.Logger
	opts.NegotiateRate = -1
	h := comet.NewHandler(&opts)
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
		defer cancel()
		h.Shutdown(ctx)
		srv.Close()
	})
	hs.url = srv.URL + "/comet"
	return hs
}

// dial opens a session asking for target over tr ("" for any transport).
func (hs *harness) dial(t testing.TB, target, tr string, co *client.Options) *client.Conn {
	t.Helper()
	var o client.Options
	if co != nil {
		o = *co
	}
	o.Target = target
	if tr != "" {
		o.Transports = []string{tr}
	}
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
	defer cancel()
	c, err := client.Dial(ctx, hs.url, &o)
	if err != nil {
		t.Fatalf("dial %s: %v", target, err)
	}
	t.Cleanup(func() {
		c.Close(comet.CloseNormal, "")
		<-c.Done() // within the client's CloseTimeout
	})
	return c
}

// recv returns the next message of c, within testutil.Wait.
func recv(t testing.TB, c *client.Conn) (comet.MessageType, []byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
	defer cancel()
	typ, p, err := c.Recv(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("no message within %v", testutil.Wait)
	}
	return typ, p, err
}

// wantOpen checks that c's first message is the relay's open message.
func wantOpen(t testing.TB, c *client.Conn) {
	t.Helper()
	typ, p, err := recv(t, c)
	if err != nil || typ != comet.Text || string(p) != `{"open":true}` {
		t.Fatalf("first message %v %q %v, want text {\"open\":true}", typ, p, err)
	}
}

// wantClose reads c until its close, checking the code and returning the
// bytes of the binary messages before it.
func wantClose(t testing.TB, c *client.Conn, code comet.CloseCode) []byte {
	t.Helper()
	var got []byte
	for {
		typ, p, err := recv(t, c)
		if err != nil {
			if s := comet.CloseStatus(err); s != code {
				t.Fatalf("closed with %v, want %v (%v)", s, code, err)
			}
			return got
		}
		if typ != comet.Binary {
			t.Fatalf("a %v message %q, want binary", typ, p)
		}
		got = append(got, p...)
	}
}

// backend listens on loopback and serves each connection with f, until t
// ends; it returns its address.
func backend(t testing.TB, f func(c *net.TCPConn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				f(c.(*net.TCPConn))
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// echo copies what it reads back, then closes after the peer's FIN.
func echo(c *net.TCPConn) {
	io.Copy(c, c)
	c.CloseWrite()
}

// recorder is a Resolver and a Dial that record every call: a denial must
// neither dial nor, for a name that cannot be allowed, resolve.
type recorder struct {
	mu      sync.Mutex
	names   map[string][]netip.Addr
	lookups []string
	dials   []string
	dialf   func(ctx context.Context, addr string) (net.Conn, error)
}

func (r *recorder) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lookups = append(r.lookups, host)
	if a, ok := r.names[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (r *recorder) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	r.mu.Lock()
	r.dials = append(r.dials, addr)
	f := r.dialf
	r.mu.Unlock()
	if f != nil {
		return f(ctx, addr)
	}
	return nil, errors.New("dial refused by the test")
}

func (r *recorder) calls() (lookups, dials []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lookups...), append([]string(nil), r.dials...)
}

// blockUntilDone is a dial that hangs until its ctx ends, as a dial to a
// black hole does.
func blockUntilDone(ctx context.Context, addr string) (net.Conn, error) {
	<-ctx.Done()
	return nil, &net.OpError{Op: "dial", Net: "tcp", Err: ctx.Err()}
}
