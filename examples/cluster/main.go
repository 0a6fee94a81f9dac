// Command cluster runs one node of a Comet cluster: an echo service that
// several such processes serve together behind a load balancer with no
// affinity, joined by Redis (the broker of the nested module
// github.com/seed-544bbf9f/comet/redis; PROTOCOL.md section 14). Any
// request of a session may reach any node: the node that negotiated the
// session owns it, and the others forward its requests there through
// Redis.
//
// Three nodes on one machine, behind the committed haproxy.cfg, from the
// repository's root:
//
//	redis-server --port 6379 --save '' --appendonly no --maxmemory-policy noeviction &
//	go -C examples/cluster run . -addr 127.0.0.1:8081 &
//	go -C examples/cluster run . -addr 127.0.0.1:8082 &
//	go -C examples/cluster run . -addr 127.0.0.1:8083 &
//	haproxy -f examples/cluster/haproxy.cfg   # then open http://127.0.0.1:8080/
//
// (Debian puts haproxy in /usr/sbin.) It is a module of its own, apart
// from the root module's examples, because it links go-redis.
//
// Flags: -addr (127.0.0.1:8081), -node (the node's id; by default "n"
// and the port, which is unique on one machine only: set -node when the
// nodes run on several), -redis (redis://127.0.0.1:6379/0), -failover
// (sessions outlive their node) and -debug.
//
// Each node serves:
//
//	/comet/           the Comet handler; its Serve echoes every message unchanged
//	GET /             a page that echoes what you type (?transport=sse forces a transport)
//	GET /whoami       {"node": id}: which node answered
//	GET /healthz      200 {"node": id} while Redis is reachable and the node is not shutting down, else 503 {"node": id, "error": why}
//
// and with -debug only:
//
//	GET /debug/served?s=<session id>   {"node", "session", "requests", "paths"}: the requests of that session this node served
//	GET /debug/alive?node=<id>&…       {"<id>": true, …}: whether this node sees each node alive in Redis
//	GET /debug/session?s=<session id>  {"node", "held", "resumed"}: whether this node runs the session, and if it took it over
//
// Every response carries Comet-Node, the node that served it. SIGINT or
// SIGTERM stops the node gracefully: its sessions are closed with 3001
// (their clients start fresh sessions), or with -failover handed over to
// the other nodes (their clients see no close), then its server, then its
// lease in Redis is withdrawn, so the other nodes see it gone within a
// second.
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/redis"
)

//go:embed index.html
var page []byte

// config is what the flags set.
type config struct {
	Node  string // "" means one derived from the listener's port
	Redis string // the Redis URL
	Debug bool   // serve /debug/
	// Failover keeps each session's log in Redis, so that it outlives
	// its node (comet.Options.Failover).
	Failover bool
	Logger   *slog.Logger
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "address to listen on")
	node := flag.String("node", "", `node id, unique in the cluster (default "n" and the port)`)
	redisURL := flag.String("redis", "redis://127.0.0.1:6379/0", "Redis URL")
	debug := flag.Bool("debug", false, "serve /debug/served, /debug/alive and /debug/session")
	failover := flag.Bool("failover", false, "keep sessions' logs in Redis: a session outlives its node")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	cfg := config{Node: *node, Redis: *redisURL, Debug: *debug, Failover: *failover,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	if err := serve(ctx, ln, cfg, func(node string) {
		fmt.Printf("cluster: node %s serving on http://%s/\n", node, ln.Addr())
	}); err != nil {
		log.Fatal(err)
	}
}

// serve runs a node on ln until ctx ends, then shuts it down gracefully.
// ready, if not nil, is called with the node's id once it serves.
func serve(ctx context.Context, ln net.Listener, cfg config, ready func(node string)) error {
	node := cfg.Node
	if node == "" {
		node = "n" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	}
	if !comet.ValidNode(node) {
		return fmt.Errorf("node id %q: want 1 to 32 of A-Z a-z 0-9 _ -", node)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("node", node)
	b, err := redis.New(&redis.Options{URL: cfg.Redis, Node: node, Logger: logger})
	if err != nil {
		return err
	}
	defer b.Close() // last: the lease goes once nothing here needs Redis
	h := comet.NewHandler(&comet.Options{
		Prefix: "/comet",
		Serve:  echo,
		Broker: b,
		Logger: logger,
		// With failover a session outlives its node, and a node shutting
		// down hands its sessions over: first it fails /healthz for as
		// long as haproxy.cfg's checks take to see it (two of 500 ms),
		// so that the requests of the sessions it hands over go to the
		// nodes that take them.
		Failover:   cfg.Failover,
		DrainDelay: drainDelay(cfg.Failover),
		// The balancer (haproxy.cfg) is on loopback and says in
		// X-Forwarded-For whom it forwards for.
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
	})
	mux := http.NewServeMux()
	var comets http.Handler = h
	var served *servedCounter
	if cfg.Debug {
		served = newServedCounter()
		comets = served.wrap(h)
		mux.HandleFunc("GET /debug/served", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, served.get(node, r.URL.Query().Get("s")))
		})
		mux.HandleFunc("GET /debug/session", func(w http.ResponseWriter, r *http.Request) {
			s := h.Session(r.URL.Query().Get("s"))
			writeJSON(w, http.StatusOK, map[string]any{"node": node, "held": s != nil, "resumed": s != nil && s.Resumed()})
		})
		mux.HandleFunc("GET /debug/alive", func(w http.ResponseWriter, r *http.Request) {
			alive := map[string]bool{}
			for _, n := range r.URL.Query()["node"] {
				alive[n] = b.Alive(n)
			}
			writeJSON(w, http.StatusOK, alive)
		})
	}
	mux.Handle("/comet/", comets)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"node": node})
	})
	// The balancer's health check: a node that cannot reach Redis
	// refuses negotiates and cannot forward, so it should get no traffic.
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := h.Ready(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"node": node, "error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"node": node})
	})
	// The Comet handler names its node on its own answers; the other
	// routes say it too, so that any response shows where it was served.
	named := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(comet.NodeHeader, node)
		mux.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: named, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if ready != nil {
		ready(node)
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Sessions first (http.Server.Shutdown does not wait for WebSockets
	// and streams), then the server, which meanwhile still forwards other
	// nodes' sessions' requests, then the broker.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Shutdown(shutdownCtx); err != nil {
		logger.Warn("sessions", "err", err)
	}
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return b.Close()
}

// drainDelay is how long a node shutting down fails /healthz before it
// hands its sessions over (failover), or 0.
func drainDelay(failover bool) time.Duration {
	if failover {
		return 1200 * time.Millisecond
	}
	return 0
}

// echo sends every message of a session back to it, unchanged. With
// failover, a session taken over receives again the messages its last
// Serve took and did not commit, and echoes them again: an application
// that must act once on each keeps what it did by Session.Received.
func echo(s *comet.Session) {
	ctx := s.Context()
	for {
		typ, p, err := s.Recv(ctx)
		if err != nil {
			return
		}
		if err := s.Send(ctx, typ, p); err != nil {
			return
		}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
