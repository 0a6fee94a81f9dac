package e2e

import (
	"bufio"
	"context"
	_ "embed"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/tcprelay"
	"github.com/seed-544bbf9f/comet/transport"
)

//go:embed testdata/relay.js
var relayScript []byte

// relayPage loads the shim and the TCP helper from the Comet handler, then
// relay.js.
const relayPage = `<!doctype html>
<meta charset="utf-8">
<title>comet relay e2e</title>
<script src="/comet/comet.js"></script>
<script src="/comet/comet-tcp.js"></script>
<script src="/relay.js"></script>
`

// relayServer is a Comet handler whose sessions are relayed to the TCP
// targets allowed, with the page of the relay tests; it records the
// attach requests, so that a test can tell which transport carried them.
type relayServer struct {
	srv *httptest.Server
	mu  sync.Mutex
	// attaches counts the GETs of each transport path.
	attaches map[string]int
}

func newRelayServer(t *testing.T, allow ...string) *relayServer {
	t.Helper()
	rs := &relayServer{attaches: map[string]int{}}
	relay := tcprelay.New(&tcprelay.Options{Allow: allow, Logger: testutil.Logger(t)})
	h := comet.NewHandler(&comet.Options{Prefix: "/comet", Serve: relay.Serve, Logger: testutil.Logger(t)})
	mux := http.NewServeMux()
	mux.HandleFunc("/comet/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			rs.mu.Lock()
			rs.attaches[path.Base(r.URL.Path)]++
			rs.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /relay", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, relayPage)
	})
	mux.HandleFunc("GET /relay.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/javascript; charset=utf-8")
		w.Write(relayScript)
	})
	rs.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.Shutdown(ctx)
		rs.srv.Close()
	})
	return rs
}

// transportsUsed returns the transports attached with, and how often.
func (rs *relayServer) transportsUsed() map[string]int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	used := map[string]int{}
	for _, name := range transport.Order() {
		if n := rs.attaches[name]; n > 0 {
			used[name] = n
		}
	}
	return used
}

// reply is a RESP reply as relay.js reports it.
type reply struct {
	T     string  `json:"t"`
	S     string  `json:"s"`
	N     int64   `json:"n"`
	Len   int     `json:"len"`
	Same  bool    `json:"same"`
	Nil   bool    `json:"nil"`
	Items []reply `json:"items"`
}

func (r reply) String() string {
	switch r.T {
	case "*":
		s := make([]string, len(r.Items))
		for i, it := range r.Items {
			s[i] = it.String()
		}
		return "[" + strings.Join(s, " ") + "]"
	case ":":
		return ":" + strconv.FormatInt(r.N, 10)
	case "$":
		if r.Len > 0 {
			return fmt.Sprintf("$<%d bytes, same=%v>", r.Len, r.Same)
		}
		return "$" + r.S
	}
	return r.T + r.S
}

// pattern is relay.js's pattern: size bytes of a xorshift32 stream.
func pattern(seed uint32, size int) []byte {
	out := make([]byte, size)
	x := seed
	if x == 0 {
		x = 1
	}
	for i := range out {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		out[i] = byte(x)
	}
	return out
}

// redisConn is a plain RESP client of the test's own, beside the page.
type redisConn struct {
	c net.Conn
	r *bufio.Reader
}

func dialRedis(t *testing.T, addr string) *redisConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testutil.Wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &redisConn{c: c, r: bufio.NewReader(c)}
}

// do sends a command and returns its reply's first line, and the bytes
// of a bulk string reply, within testutil.Wait: the connection serves
// the whole test, every transport in turn, which may take longer.
func (rc *redisConn) do(t *testing.T, args ...string) (string, []byte) {
	t.Helper()
	rc.c.SetDeadline(time.Now().Add(testutil.Wait))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(rc.c, b.String()); err != nil {
		t.Fatal(err)
	}
	head, err := rc.r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	head = strings.TrimSuffix(head, "\r\n")
	if n, err := strconv.Atoi(strings.TrimPrefix(head, "$")); strings.HasPrefix(head, "$") && err == nil && n >= 0 {
		body := make([]byte, n+2)
		if _, err := io.ReadFull(rc.r, body); err != nil {
			t.Fatal(err)
		}
		return head, body[:n]
	}
	return head, nil
}

// TestRelayRedis drives a page that speaks RESP to Debian's redis-server
// through the relay, on every transport forced one by one: PING, SET and
// GET of a 1 MiB value holding every byte value (checked in Redis by a
// client of the test's own, and back in the page), and SUBSCRIBE in the
// page with PUBLISH from the other client.
func TestRelayRedis(t *testing.T) {
	browser := needBrowser(t)
	rd := testutil.StartRedis(t)
	host, port, _ := net.SplitHostPort(rd.Addr)
	direct := dialRedis(t, rd.Addr)
	for i, name := range transport.Order() {
		t.Run(name, func(t *testing.T) {
			rs := newRelayServer(t, rd.Addr)
			tb := newTab(t, browser)
			tb.open(rs.srv.URL + "/relay")
			p := map[string]any{"url": rs.srv.URL + "/comet", "host": host, "port": port,
				"options": map[string]any{"transports": []string{name}}}
			var opened struct{ ReadyState int }
			tb.run("connect", p, &opened)

			var r reply
			tb.run("cmd", map[string]any{"args": []string{"PING"}}, &r)
			if r.String() != "+PONG" {
				t.Fatalf("PING answered %v", r)
			}

			key, seed, size := "comet:e2e:"+name, uint32(0x9e3779b9+i), 1<<20
			start := time.Now()
			tb.run("cmd", map[string]any{"args": []string{"SET", key, ""},
				"bin": map[string]any{"index": 2, "seed": seed, "size": size}}, &r)
			if r.String() != "+OK" {
				t.Fatalf("SET answered %v", r)
			}
			if _, got := direct.do(t, "GET", key); string(got) != string(pattern(seed, size)) {
				t.Fatalf("Redis holds %d bytes under %s, not the %d the page set", len(got), key, size)
			}
			tb.run("cmd", map[string]any{"args": []string{"GET", key},
				"expect": map[string]any{"seed": seed, "size": size}}, &r)
			if r.T != "$" || r.Len != size || !r.Same {
				t.Fatalf("GET answered %v", r)
			}
			t.Logf("%s: 1 MiB up and down in %v", name, time.Since(start).Round(time.Millisecond))

			channel := "comet:e2e:chan:" + name
			tb.run("cmd", map[string]any{"args": []string{"SUBSCRIBE", channel}}, &r)
			if r.String() != "[$subscribe $"+channel+" :1]" {
				t.Fatalf("SUBSCRIBE answered %v", r)
			}
			if head, _ := direct.do(t, "PUBLISH", channel, "hello "+name); head != ":1" {
				t.Fatalf("PUBLISH reached %s subscribers, want the page", head)
			}
			tb.run("next", nil, &r)
			if r.String() != "[$message $"+channel+" $hello "+name+"]" {
				t.Fatalf("the page received %v, want the published message", r)
			}

			var closed struct{ Code int }
			tb.run("close", nil, &closed)
			if closed.Code != 1000 {
				t.Fatalf("closing the socket: code %d, want 1000", closed.Code)
			}
			used := rs.transportsUsed()
			if len(used) != 1 || used[name] == 0 {
				t.Fatalf("attached with %v, want %s only", used, name)
			}
		})
	}
}
