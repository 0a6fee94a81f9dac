// Command tcprelay serves a page that is a tiny Redis console: the page
// speaks RESP, Redis's own protocol, to a Redis server through Comet's TCP
// relay, over whichever transport reaches the browser, WebSocket or a
// fallback. The Redis server needs no change and never faces the browser;
// the relay lets the page reach the one address given, and nothing else.
//
//	redis-server --port 6379 --save '' &
//	go run ./examples/tcprelay                       # http://127.0.0.1:8080
//	go run ./examples/tcprelay -redis 127.0.0.1:6380 -addr 127.0.0.1:9000
//
// Type a command (PING, SET greeting hello, GET greeting, SUBSCRIBE news)
// and see Redis's reply; PUBLISH news hi from redis-cli reaches a
// subscribed page. Force a transport with ?transport=longpoll.
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/tcprelay"
)

//go:embed index.html
var pageText string

var page = template.Must(template.New("page").Parse(pageText))

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	redis := flag.String("redis", "127.0.0.1:6379", "the Redis server the page may reach, ip:port")
	flag.Parse()
	target, err := netip.ParseAddrPort(*redis)
	if err != nil {
		log.Fatalf("-redis %q: give an IP address and port, such as 127.0.0.1:6379: %v", *redis, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("tcprelay: serving on http://%s/ (relaying to Redis at %s)\n", ln.Addr(), target)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := serve(ctx, ln, target, logger); err != nil {
		log.Fatal(err)
	}
}

// newMux returns the page and the Comet handler, whose sessions the relay
// connects to target and to nothing else. A loopback or private address
// is refused by default; listing it explicitly, as here, allows it.
func newMux(target netip.AddrPort, logger *slog.Logger) (*http.ServeMux, *comet.Handler) {
	relay := tcprelay.New(&tcprelay.Options{Allow: []string{target.String()}, Logger: logger})
	h := comet.NewHandler(&comet.Options{Prefix: "/comet", Serve: relay.Serve, Logger: logger})
	mux := http.NewServeMux()
	mux.Handle("/comet/", h)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		page.Execute(w, struct {
			Host string
			Port uint16
		}{target.Addr().String(), target.Port()})
	})
	return mux, h
}

// serve serves until ctx is done, then shuts the Comet handler down
// (its sessions close with 3001 and their TCP connections with them).
func serve(ctx context.Context, ln net.Listener, target netip.AddrPort, logger *slog.Logger) error {
	mux, h := newMux(target, logger)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h.Shutdown(sctx)
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
