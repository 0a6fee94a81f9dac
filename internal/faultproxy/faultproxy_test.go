package faultproxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet/internal/leakcheck"
	"github.com/seed-544bbf9f/comet/internal/testutil"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// origin is a test origin: /ws echoes WebSocket messages after sending
// "hello" (and closes at once when close is set), /stream writes one line
// per value on lines, flushing each, until the channel is closed, and
// /wait blocks until its request ends, then reports on ended.
type origin struct {
	srv      *httptest.Server
	lines    chan string
	ended    chan error
	upgrades chan struct{}
	close    bool
}

func newOrigin(t *testing.T, closeAtOnce bool) *origin {
	o := &origin{lines: make(chan string), ended: make(chan error, 1), upgrades: make(chan struct{}, 4), close: closeAtOnce}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", o.ws)
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		rc := http.NewResponseController(w)
		rc.Flush() // the headers, before the first line
		for line := range o.lines {
			io.WriteString(w, line+"\n")
			rc.Flush()
		}
	})
	mux.HandleFunc("/wait", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
		o.ended <- r.Context().Err()
	})
	o.srv = httptest.NewServer(mux)
	t.Cleanup(o.srv.Close)
	return o
}

func (o *origin) ws(w http.ResponseWriter, r *http.Request) {
	o.upgrades <- struct{}{}
	c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	if err := c.WriteMessage(websocket.TextMessage, []byte("hello")); err != nil {
		return
	}
	if o.close {
		return
	}
	for {
		typ, p, err := c.ReadMessage()
		if err != nil {
			o.ended <- err
			return
		}
		if err := c.WriteMessage(typ, p); err != nil {
			return
		}
	}
}

func start(t *testing.T, o *origin, opts *Options) *Proxy {
	t.Helper()
	p, err := Start(o.srv.URL, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dialWS(ctx context.Context, p *Proxy) (*websocket.Conn, *http.Response, error) {
	return websocket.DefaultDialer.DialContext(ctx, "ws://"+p.Addr()+"/ws", nil)
}

func TestPass(t *testing.T) {
	o := newOrigin(t, false)
	p := start(t, o, nil)
	c, _, err := dialWS(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, want := range []string{"hello", "echo me"} {
		if want != "hello" {
			if err := c.WriteMessage(websocket.TextMessage, []byte(want)); err != nil {
				t.Fatal(err)
			}
		}
		if _, got, err := c.ReadMessage(); err != nil || string(got) != want {
			t.Fatalf("ReadMessage = %q, %v; want %q", got, err, want)
		}
	}
	if s := p.Stats(); s.Passed != 1 || s.Requests != 1 {
		t.Errorf("Stats = %+v, want 1 request, 1 upgrade passed", s)
	}
}

// TestStreamUnbuffered checks that each flushed piece of a streamed
// response reaches the client before the origin writes the next one.
func TestStreamUnbuffered(t *testing.T) {
	o := newOrigin(t, false)
	p := start(t, o, nil)
	resp, err := http.Get(p.URL() + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for _, line := range []string{"one", "two", "three"} {
		o.lines <- line // the origin takes the next line only after the last was read
		got, err := br.ReadString('\n')
		if err != nil || got != line+"\n" {
			t.Fatalf("read %q, %v; want %q", got, err, line)
		}
	}
	close(o.lines)
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Fatalf("after the stream: %q, %v", rest, err)
	}
}

// TestBuffer checks that Options.Buffer holds a streamed response until
// it ends, then delivers it whole.
func TestBuffer(t *testing.T) {
	o := newOrigin(t, false)
	p := start(t, o, &Options{Buffer: true})
	type result struct {
		body   []byte
		length int64 // the response's Content-Length: -1 for a stream
		err    error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get(p.URL() + "/stream")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{b, resp.ContentLength, err}
	}()
	// The origin takes each line only once the proxy has read the last:
	// all three reach the proxy while the client has received nothing.
	for _, line := range []string{"one", "two", "three"} {
		o.lines <- line
	}
	select {
	case r := <-got:
		t.Fatalf("the client had the response before the stream ended: %q, %v", r.body, r.err)
	default:
	}
	close(o.lines)
	r := <-got
	if r.err != nil || string(r.body) != "one\ntwo\nthree\n" {
		t.Fatalf("response %q, %v; want the three lines", r.body, r.err)
	}
	if r.length != int64(len(r.body)) {
		t.Errorf("Content-Length %d, want %d: the response was not held whole", r.length, len(r.body))
	}
	if s := p.Stats(); s.Buffered != 1 {
		t.Errorf("Stats = %+v, want 1 buffered", s)
	}
}

// TestBlackHole checks that an upgrade succeeds and then nothing passes:
// the origin's greeting and the client's message are both dropped, and
// each side sees only the connection end.
func TestBlackHole(t *testing.T) {
	o := newOrigin(t, false)
	seen := make(chan Upgrade, 1)
	p := start(t, o, &Options{Upgrade: UpgradeBlackHole, OnUpgrade: func(u Upgrade) { testutil.Offer(seen, u) }})
	c, resp, err := dialWS(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	if u := testutil.Receive(t, seen, "OnUpgrade"); u != UpgradeBlackHole {
		t.Errorf("OnUpgrade(%v), want black-hole", u)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte("lost")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	// Had "lost" passed, the origin would have echoed it, not ended.
	if err := testutil.Receive(t, o.ended, "origin's end"); err == nil {
		t.Fatal("origin read a message through the black hole")
	}

	// The other way: the origin greets and closes; the client sees the
	// connection end (1006, gorilla's name for it), never the greeting nor
	// a close frame.
	o2 := newOrigin(t, true)
	p2 := start(t, o2, &Options{Upgrade: UpgradeBlackHole})
	c2, _, err := dialWS(t.Context(), p2)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_, got, err := c2.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseAbnormalClosure) {
		t.Fatalf("ReadMessage = %q, %v; want the connection to end without a frame", got, err)
	}
	if s := p2.Stats(); s.BlackHoled != 1 {
		t.Errorf("Stats = %+v, want 1 black-holed", s)
	}
}

// TestHang checks that an upgrade request gets no answer, and that Close
// releases it.
func TestHang(t *testing.T) {
	o := newOrigin(t, false)
	seen := make(chan Upgrade, 1)
	p := start(t, o, &Options{Upgrade: UpgradeHang, OnUpgrade: func(u Upgrade) { testutil.Offer(seen, u) }})
	dialed := make(chan error, 1)
	go func() {
		_, _, err := dialWS(t.Context(), p)
		dialed <- err
	}()
	testutil.Receive(t, seen, "OnUpgrade")
	p.Close()
	if err := testutil.Receive(t, dialed, "dial's end"); err == nil {
		t.Fatal("dial through a hanging proxy succeeded")
	}
	if s := p.Stats(); s.Hung != 1 {
		t.Errorf("Stats = %+v, want 1 hung", s)
	}
	select {
	case <-o.upgrades:
		t.Error("the origin saw the hung upgrade")
	default:
	}
}

func TestRefuse(t *testing.T) {
	o := newOrigin(t, false)
	p := start(t, o, &Options{Upgrade: UpgradeRefuse})
	_, resp, err := dialWS(t.Context(), p)
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("dial = %v, %v; want 400", resp, err)
	}
	select {
	case <-o.upgrades:
		t.Error("the origin saw the refused upgrade")
	default:
	}
}

// TestCut checks that a connection is cut within the range and that the
// origin sees its request end.
func TestCut(t *testing.T) {
	o := newOrigin(t, false)
	p := start(t, o, &Options{Cut: &Cut{Min: 20 * time.Millisecond, Max: 40 * time.Millisecond}, Seed: 7})
	if p.Seed() != 7 {
		t.Errorf("Seed() = %d, want 7", p.Seed())
	}
	start := time.Now()
	resp, err := http.Get(p.URL() + "/wait")
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatal("the response ended cleanly; want it cut")
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Errorf("cut after %v, before the 20ms minimum", d)
	}
	if err := testutil.Receive(t, o.ended, "origin's end"); !errors.Is(err, context.Canceled) {
		t.Errorf("origin's request ended with %v, want context.Canceled", err)
	}
	if s := p.Stats(); s.Cuts != 1 || s.Conns != 1 {
		t.Errorf("Stats = %+v, want 1 connection, cut once", s)
	}
}

func TestStartRefusesBadOptions(t *testing.T) {
	for _, tc := range []struct {
		target string
		opts   *Options
		want   string
	}{
		{"127.0.0.1:80", nil, "not an http:// URL"},
		{"https://127.0.0.1", nil, "not an http:// URL"},
		{"http://127.0.0.1:1", &Options{Cut: &Cut{Min: 0, Max: time.Second}}, "not positive"},
		{"http://127.0.0.1:1", &Options{Cut: &Cut{Min: 2 * time.Second, Max: time.Second}}, "empty"},
	} {
		if _, err := Start(tc.target, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Start(%q, %+v) = %v, want an error saying %q", tc.target, tc.opts, err, tc.want)
		}
	}
}

func TestUpgradeString(t *testing.T) {
	for u, want := range map[Upgrade]string{UpgradePass: "pass", UpgradeBlackHole: "black-hole", UpgradeHang: "hang",
		UpgradeRefuse: "refuse", 9: "Upgrade(9)"} {
		if got := u.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(u), got, want)
		}
	}
}
