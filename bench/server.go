package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/internal/wirecount"
	"github.com/seed-544bbf9f/comet/redis"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// payload is the message of the echo and push workloads: a small JSON
// event, the typical realtime message.
var payload = []byte(`{"event":"tick","n":42,"ok":true}`)

// greeting is what the greet application sends first (the fallback metric).
var greeting = []byte("hello")

// Applications the server runs in each Comet session.
const (
	appEcho  = "echo"  // Recv and send back; idle, it is parked in Recv
	appPush  = "push"  // Send payload in a loop until the session ends
	appGreet = "greet" // Send greeting, then echo
	appStorm = "storm" // echo, or for a client that never reads, hold it as a push-storm target
	appTopic = "topic" // subscribe to benchTopic, then echo
)

// benchTopic is the topic the topic application subscribes its sessions to.
const benchTopic = "bench"

// childLife is how long a child process lives unless told otherwise: the
// lifetime limit that ends it if its parent is stuck.
const childLife = 10 * time.Minute

// serverHello is the server's first line: where it listens.
type serverHello struct {
	Addr   string    `json:"addr"`
	PID    int       `json:"pid"`
	Limits fileLimit `json:"limits"`
}

// memReport is what the server's /_bench/mem endpoint answers, read after
// two garbage collections.
type memReport struct {
	HeapInuse  uint64 `json:"heapInuse"`
	StackInuse uint64 `json:"stackInuse"`
	RSS        uint64 `json:"rss"`
	Goroutines int    `json:"goroutines"`
	FDs        int    `json:"fds"`
	Sessions   int    `json:"sessions"` // Comet sessions the handler holds
	Raw        int64  `json:"raw"`      // raw connections or requests open
}

// broadcastReport answers /_bench/broadcast.
type broadcastReport struct {
	Reached int   `json:"reached"`
	NS      int64 `json:"ns"` // time spent in the broadcast call
}

// serveMain is the hidden "serve" subcommand: one server process, holding
// a Comet handler and every raw baseline, for one configuration.
func serveMain(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	var cfg serverConfig
	fs.StringVar(&cfg.app, "app", appEcho, "application run in each Comet session: echo, push, greet or storm")
	fs.DurationVar(&cfg.heartbeat, "heartbeat", 0, "Comet's heartbeat interval and long-poll hold (0: its defaults)")
	fs.IntVar(&cfg.window, "window", 0, "Comet's outbound window in bytes (0: its default)")
	fs.BoolVar(&cfg.noBinary, "nobinary", false, "set Comet's NoBinaryFrames: binary messages base64 on WebSocket too")
	fs.BoolVar(&cfg.countWire, "countwire", false, "count the bytes of every connection, for /_bench/wire")
	fs.BoolVar(&cfg.compress, "compress", false, "set Comet's Compression: offer permessage-deflate on WebSocket")
	fs.StringVar(&cfg.redis, "redis", "", "join a cluster through the Redis broker at this URL (redis://127.0.0.1:port)")
	fs.StringVar(&cfg.node, "node", "", "this node's id in the cluster, with -redis")
	fs.BoolVar(&cfg.failover, "failover", false, "set Comet's Failover, with -redis: sessions outlive their node")
	life := fs.Duration("life", childLife, "exit after this long whatever happens")
	profile := fs.String("profile", "", "write CPU, block and mutex profiles to files named by this prefix, and serve net/http/pprof")
	allocs := fs.Bool("allocs", false, "with -profile, sample every allocation (slows every one: for heap snapshots, not CPU profiles)")
	fs.Parse(args)
	cmds := childMain(*life)

	lim, err := raiseFileLimit()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench serve:", err)
	}
	s, err := newBenchServer(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	if cfg.countWire {
		s.wire = wirecount.Wrap(ln)
		ln = s.wire
	}
	mux := s.mux()
	prof, err := startProfile(*profile, *allocs, mux)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ErrorLog: nil, ReadHeaderTimeout: 30 * time.Second}
	go srv.Serve(ln)
	emit(serverHello{Addr: ln.Addr().String(), PID: os.Getpid(), Limits: lim})
	for range cmds {
	}
	// The parent is done with us: no graceful shutdown, the process ends.
	return prof.stop()
}

// benchServer serves /comet/ and the raw baselines under /raw/.
type benchServer struct {
	h       *session.Handler
	app     string
	up      websocket.Upgrader
	raw     atomic.Int64 // raw connections or requests open
	fanMu   sync.Mutex
	fanOut  map[*websocket.Conn]struct{} // raw WebSocket fan-out subscribers
	pubSeq  atomic.Int64
	storm   stormTargets
	started time.Time
	wire    *wirecount.Listener // with -countwire
	broker  *redis.Broker       // with -redis
	node    string              // with -redis
	subbed  atomic.Int64        // sessions the topic application subscribed
}

// serverConfig is how one server process differs from the defaults.
type serverConfig struct {
	app       string
	heartbeat time.Duration // Comet's heartbeat and long-poll hold; 0: its defaults
	window    int           // Comet's outbound window in bytes; 0: its default
	life      time.Duration // 0: childLife
	noBinary  bool          // Comet's NoBinaryFrames
	countWire bool          // count every connection's bytes for /_bench/wire
	compress  bool          // Comet's Compression, at its default level
	redis     string        // the Redis broker's URL: a cluster node; "" a single node
	node      string        // this node's id, with redis
	failover  bool          // Comet's Failover, with redis
	allocs    bool          // with -profile: sample every allocation (section 4's heap snapshots)
}

func newBenchServer(cfg serverConfig) (*benchServer, error) {
	s := &benchServer{app: cfg.app, fanOut: map[*websocket.Conn]struct{}{}, started: time.Now()}
	// Comet runs with its defaults but these: the per-address negotiate
	// rate limit is off (every client shares loopback, which would make it
	// the thing measured), sessions keep the header that marks the push
	// storm's stalled clients, and errors go to stderr. A configuration
	// may shorten the heartbeat (the soak) or the window (the push storm).
	var compression *comet.Compression
	if cfg.compress {
		compression = &comet.Compression{}
	}
	var broker session.Broker
	if cfg.redis != "" {
		b, err := redis.New(&redis.Options{URL: cfg.redis, Node: cfg.node})
		if err != nil {
			return nil, err
		}
		s.broker, broker, s.node = b, b, cfg.node
	}
	s.h = comet.NewHandler(&session.Options{
		Broker:         broker,
		Failover:       cfg.failover,
		Prefix:         "/comet",
		Serve:          s.serveSession,
		NegotiateRate:  -1,
		MaxSessions:    1 << 20,
		RequestHeaders: []string{stallHeader},
		Heartbeat:      cfg.heartbeat,
		Hold:           cfg.heartbeat,
		WindowBytes:    cfg.window,
		NoBinaryFrames: cfg.noBinary,
		Compression:    compression,
		Logger:         slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	// The raw WebSocket baseline is gorilla/websocket with its defaults, as
	// an application that uses it directly would have it.
	s.up = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	return s, nil
}

func (s *benchServer) mux() *http.ServeMux {
	m := http.NewServeMux()
	m.Handle("/comet/", s.h)
	m.HandleFunc("GET /raw/ws", s.rawWebSocket)
	m.HandleFunc("POST /raw/echo", s.rawEcho)
	m.HandleFunc("GET /raw/msg", s.rawMessage)
	m.HandleFunc("GET /raw/park", s.rawPark)
	m.HandleFunc("GET /raw/sse", s.rawSSE)
	m.HandleFunc("GET /_bench/mem", s.mem)
	m.HandleFunc("GET /_bench/wire", s.wireBytes)
	m.HandleFunc("GET /_bench/cpu", s.cpuTime)
	m.HandleFunc("POST /_bench/broadcast", s.broadcast)
	m.HandleFunc("POST /_bench/rawbroadcast", s.rawBroadcast)
	m.HandleFunc("GET /raw/stall", s.rawStall)
	m.HandleFunc("POST /_bench/storm", s.pushStorm)
	m.HandleFunc("POST /_bench/publish", s.publish)
	m.HandleFunc("GET /_bench/alive", s.alive)
	m.HandleFunc("GET /_bench/subscribed", s.subscribed)
	m.HandleFunc("GET /healthz", s.healthz)
	return m
}

func (s *benchServer) serveSession(ss *session.Session) {
	ctx := ss.Context()
	switch s.app {
	case appPush:
		for ss.Send(ctx, transport.Text, payload) == nil {
		}
		return
	case appGreet:
		if ss.Send(ctx, transport.Text, greeting) != nil {
			return
		}
	case appTopic:
		if _, err := ss.Subscribe(ctx, benchTopic); err != nil {
			return
		}
		s.subbed.Add(1)
	case appStorm:
		if ss.Request().Header.Get(stallHeader) != "" {
			s.storm.addSession(ss)
			<-ss.Done() // returning would close the session
			return
		}
	}
	for {
		typ, p, err := ss.Recv(ctx)
		if err != nil {
			return
		}
		if ss.Send(ctx, typ, p) != nil {
			return
		}
	}
}

// rawWebSocket is the gorilla/websocket baseline: an echo loop, or with
// fanout=1 a subscriber that only reads (so that the broadcaster is its
// only writer, as gorilla requires).
func (s *benchServer) rawWebSocket(w http.ResponseWriter, r *http.Request) {
	c, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	s.raw.Add(1)
	defer s.raw.Add(-1)
	if r.URL.Query().Get("fanout") == "1" {
		s.fanMu.Lock()
		s.fanOut[c] = struct{}{}
		s.fanMu.Unlock()
		defer func() {
			s.fanMu.Lock()
			delete(s.fanOut, c)
			s.fanMu.Unlock()
		}()
		for {
			if _, _, err := c.NextReader(); err != nil {
				return
			}
		}
	}
	for {
		typ, p, err := c.ReadMessage()
		if err != nil {
			return
		}
		if c.WriteMessage(typ, p) != nil {
			return
		}
	}
}

// rawEcho is the net/http request/response baseline: the body back.
func (s *benchServer) rawEcho(w http.ResponseWriter, r *http.Request) {
	p, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(p)
}

// rawMessage answers one message per request: the baseline of server push
// by polling, one request per message.
func (s *benchServer) rawMessage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(payload)
}

// rawPark is a parked net/http request, as a long-poll waiting for a
// message is: its headers are flushed at once, so that the client knows
// the server holds it, and then it waits for the client to leave.
func (s *benchServer) rawPark(w http.ResponseWriter, r *http.Request) {
	s.raw.Add(1)
	defer s.raw.Add(-1)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	http.NewResponseController(w).Flush()
	<-r.Context().Done()
}

// rawSSE is the flush-per-event SSE baseline: with push=1 it writes
// payload as an event and flushes, in a loop, until the client leaves;
// otherwise it is an idle stream.
func (s *benchServer) rawSSE(w http.ResponseWriter, r *http.Request) {
	s.raw.Add(1)
	defer s.raw.Add(-1)
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if rc.Flush() != nil {
		return
	}
	if r.URL.Query().Get("push") != "1" {
		<-r.Context().Done()
		return
	}
	event := append(append([]byte("data: "), payload...), "\n\n"...)
	for {
		if _, err := w.Write(event); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
	}
}

// mem reports the process's memory after two collections (the second
// frees what the first's finalizers released).
func (s *benchServer) mem(w http.ResponseWriter, r *http.Request) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fds, _ := os.ReadDir("/proc/self/fd")
	json.NewEncoder(w).Encode(memReport{
		HeapInuse:  ms.HeapInuse,
		StackInuse: ms.StackInuse,
		RSS:        readRSS(),
		Goroutines: runtime.NumGoroutine(),
		FDs:        len(fds),
		Sessions:   s.h.Sessions(),
		Raw:        s.raw.Load(),
	})
}

// readRSS returns VmRSS from /proc/self/status in bytes, 0 if unknown.
func readRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// fanoutMessage is a fan-out message: its sequence number and publish time
// (Unix ns), which every receiver subtracts from its clock. Server and
// clients share the machine, hence the clock.
func (s *benchServer) fanoutMessage() []byte {
	return fmt.Appendf(nil, `{"i":%d,"ts":%d}`, s.pubSeq.Add(1)-1, time.Now().UnixNano())
}

// broadcast publishes one fan-out message to every Comet session through
// the broadcast helper.
func (s *benchServer) broadcast(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	m, err := s.h.NewPreparedMessage(transport.Text, s.fanoutMessage())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	n := s.h.Broadcast(m)
	json.NewEncoder(w).Encode(broadcastReport{Reached: n, NS: time.Since(start).Nanoseconds()})
}

// rawBroadcast is the gorilla baseline of broadcast: one PreparedMessage
// written to every subscriber in turn.
func (s *benchServer) rawBroadcast(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	m, err := websocket.NewPreparedMessage(websocket.TextMessage, s.fanoutMessage())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.fanMu.Lock()
	conns := make([]*websocket.Conn, 0, len(s.fanOut))
	for c := range s.fanOut {
		conns = append(conns, c)
	}
	s.fanMu.Unlock()
	n := 0
	for _, c := range conns {
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if c.WritePreparedMessage(m) == nil {
			n++
		}
	}
	json.NewEncoder(w).Encode(broadcastReport{Reached: n, NS: time.Since(start).Nanoseconds()})
}

// parseFanout reads the sequence number and publish time of a fan-out
// message without a JSON decoder (the receivers are part of what is timed).
func parseFanout(p []byte) (i int, ts int64, ok bool) {
	rest, found := bytes.CutPrefix(p, []byte(`{"i":`))
	if !found {
		return 0, 0, false
	}
	is, rest, found := bytes.Cut(rest, []byte(`,"ts":`))
	if !found {
		return 0, 0, false
	}
	tss, found := bytes.CutSuffix(rest, []byte("}"))
	if !found {
		return 0, 0, false
	}
	n, err1 := strconv.Atoi(string(is))
	t, err2 := strconv.ParseInt(string(tss), 10, 64)
	return n, t, err1 == nil && err2 == nil
}

// serverProc is a running server child.
type serverProc struct {
	*child
	hello   serverHello
	base    string // http://addr
	hc      *http.Client
	profile string // its profiles' path prefix, "" when not profiled
}

// startServer starts a fresh server process running app.
func startServer(app string) (*serverProc, error) {
	return startServerWith(serverConfig{app: app})
}

// startServerWith starts a fresh server process configured by cfg.
func startServerWith(cfg serverConfig) (*serverProc, error) {
	s := &serverProc{profile: profilePrefix(cfg.app)}
	c, err := startChild("server("+cfg.app+")", &s.hello, "serve", "-app", cfg.app,
		"-heartbeat", cfg.heartbeat.String(), "-window", fmt.Sprint(cfg.window),
		"-life", cmp.Or(cfg.life, childLife).String(),
		"-nobinary="+fmt.Sprint(cfg.noBinary), "-countwire="+fmt.Sprint(cfg.countWire),
		"-compress="+fmt.Sprint(cfg.compress), "-profile", s.profile,
		"-redis", cfg.redis, "-node", cfg.node, "-failover="+fmt.Sprint(cfg.failover), "-allocs="+fmt.Sprint(cfg.allocs))
	if err != nil {
		return nil, err
	}
	s.child = c
	s.base = "http://" + s.hello.Addr
	if s.profile != "" {
		fmt.Printf("  server %s profiles: %s-*\n", cfg.app, s.profile)
	}
	s.hc = &http.Client{Timeout: 60 * time.Second}
	return s, nil
}

// mem asks the server for its memory report.
func (s *serverProc) mem() (memReport, error) {
	var m memReport
	err := s.call(http.MethodGet, "/_bench/mem", &m)
	return m, err
}

// call asks the server for path and decodes its JSON answer into v.
func (s *serverProc) call(method, path string, v any) error {
	return s.do(method, path, func(body io.Reader) error { return json.NewDecoder(body).Decode(v) })
}

// do makes a request of the server, within a minute, and hands a 200
// answer's body to read.
func (s *serverProc) do(method, path string, read func(io.Reader) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	return read(resp.Body)
}

// publish publishes fan-out messages to a topic through Handler.Publish:
// n of them (default 1), one after another, to topic (default benchTopic).
// It answers the time spent.
func (s *benchServer) publish(w http.ResponseWriter, r *http.Request) {
	topic := cmp.Or(r.URL.Query().Get("topic"), benchTopic)
	n := 1
	if v := r.URL.Query().Get("n"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 1_000_000 {
			http.Error(w, "bad n", http.StatusBadRequest)
			return
		}
	}
	start := time.Now()
	for range n {
		if _, err := s.h.Publish(r.Context(), topic, transport.Text, s.fanoutMessage()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	json.NewEncoder(w).Encode(broadcastReport{Reached: -1, NS: time.Since(start).Nanoseconds()})
}

// alive answers 200 when this node's broker is healthy and sees every node
// of the comma-separated list alive, 503 otherwise.
func (s *benchServer) alive(w http.ResponseWriter, r *http.Request) {
	if s.broker == nil {
		http.Error(w, "no broker", http.StatusServiceUnavailable)
		return
	}
	if err := s.broker.Err(); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	for _, n := range strings.Split(r.URL.Query().Get("nodes"), ",") {
		if n != "" && !s.broker.Alive(n) {
			http.Error(w, n+" not alive", http.StatusServiceUnavailable)
			return
		}
	}
	w.Write([]byte("{}"))
}

// subscribed answers how many sessions the topic application subscribed.
func (s *benchServer) subscribed(w http.ResponseWriter, r *http.Request) {
	json.NewEncoder(w).Encode(s.subbed.Load())
}

// healthz is the load balancer's health check (examples/cluster's): 200
// {"node": id} while the broker is reachable, or always on a single node.
func (s *benchServer) healthz(w http.ResponseWriter, r *http.Request) {
	if s.broker != nil {
		if err := s.broker.Err(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	json.NewEncoder(w).Encode(map[string]string{"node": s.node})
}
