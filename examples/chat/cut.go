package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"sync"

	"github.com/seed-544bbf9f/comet"
)

// cutter is the -debug flag's connection cutter: it remembers which
// connections carry each session's requests (the s parameter of every
// request after negotiate, PROTOCOL.md section 2, or the answer of a first
// attach that negotiates), so that POST
// /debug/cut?s=ID can close them from under the session, as a proxy or a
// flaky network would. The session itself lives on: its client resumes.
// It needs only net/http: http.Server.ConnContext hands each request its
// connection, which stays the same net.Conn after a WebSocket's hijack.
// A WebSocket's request returns once the connection is hijacked, so a
// hijacked connection is remembered until it closes, which the cutter's
// listener sees.
type cutter struct {
	mu       sync.Mutex
	conns    map[string]map[net.Conn]int // by session ID: requests in flight on each
	hijacked map[net.Conn]string         // hijacked connections, and the session each serves
}

type connKey struct{}

func newCutter() *cutter {
	return &cutter{conns: map[string]map[net.Conn]int{}, hijacked: map[net.Conn]string{}}
}

// install hooks the cutter into srv, which is to serve the listener it
// returns, ln wrapped so that the cutter sees its connections close.
func (cu *cutter) install(srv *http.Server, ln net.Listener) net.Listener {
	srv.ConnContext = cu.connContext
	srv.ConnState = cu.connState
	return cutListener{ln, cu}
}

type cutListener struct {
	net.Listener
	cu *cutter
}

func (l cutListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &cutConn{Conn: c, cu: l.cu}, nil
}

// cutConn tells the cutter when it closes.
type cutConn struct {
	net.Conn
	cu *cutter
}

func (c *cutConn) Close() error {
	c.cu.forget(c)
	return c.Conn.Close()
}

// connState is the http.Server's ConnState: it notes hijacked connections.
func (cu *cutter) connState(c net.Conn, state http.ConnState) {
	if state != http.StateHijacked {
		return
	}
	cu.mu.Lock()
	defer cu.mu.Unlock()
	cu.hijacked[c] = ""
}

// forget drops a closed connection.
func (cu *cutter) forget(c net.Conn) {
	cu.mu.Lock()
	defer cu.mu.Unlock()
	sid, ok := cu.hijacked[c]
	if !ok {
		return
	}
	delete(cu.hijacked, c)
	cu.drop(sid, c)
}

// drop forgets c as a connection of session sid. Called with mu held.
func (cu *cutter) drop(sid string, c net.Conn) {
	if cu.conns[sid][c]--; cu.conns[sid][c] <= 0 {
		delete(cu.conns[sid], c)
	}
	if len(cu.conns[sid]) == 0 {
		delete(cu.conns, sid)
	}
}

// connContext is the http.Server's ConnContext.
func (*cutter) connContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// wrap records the connection of every request of a session to next for as
// long as next serves it (a stream's whole life), or, hijacked, until it
// closes (a WebSocket's). A first attach that negotiates (PROTOCOL.md
// section 3) names its session only in its answer, so its connection is
// recorded when the answer starts.
func (cu *cutter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := r.Context().Value(connKey{}).(net.Conn)
		sid, negotiates := r.URL.Query().Get("s"), r.URL.Query().Has("n")
		switch {
		case !ok || sid == "" && !negotiates:
			next.ServeHTTP(w, r)
			return
		case negotiates:
			w = &answerWatch{ResponseWriter: w, started: func(h http.Header) {
				if sid = sessionOf(h); sid != "" {
					cu.add(sid, c)
				}
			}}
		default:
			cu.add(sid, c)
		}
		next.ServeHTTP(w, r)
		if sid != "" {
			cu.remove(sid, c)
		}
	})
}

func (cu *cutter) add(sid string, c net.Conn) {
	cu.mu.Lock()
	defer cu.mu.Unlock()
	if cu.conns[sid] == nil {
		cu.conns[sid] = map[net.Conn]int{}
	}
	cu.conns[sid][c]++
}

// remove forgets c as a connection of session sid once its request has
// ended, unless the request hijacked it (a WebSocket): forget drops it
// when it closes.
func (cu *cutter) remove(sid string, c net.Conn) {
	cu.mu.Lock()
	defer cu.mu.Unlock()
	if _, ok := cu.hijacked[c]; ok {
		cu.hijacked[c] = sid
		return
	}
	cu.drop(sid, c)
}

// sessionOf returns the session ID of the negotiate response in the
// answer headers h of an attach that negotiated, or "".
func sessionOf(h http.Header) string {
	var neg struct {
		SID string `json:"sid"`
	}
	if json.Unmarshal([]byte(h.Get(comet.NegotiateHeader)), &neg) != nil {
		return ""
	}
	return neg.SID
}

// answerWatch calls started once, with the answer's headers, when the
// answer starts: its status, its first byte, its first flush, or the
// hijack of a WebSocket upgrade.
type answerWatch struct {
	http.ResponseWriter
	started func(http.Header)
	once    sync.Once
}

func (a *answerWatch) start() { a.once.Do(func() { a.started(a.Header()) }) }

func (a *answerWatch) WriteHeader(code int) {
	a.start()
	a.ResponseWriter.WriteHeader(code)
}

func (a *answerWatch) Write(b []byte) (int, error) {
	a.start()
	return a.ResponseWriter.Write(b)
}

func (a *answerWatch) Flush() {
	a.start()
	http.NewResponseController(a.ResponseWriter).Flush()
}

func (a *answerWatch) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	a.start()
	return http.NewResponseController(a.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (a *answerWatch) Unwrap() http.ResponseWriter { return a.ResponseWriter }

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
