package main

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"path"
	"sync"

	"github.com/seed-544bbf9f/comet"
)

// servedCounter counts, per session, the requests of the Comet handler
// this node served, by the last element of their path (the transport's
// name, "send", …): what -debug's /debug/served reports, so that a test
// can see a session's requests spread over the nodes. It keeps every
// session it has seen, for as long as the node runs: a debugging aid,
// not for production.
type servedCounter struct {
	mu       sync.Mutex
	sessions map[string]map[string]int // session → path → requests
}

func newServedCounter() *servedCounter {
	return &servedCounter{sessions: make(map[string]map[string]int)}
}

// served is the answer of /debug/served.
type served struct {
	Node     string         `json:"node"`
	Session  string         `json:"session"`
	Requests int            `json:"requests"`
	Paths    map[string]int `json:"paths"`
}

func (sc *servedCounter) get(node, sid string) served {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	s := served{Node: node, Session: sid, Paths: map[string]int{}}
	for p, n := range sc.sessions[sid] {
		s.Paths[p] = n
		s.Requests += n
	}
	return s
}

func (sc *servedCounter) add(sid, p string) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.sessions[sid] == nil {
		sc.sessions[sid] = make(map[string]int)
	}
	sc.sessions[sid][p]++
}

// wrap counts the requests to next by the session their s parameter
// names. A first attach that negotiates (PROTOCOL.md section 3) has none:
// its session is named in its answer's comet.NegotiateHeader, so it is
// counted when that answer starts. A separate negotiate POST names its
// session only in its body, and is not counted.
func (sc *servedCounter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		p := path.Base(r.URL.Path)
		switch sid := q.Get("s"); {
		case sid != "":
			sc.add(sid, p)
		case q.Has("n"):
			w = &answerWatch{ResponseWriter: w, started: func(h http.Header) {
				var neg struct {
					SID string `json:"sid"`
				}
				if json.Unmarshal([]byte(h.Get(comet.NegotiateHeader)), &neg) == nil && neg.SID != "" {
					sc.add(neg.SID, p)
				}
			}}
		}
		next.ServeHTTP(w, r)
	})
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
