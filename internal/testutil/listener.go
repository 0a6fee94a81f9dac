package testutil

import (
	"net"
	"sync"
	"testing"
)

// Listener is a net.Listener that keeps the connections it accepted
// until they close, hijacked ones too (which http.Server and httptest
// forget), so that Cut can end them all as a dying process would.
type Listener struct {
	net.Listener
	mu   sync.Mutex
	open map[*trackedConn]struct{}
}

// TrackConns wraps l.
func TrackConns(l net.Listener) *Listener {
	return &Listener{Listener: l, open: make(map[*trackedConn]struct{})}
}

// Accept implements net.Listener.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, l: l}
	l.mu.Lock()
	l.open[tc] = struct{}{}
	l.mu.Unlock()
	return tc, nil
}

// Cut closes the listener, so that a dial is refused, and every
// connection it accepted.
func (l *Listener) Cut() {
	l.Listener.Close()
	l.CutConns()
}

// CutConns closes every connection the listener accepted, and goes on
// accepting: the connections of a node dropped by the network.
func (l *Listener) CutConns() {
	l.mu.Lock()
	open := l.open
	l.open = make(map[*trackedConn]struct{})
	l.mu.Unlock()
	for c := range open {
		c.Close()
	}
}

type trackedConn struct {
	net.Conn
	l    *Listener
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.open, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// TCPPair returns both ends of a loopback TCP connection, closed when
// the test ends.
func TCPPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		client.Close()
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}
