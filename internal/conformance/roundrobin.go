package conformance

import (
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
)

// RoundRobin returns a reverse proxy that sends each request to the next
// of backends in turn, base URLs such as "http://127.0.0.1:port", with no
// stickiness at all: two requests of one session, even back to back, land
// on different nodes whenever there are two. It passes WebSocket upgrades
// through (httputil.ReverseProxy does since Go 1.12) and every write of a
// stream at once, as a load balancer configured for streaming does. A
// backend that cannot be parsed as a URL makes it panic: backends come
// from the test's own servers.
//
// It is safe for concurrent use once serving. Its requests to backends go
// through http.DefaultTransport, whose idle connections the suite closes
// after each test, unless its Transport is set before it serves: to reach
// backends over TLS, say.
func RoundRobin(backends []string) *httputil.ReverseProxy {
	return RoundRobinSkipping(backends, nil)
}

// RoundRobinSkipping is RoundRobin passing over the backends i for which
// out(i) is true, as a balancer does once a backend fails its health
// check; while every backend is out it sends to the next in turn
// anyway. A nil out passes over none.
func RoundRobinSkipping(backends []string, out func(i int) bool) *httputil.ReverseProxy {
	if len(backends) == 0 {
		panic("conformance: RoundRobin needs a backend")
	}
	targets := make([]*url.URL, len(backends))
	for i, b := range backends {
		u, err := url.Parse(b)
		if err != nil {
			panic("conformance: RoundRobin backend " + b + ": " + err.Error())
		}
		targets[i] = u
	}
	var next atomic.Uint64
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			i := int((next.Add(1) - 1) % uint64(len(targets)))
			for k := 0; out != nil && k < len(targets) && out(i); k++ {
				i = (i + 1) % len(targets)
			}
			r.SetURL(targets[i])
			// The nodes see the client's address, as behind a real load
			// balancer that sets X-Forwarded-For.
			r.SetXForwarded()
		},
		// Streams (SSE, XHR streaming) must not wait in the proxy.
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			// A client that went away (a cut, a stream it gave up on) gets
			// nothing, as from nginx (its 499): a 502 would reach nobody,
			// yet a test recording responses would see one Comet never sent.
			if r.Context().Err() != nil {
				return
			}
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "round robin: "+err.Error(), http.StatusBadGateway)
		},
		// What else it would log is a stream cut off mid-copy, which the
		// suite does on purpose.
		ErrorLog: log.New(io.Discard, "", 0),
	}
}
