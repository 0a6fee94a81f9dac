// Command echo serves a Comet echo endpoint and a page that talks to it.
//
//	go run ./examples/echo            # http://127.0.0.1:8080
//	go run ./examples/echo -addr 127.0.0.1:9000
//
// Every message a client sends comes back to it. The page uses the
// browser shim, which the Comet handler serves at /comet/comet.js; any Go
// program can use the client package against the same endpoint.
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
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("echo: serving on http://%s/\n", ln.Addr())
	if err := serve(ctx, ln); err != nil {
		log.Fatal(err)
	}
}

// serve runs the example on ln until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, ln net.Listener) error {
	h := comet.NewHandler(&comet.Options{
		Prefix: "/comet",
		Serve:  echo,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	mux := http.NewServeMux()
	mux.Handle("/comet/", h)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second}

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
	h.Shutdown(shutdownCtx)
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// echo sends every message of a session back to it.
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
