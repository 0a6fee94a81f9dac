// Command chat serves a chat over Comet: rooms, nicknames, the last 50
// messages of a room on join, who is online and who is typing, on every
// transport; and beside it a transport inspector showing how the page's
// session is carried.
//
//	go run ./examples/chat            # http://127.0.0.1:8080
//	go run ./examples/chat -debug     # adds the inspector's "cut connection" button
//	go run ./examples/chat -addr 127.0.0.1:9000
//
// Open the page in two windows, or force a transport in one of them with
// the inspector's buttons (?transport=longpoll). The page loads the
// browser shim from the Comet handler, at /comet/comet.js; there is no
// build step. Rooms live in this process only.
//
// With -debug, POST /debug/cut?s=SESSION closes the connections that
// carry a session, as a flaky network would, and the page resumes its
// session without losing a message. Never enable it on a server others
// can reach.
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/seed-544bbf9f/comet"
)

//go:embed index.html
var page []byte

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	debug := flag.Bool("debug", false, "enable POST /debug/cut, which closes a session's connections (the inspector's cut button), "+
		"and GET /debug/stats, the handler's counters as JSON")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("chat: serving on http://%s/\n", ln.Addr())
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := serve(ctx, ln, *debug, logger); err != nil {
		log.Fatal(err)
	}
}

// server is the example's HTTP side: the page, the Comet handler and, with
// debug, the cutter.
type server struct {
	mux   *http.ServeMux
	comet *comet.Handler
	cut   *cutter // nil without debug
}

func newServer(debug bool, logger *slog.Logger) *server {
	c := newChat(debug)
	h := comet.NewHandler(&comet.Options{
		Prefix: "/comet",
		Serve:  c.serve,
		Logger: logger,
		// A page that stops reading is closed (3002) rather than skipped by
		// broadcasts, which would leave holes in its conversation.
		CloseSlowConsumers: true,
	})
	c.h = h
	srv := &server{mux: http.NewServeMux(), comet: h}
	srv.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
	if !debug {
		srv.mux.Handle("/comet/", h)
		return srv
	}
	srv.cut = newCutter()
	srv.mux.Handle("/comet/", srv.cut.wrap(h))
	srv.mux.HandleFunc("POST /debug/cut", srv.cut.cut)
	// The handler's counters (comet.Stats) as JSON; a production server
	// would register the prometheus module's collector instead.
	srv.mux.HandleFunc("GET /debug/stats", h.ServeStats)
	return srv
}

// serve runs the example on ln until ctx ends, then shuts down within 5 s.
func serve(ctx context.Context, ln net.Listener, debug bool, logger *slog.Logger) error {
	s := newServer(debug, logger)
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second}
	if s.cut != nil {
		ln = s.cut.install(srv, ln)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Sessions first: http.Server.Shutdown does not wait for WebSockets.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.comet.Shutdown(shutdownCtx)
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
