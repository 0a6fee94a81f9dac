package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"sync"
)

// cutter is the -debug flag's connection cutter: it remembers which
// connections carry each session's requests (the s parameter of every
// request after negotiate, PROTOCOL.md section 2), so that POST
// /debug/cut?s=ID can close them from under the session, as a proxy or a
// flaky network would. The session itself lives on: its client resumes.
// It needs only net/http: http.Server.ConnContext hands each request its
// connection, which stays the same net.Conn after a WebSocket's hijack.
type cutter struct {
	mu    sync.Mutex
	conns map[string]map[net.Conn]int // by session ID: requests in flight on each
}

type connKey struct{}

func newCutter() *cutter { return &cutter{conns: map[string]map[net.Conn]int{}} }

// connContext is the http.Server's ConnContext.
func (*cutter) connContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// wrap records the connection of every request of a session to next for as
// long as next serves it: a stream's or a WebSocket's whole life.
func (cu *cutter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sid := r.URL.Query().Get("s")
		c, ok := r.Context().Value(connKey{}).(net.Conn)
		if sid == "" || !ok {
			next.ServeHTTP(w, r)
			return
		}
		cu.mu.Lock()
		if cu.conns[sid] == nil {
			cu.conns[sid] = map[net.Conn]int{}
		}
		cu.conns[sid][c]++
		cu.mu.Unlock()
		defer func() {
			cu.mu.Lock()
			defer cu.mu.Unlock()
			if cu.conns[sid][c]--; cu.conns[sid][c] == 0 {
				delete(cu.conns[sid], c)
			}
			if len(cu.conns[sid]) == 0 {
				delete(cu.conns, sid)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// cut closes every connection serving session sid and answers how many
// it closed: {"cut":2}.
func (cu *cutter) cut(w http.ResponseWriter, r *http.Request) {
	sid := r.URL.Query().Get("s")
	cu.mu.Lock()
	var conns []net.Conn
	for c := range cu.conns[sid] {
		conns = append(conns, c)
	}
	cu.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]int{"cut": len(conns)})
}
