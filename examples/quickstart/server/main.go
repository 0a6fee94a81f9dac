// Command server is the README's quickstart server: a Comet echo
// endpoint at /comet/, shut down gracefully on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/seed-544bbf9f/comet"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()

	h := comet.NewHandler(&comet.Options{
		Prefix: "/comet",
		Serve: func(s *comet.Session) {
			ctx := s.Context() // ends when the session ends
			for {
				typ, p, err := s.Recv(ctx)
				if err != nil {
					return // a *comet.CloseError once closed
				}
				if err := s.Send(ctx, typ, p); err != nil {
					return
				}
			}
		},
	})
	mux := http.NewServeMux()
	mux.Handle("/comet/", h)
	// The handler cannot bound how long a client takes to send its
	// headers, nor how long an idle connection stays: the server must.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("serving on http://%s/comet", ln.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	stop, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	select {
	case err := <-served:
		log.Fatal(err)
	case <-stop.Done():
	}
	// Sessions first: http.Server.Shutdown does not wait for WebSockets
	// and streams. Each is closed with 3001 and a jittered reconnect hint.
	ctx, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	if err := h.Shutdown(ctx); err != nil {
		log.Printf("sessions: %v", err)
	}
	if err := srv.Shutdown(ctx); err != nil {
		log.Printf("server: %v", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
