package client_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// wsKiller dials connections for the client and kills each WebSocket at
// its first write after the handshake: a middlebox that lets the upgrade
// through and drops the connection once data flows.
type wsKiller struct {
	mu    sync.Mutex
	kills int
}

func (k *wsKiller) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &killConn{Conn: conn, k: k}, nil
}

func (k *wsKiller) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.kills
}

type killConn struct {
	net.Conn
	k      *wsKiller
	mu     sync.Mutex
	writes int
	ws     bool
}

func (c *killConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	if c.writes == 1 {
		c.ws = bytes.HasPrefix(p, []byte("GET /comet/websocket"))
	}
	kill := c.ws && c.writes > 1
	c.mu.Unlock()
	if kill {
		c.k.mu.Lock()
		c.k.kills++
		c.k.mu.Unlock()
		c.Conn.Close()
		return 0, errors.New("test: connection killed")
	}
	return c.Conn.Write(p)
}

// TestEarlyDeathDemotion kills every WebSocket as soon as the client
// writes on it: after three attachments that die right after they start,
// the client leaves WebSocket for the next transport, says why
// (early_death), and delivers what it had queued, once.
func TestEarlyDeathDemotion(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	srv := newServer(t, session.Options{Serve: echo}, nil)
	killer := &wsKiller{}
	changes := make(chan [3]string, 8)
	c, err := client.Dial(ctx, srv.url, &client.Options{NetDialContext: killer.dial,
		OnTransport: func(from, to, reason string) { changes <- [3]string{from, to, reason} }})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close(transport.CloseNormal, "")
	if got, want := <-changes, [3]string{"", transport.WebSocket, ""}; got != want {
		t.Fatalf("OnTransport%q, want %q", got, want)
	}
	msgs := numbered(3)
	exchange(t, ctx, c, msgs, 0, 3)
	if got, want := <-changes, [3]string{transport.WebSocket, transport.SSE, "early_death"}; got != want {
		t.Fatalf("OnTransport%q, want %q", got, want)
	}
	if n := killer.count(); n != 3 {
		t.Fatalf("%d WebSockets killed, want 3", n)
	}
	exchange(t, ctx, c, numbered(6), 3, 6)
}

// TestForcedEarlyDeath kills every WebSocket of a client forced to it:
// there is nothing to demote WebSocket to, so the client keeps resuming
// it, backing off, until the grace period is over.
func TestForcedEarlyDeath(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	srv := newServer(t, session.Options{Serve: echo, Grace: time.Second}, nil)
	killer := &wsKiller{}
	c := dial(t, ctx, srv.url, transport.WebSocket, &client.Options{NetDialContext: killer.dial})
	if err := c.Send(ctx, transport.Text, []byte("x")); err != nil {
		t.Fatalf("Send: %v", err)
	}
	_, _, err := c.Recv(ctx)
	if transport.CloseStatus(err) != transport.CloseSessionExpired {
		t.Fatalf("Recv = %v, want a CloseError 3000", err)
	}
	if n := killer.count(); n <= 3 {
		t.Fatalf("%d WebSockets killed, want more than 3", n)
	}
	t.Logf("%d WebSockets killed before the grace period ended", killer.count())
}

// idleCutter dials connections for the client and closes each one that
// has carried no byte either way for idle: a proxy's idle timeout. It
// closes lived when a connection dialled after a cut has lived for three
// idle timeouts, which only traffic more frequent than the timeout allows.
type idleCutter struct {
	idle  time.Duration
	lived chan struct{}

	mu   sync.Mutex
	cuts int
	once sync.Once
}

func (ic *idleCutter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	ic.mu.Lock()
	afterCut := ic.cuts > 0
	ic.mu.Unlock()
	c := &idleConn{Conn: conn, ic: ic}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = time.AfterFunc(ic.idle, c.expire)
	c.check = time.AfterFunc(3*ic.idle, func() {
		c.mu.Lock()
		alive := !c.dead
		c.mu.Unlock()
		if alive && afterCut {
			ic.once.Do(func() { close(ic.lived) })
		}
	})
	return c, nil
}

func (ic *idleCutter) count() int {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	return ic.cuts
}

// idleConn is a connection that an idleCutter closes when it idles.
type idleConn struct {
	net.Conn
	ic         *idleCutter
	mu         sync.Mutex
	dead       bool
	cut, check *time.Timer
}

func (c *idleConn) touch() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dead {
		c.cut.Reset(c.ic.idle)
	}
}

func (c *idleConn) expire() {
	c.mu.Lock()
	dead := c.dead
	c.dead = true
	c.check.Stop()
	c.mu.Unlock()
	if !dead {
		c.ic.mu.Lock()
		c.ic.cuts++
		c.ic.mu.Unlock()
		c.Conn.Close()
	}
}

func (c *idleConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.touch()
	}
	return n, err
}

func (c *idleConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.touch()
	}
	return n, err
}

func (c *idleConn) Close() error {
	c.mu.Lock()
	c.dead = true
	c.cut.Stop()
	c.check.Stop()
	c.mu.Unlock()
	return c.Conn.Close()
}

// gatewayTimeout answers 504 to a long-poll that has written nothing
// for idle, as a reverse proxy with a read timeout does (a cut connection
// would not do: net/http sends a GET again on a fresh connection when a
// reused one breaks before the response). It closes lived when three
// polls in a row are answered after the first 504.
type gatewayTimeout struct {
	idle  time.Duration
	lived chan struct{}

	mu       sync.Mutex
	timeouts int
	answered int // polls answered in a row since the last 504
	once     sync.Once
}

func (g *gatewayTimeout) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/comet/longpoll" {
			h.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		gw := &gatewayWriter{w: w, status: http.StatusOK}
		timer := time.AfterFunc(g.idle, func() {
			if gw.expire() {
				cancel()
			}
		})
		h.ServeHTTP(gw, r.WithContext(ctx))
		timer.Stop()
		g.mu.Lock()
		defer g.mu.Unlock()
		if gw.expire() {
			g.timeouts++
			g.answered = 0
			http.Error(w, "gateway timeout", http.StatusGatewayTimeout)
			return
		}
		if g.answered++; g.answered >= 3 && g.timeouts > 0 {
			g.once.Do(func() { close(g.lived) })
		}
	})
}

func (g *gatewayTimeout) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.timeouts
}

// gatewayWriter holds a response back until its first body byte, and
// discards it once its gateway has timed out.
type gatewayWriter struct {
	w        http.ResponseWriter
	mu       sync.Mutex
	status   int
	wrote    bool
	timedOut bool
}

// expire times the response out unless it has begun, and reports whether
// it has timed out.
func (gw *gatewayWriter) expire() bool {
	gw.mu.Lock()
	defer gw.mu.Unlock()
	if !gw.wrote {
		gw.timedOut = true
	}
	return gw.timedOut
}

func (gw *gatewayWriter) Header() http.Header { return gw.w.Header() }

func (gw *gatewayWriter) WriteHeader(status int) {
	gw.mu.Lock()
	defer gw.mu.Unlock()
	gw.status = status
}

func (gw *gatewayWriter) Write(p []byte) (int, error) {
	gw.mu.Lock()
	defer gw.mu.Unlock()
	if gw.timedOut {
		return 0, errors.New("test: gateway timed out")
	}
	if !gw.wrote {
		gw.wrote = true
		gw.w.WriteHeader(gw.status)
	}
	return gw.w.Write(p)
}

func (gw *gatewayWriter) Flush() {
	gw.mu.Lock()
	defer gw.mu.Unlock()
	if gw.wrote {
		http.NewResponseController(gw.w).Flush()
	}
}

// TestIdleCut puts a proxy that cuts connections idle for 1.2 s (for
// long-polling: answers 504 to a poll held that long) between the client
// and a server that sends heartbeats (holds polls) every 3 s: after two
// drops after the same silence the client asks for heartbeats at half
// that silence (reason idle_cut) instead of leaving the transport, and its
// connections then live. Messages sent before and after arrive once, in
// order.
func TestIdleCut(t *testing.T) {
	runTransports(t, func(t *testing.T, name string) {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		const idle = 1200 * time.Millisecond
		asked := make(chan int, 16)
		cutter := &idleCutter{idle: idle, lived: make(chan struct{})}
		gateway := &gatewayTimeout{idle: time.Hour, lived: make(chan struct{})}
		lived, cuts, opts := cutter.lived, cutter.count, &client.Options{NetDialContext: cutter.dial}
		if name == transport.LongPoll {
			gateway.idle = idle
			lived, cuts, opts = gateway.lived, gateway.count, nil
		}
		srv := newServer(t, session.Options{Serve: echo, Heartbeat: 3 * time.Second, Hold: 3 * time.Second,
			MinHeartbeat: 100 * time.Millisecond}, func(h http.Handler) http.Handler {
			h = gateway.wrap(h)
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if q := r.URL.Query(); q.Get("why") == "idle_cut" {
					hb, _ := strconv.Atoi(q.Get("hb"))
					select {
					case asked <- hb:
					default:
					}
				}
				h.ServeHTTP(w, r)
			})
		})
		c := dial(t, ctx, srv.url, name, opts)
		msgs := numbered(4)
		exchange(t, ctx, c, msgs, 0, 2)
		var hb int
		select {
		case hb = <-asked:
		case <-ctx.Done():
			t.Fatalf("no attach with why=idle_cut after %d cuts", cuts())
		}
		if want := int(idle.Milliseconds() / 2); hb < want*3/4 || hb > want*5/4 {
			t.Fatalf("asked for hb=%d after the idle cuts, want about %d", hb, want)
		}
		select {
		case <-lived:
		case <-ctx.Done():
			t.Fatalf("connections still cut after the client asked for hb=%d; %d cuts", hb, cuts())
		}
		exchange(t, ctx, c, msgs, 2, 4)
		t.Logf("%s: asked for hb=%d ms after %d idle cuts", name, hb, cuts())
	})
}
