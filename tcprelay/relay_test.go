package tcprelay

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/internal/testutil"
)

// TestDenied checks every kind of target the policy refuses: each closes
// with 3100, dials nothing, and resolves only names an entry could admit.
func TestDenied(t *testing.T) {
	t.Parallel()
	rec := &recorder{names: map[string][]netip.Addr{
		"loop.test":   {netip.MustParseAddr("127.0.0.1")},
		"mapped.test": {netip.MustParseAddr("::ffff:10.1.2.3")},
		"meta.test":   {netip.MustParseAddr("169.254.169.254")},
	}}
	hs := startRelay(t, Options{
		// The networks admit public addresses on their ports: the special
		// ones below must still be refused.
		Allow: []string{"loop.test:7379", "mapped.test:7379", "meta.test:80", "0.0.0.0/0:8000-8100",
			"[::/0]:8000-8100", "198.51.100.0/24:20-6700"},
		Resolver: rec, Dial: rec.Dial,
	}, nil)
	tests := []struct {
		target string
		lookup bool // the name is resolved, then its address refused
	}{
		{target: ""},
		{target: "not.listed:7379"},
		{target: "loop.test:7380"},
		{target: "127.0.0.1:22"},
		{target: "127.0.0.1:8080"},
		{target: "169.254.169.254:80"},
		{target: "169.254.169.254:8080"},
		{target: "[fd00:ec2::254]:8080"},
		{target: "10.0.0.1:8080"},
		{target: "172.16.5.4:8080"},
		{target: "192.168.1.1:8080"},
		{target: "100.64.0.1:8080"},
		{target: "224.0.0.1:8080"},
		{target: "255.255.255.255:8080"},
		{target: "198.51.100.7:25"},
		{target: "198.51.100.7:6667"},
		{target: "198.51.100.7:6697"},
		{target: "loop.test:7379", lookup: true},
		{target: "mapped.test:7379", lookup: true},
		{target: "meta.test:80", lookup: true},
		{target: "[::ffff:127.0.0.1]:8080"},
		{target: "[64:ff9b::7f00:1]:8080"},
		{target: "[::ffff:169.254.169.254]:8080"},
		{target: "0.0.0.0:8080"},
		{target: "[::]:8080"},
		{target: "[::1]:8080"},
		{target: "[fe80::1]:8080"},
		{target: "[ff02::1]:8080"},
	}
	for _, tc := range tests {
		c := hs.dial(t, tc.target, comet.WebSocket, nil)
		if got := wantClose(t, c, comet.CloseRelayNotAllowed); len(got) != 0 {
			t.Errorf("%q: %d bytes before the close", tc.target, len(got))
		}
		e := testutil.Receive(t, hs.dials, "dial event")
		if e.Allowed || e.Code != comet.CloseRelayNotAllowed || e.Target != tc.target || e.Addr.IsValid() {
			t.Errorf("%q: event %+v", tc.target, e)
		}
		t.Logf("%-30q refused: %s", tc.target, e.Reason)
	}
	lookups, dials := rec.calls()
	if len(dials) != 0 {
		t.Errorf("dialed %q for refused targets", dials)
	}
	var want []string
	for _, tc := range tests {
		if tc.lookup {
			want = append(want, hostOf(tc.target))
		}
	}
	if !slices.Equal(lookups, want) {
		t.Errorf("resolved %q, want only %q", lookups, want)
	}
}

func hostOf(target string) string {
	h, _, _ := net.SplitHostPort(target)
	return h
}

// TestAllowedLoopback: an explicit entry admits a loopback back-end, its
// bytes reach the client after the open message, the client's reach it,
// and the client's close ends the relay with a FIN, after what it sent.
func TestAllowedLoopback(t *testing.T) {
	t.Parallel()
	got := make(chan []byte, 1)
	addr := backend(t, func(c *net.TCPConn) {
		c.Write([]byte("+OK hello\r\n"))
		b, err := io.ReadAll(c) // until the relay's FIN; a reset is an error
		if err != nil {
			t.Errorf("back-end read: %v", err)
		}
		got <- b
	})
	hs := startRelay(t, Options{Allow: []string{addr}}, nil)
	c := hs.dial(t, addr, comet.LongPoll, nil)
	wantOpen(t, c)
	if typ, p, err := recv(t, c); err != nil || typ != comet.Binary || string(p) != "+OK hello\r\n" {
		t.Fatalf("recv %v %q %v", typ, p, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
	defer cancel()
	c.Send(ctx, comet.Text, []byte("PING\r\n"))
	c.Send(ctx, comet.Binary, []byte{0, 1, 2, 0xff})
	c.Close(comet.CloseNormal, "bye")
	if b := testutil.Receive(t, got, "back-end's bytes"); !bytes.Equal(b, []byte("PING\r\n\x00\x01\x02\xff")) {
		t.Errorf("back-end got %q", b)
	}
	e := testutil.Receive(t, hs.dials, "dial event")
	if !e.Allowed || e.Code != 0 || e.Addr.String() != addr {
		t.Errorf("dial event %+v", e)
	}
	ce := testutil.Receive(t, hs.closes, "close event")
	if ce.Code != comet.CloseNormal || ce.BytesUp != 10 || ce.BytesDown != 11 || ce.Addr.String() != addr {
		t.Errorf("close event %+v", ce)
	}
}

// TestFailures checks the close codes of a target that is allowed and
// cannot be reached, or whose back-end ends the connection.
func TestFailures(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := ln.Addr().String()
	ln.Close()
	payload := make([]byte, 300<<10)
	rand.Read(payload)
	writeAndClose := backend(t, func(c *net.TCPConn) { c.Write(payload) })
	reset := backend(t, func(c *net.TCPConn) {
		// Reset once the relay is surely open: a reset during the
		// handshake is a failed connect.
		c.Read(make([]byte, 1))
		c.SetLinger(0) // Close sends a reset
	})
	blackhole := &recorder{dialf: blockUntilDone}
	unresolved := &recorder{}
	tests := []struct {
		name   string
		opts   Options
		target string
		code   comet.CloseCode
		want   []byte // the bytes before the close
	}{
		{"refused", Options{Allow: []string{closedPort}}, closedPort, comet.CloseRelayRefused, nil},
		{"connect timeout", Options{Allow: []string{"198.51.100.1:8080"}, Dial: blackhole.Dial, ConnectTimeout: 50 * time.Millisecond},
			"198.51.100.1:8080", comet.CloseRelayConnectTimeout, nil},
		{"DNS failure", Options{Allow: []string{"gone.test:8080"}, Resolver: unresolved}, "gone.test:8080", comet.CloseRelayDNS, nil},
		{"reset", Options{Allow: []string{reset}}, reset, comet.CloseRelayReset, nil},
		{"back-end closed", Options{Allow: []string{writeAndClose}}, writeAndClose, comet.CloseRelayClosed, payload},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hs := startRelay(t, tc.opts, nil)
			c := hs.dial(t, tc.target, comet.WebSocket, nil)
			if tc.code >= comet.CloseRelayReset {
				wantOpen(t, c)
			}
			if tc.code == comet.CloseRelayReset {
				ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
				defer cancel()
				c.Send(ctx, comet.Text, []byte("x"))
			}
			if got := wantClose(t, c, tc.code); !bytes.Equal(got, tc.want) {
				t.Errorf("%d bytes before the close, want %d", len(got), len(tc.want))
			}
			e := testutil.Receive(t, hs.dials, "dial event")
			t.Logf("dial event: %+v", e)
		})
	}
}

// TestIdle: a relay through which nothing passes for IdleTimeout closes
// with 3106, and the back-end sees the connection end.
func TestIdle(t *testing.T) {
	t.Parallel()
	ended := make(chan error, 1)
	addr := backend(t, func(c *net.TCPConn) {
		_, err := io.ReadAll(c)
		ended <- err
	})
	hs := startRelay(t, Options{Allow: []string{addr}, IdleTimeout: 100 * time.Millisecond}, nil)
	c := hs.dial(t, addr, comet.WebSocket, nil)
	wantOpen(t, c)
	wantClose(t, c, comet.CloseRelayIdle)
	testutil.Receive(t, ended, "back-end's end")
	if ce := testutil.Receive(t, hs.closes, "close event"); ce.Code != comet.CloseRelayIdle || ce.Duration < 100*time.Millisecond {
		t.Errorf("close event %+v", ce)
	}
}

// TestCaps: past MaxConnsPerClient, or MaxConns, a session closes with
// 3006, and a relay that ends gives its slot back.
func TestCaps(t *testing.T) {
	t.Parallel()
	addr := backend(t, func(c *net.TCPConn) { io.Copy(io.Discard, c) })
	for _, o := range []Options{{MaxConnsPerClient: 2}, {MaxConns: 2}} {
		o.Allow = []string{addr}
		hs := startRelay(t, o, nil)
		a := hs.dial(t, addr, comet.WebSocket, nil)
		wantOpen(t, a)
		b := hs.dial(t, addr, comet.WebSocket, nil)
		wantOpen(t, b)
		over := hs.dial(t, addr, comet.WebSocket, nil)
		wantClose(t, over, comet.CloseOverloaded)
		a.Close(comet.CloseNormal, "")
		testutil.Receive(t, hs.closes, "close event")
		again := hs.dial(t, addr, comet.WebSocket, nil)
		wantOpen(t, again)
		codes := []comet.CloseCode{}
		for range 4 {
			codes = append(codes, testutil.Receive(t, hs.dials, "dial event").Code)
		}
		if !slices.Equal(codes, []comet.CloseCode{0, 0, comet.CloseOverloaded, 0}) {
			t.Errorf("%+v: dial codes %v", o, codes)
		}
	}
}

// TestEcho10MiB sends 10 MiB of random bytes each way through an echo
// back-end, on each transport, and compares their SHA-256.
func TestEcho10MiB(t *testing.T) {
	t.Parallel()
	size := 10 << 20
	if testing.Short() {
		size = 1 << 20
	}
	addr := backend(t, echo)
	hs := startRelay(t, Options{Allow: []string{addr}}, nil)
	for _, tr := range []string{comet.WebSocket, comet.SSE, comet.Streaming, comet.LongPoll} {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			c := hs.dial(t, addr, tr, nil)
			wantOpen(t, c)
			data := make([]byte, size)
			rand.Read(data)
			start := time.Now()
			sent := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 4*testutil.Wait)
				defer cancel()
				for b := data; len(b) > 0; {
					n := min(len(b), 32<<10)
					if err := c.Send(ctx, comet.Binary, b[:n]); err != nil {
						sent <- err
						return
					}
					b = b[n:]
				}
				sent <- nil
			}()
			h := sha256.New()
			for got := 0; got < size; {
				_, p, err := recv(t, c)
				if err != nil {
					t.Fatalf("after %d bytes: %v", got, err)
				}
				h.Write(p)
				got += len(p)
			}
			if err := <-sent; err != nil {
				t.Fatal(err)
			}
			if want := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), want[:]) {
				t.Fatal("the echoed bytes differ")
			}
			el := time.Since(start)
			t.Logf("%s: %d MiB each way in %v (%.1f MB/s each way)", tr, size>>20, el.Round(time.Millisecond),
				float64(size)/el.Seconds()/1e6)
			c.Close(comet.CloseNormal, "")
		})
	}
}

// TestBackpressure pushes 16 MiB each way through a back-end that reads
// slowly and a client that reads slowly, and checks that the live heap
// stays bounded by the windows, not by the bytes pushed.
func TestBackpressure(t *testing.T) {
	const size = 16 << 20
	const window = 256 << 10
	pace := func(i int) {
		if i%4 == 0 {
			<-time.After(time.Millisecond) // a slow reader, not a wait for an event
		}
	}
	backendDone := make(chan int, 1)
	addr := backend(t, func(c *net.TCPConn) {
		var wg sync.WaitGroup
		wg.Go(func() { // write size bytes as fast as the relay takes them
			b := make([]byte, 64<<10)
			for n := 0; n < size; n += len(b) {
				if _, err := c.Write(b); err != nil {
					return
				}
			}
		})
		total, b := 0, make([]byte, 16<<10)
		for i := 0; ; i++ {
			n, err := c.Read(b)
			total += n
			if err != nil {
				break
			}
			pace(i)
		}
		backendDone <- total
		wg.Wait()
	})
	hs := startRelay(t, Options{Allow: []string{addr}}, &comet.Options{
		WindowBytes: window, InboundBytes: window, MaxMessage: 32 << 10,
	})
	c := hs.dial(t, addr, comet.WebSocket, &client.Options{WindowBytes: window, ReceiveBuffer: 8})
	wantOpen(t, c)

	var ms runtime.MemStats
	base := liveHeap(&ms)
	peak := base
	var mu sync.Mutex
	sample := func() {
		h := liveHeap(&ms)
		mu.Lock()
		peak = max(peak, h)
		mu.Unlock()
	}
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				sample()
			}
		}
	}()
	sent := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 6*testutil.Wait)
		defer cancel()
		b := make([]byte, 32<<10)
		for n := 0; n < size; n += len(b) {
			if err := c.Send(ctx, comet.Binary, b); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	start := time.Now()
	got := 0
	for i := 0; got < size; i++ {
		_, p, err := recv(t, c)
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
		got += len(p)
		pace(i)
	}
	if err := testutil.Receive(t, sent, "the end of sending"); err != nil {
		t.Fatal(err)
	}
	c.Close(comet.CloseNormal, "") // the relay's FIN ends the back-end's reading
	up := testutil.Receive(t, backendDone, "back-end's total")
	close(stop)
	<-sampled
	growth := peak - base
	t.Logf("pushed %d MiB each way in %v; live heap %.1f MiB at start, peak %.1f MiB (+%.1f MiB)",
		size>>20, time.Since(start).Round(time.Millisecond), mib(base), mib(peak), mib(growth))
	if up != size {
		t.Errorf("the back-end read %d bytes, want %d", up, size)
	}
	// The windows: client out and server in (upstream), server out and
	// client receive buffer (downstream), each ~256 KiB, plus base64 and
	// batch copies: about 2.5 MiB. 3x that, and far under the 32 MiB pushed.
	if limit := 8 << 20; growth > uint64(limit) {
		t.Errorf("live heap grew by %.1f MiB, above %.1f MiB", mib(growth), mib(uint64(limit)))
	}
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// liveHeap returns the bytes of live heap objects, after a collection.
func liveHeap(ms *runtime.MemStats) uint64 {
	runtime.GC()
	runtime.ReadMemStats(ms)
	return ms.HeapAlloc
}

// TestReadBufferAboveMaxMessage: reads larger than the session's
// MaxMessage are sent in pieces that fit, none lost.
func TestReadBufferAboveMaxMessage(t *testing.T) {
	t.Parallel()
	payload := make([]byte, 200<<10)
	rand.Read(payload)
	addr := backend(t, func(c *net.TCPConn) { c.Write(payload) })
	hs := startRelay(t, Options{Allow: []string{addr}, ReadBuffer: 64 << 10}, &comet.Options{MaxMessage: 5000})
	c := hs.dial(t, addr, comet.LongPoll, nil)
	wantOpen(t, c)
	if got := wantClose(t, c, comet.CloseRelayClosed); !bytes.Equal(got, payload) {
		t.Errorf("got %d bytes, want the %d sent", len(got), len(payload))
	}
	if ce := testutil.Receive(t, hs.closes, "close event"); ce.BytesDown != int64(len(payload)) {
		t.Errorf("close event %+v", ce)
	}
}

// TestNegotiateGrants: the relay connects to the target the negotiate
// hook granted, not the one the client asked for, and a hook that grants
// none leaves the relay nothing to connect to.
func TestNegotiateGrants(t *testing.T) {
	t.Parallel()
	addr := backend(t, echo)
	hs := startRelay(t, Options{Allow: []string{addr}}, &comet.Options{
		Negotiate: func(n *comet.Negotiation) (comet.Decision, error) {
			if n.Target == "echo.alias:7000" {
				return comet.Decision{Target: addr}, nil
			}
			return comet.Decision{}, nil
		},
	})
	c := hs.dial(t, "echo.alias:7000", comet.WebSocket, nil)
	wantOpen(t, c)
	if e := testutil.Receive(t, hs.dials, "dial event"); e.Target != addr || e.Addr.String() != addr {
		t.Errorf("dial event %+v, want the granted %s", e, addr)
	}
	c = hs.dial(t, addr, comet.WebSocket, nil)
	wantClose(t, c, comet.CloseRelayNotAllowed)
	if e := testutil.Receive(t, hs.dials, "dial event"); e.Target != "" || e.Code != comet.CloseRelayNotAllowed {
		t.Errorf("dial event %+v, want no target granted", e)
	}
}
