package conformance

import (
	"context"
	"net"
	"sync"
)

// netControl dials loopback connections it can cut all at once, and can
// hold new dials back to keep a client detached.
type netControl struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	gate  chan struct{} // nil: dials go ahead
}

func newNetControl() *netControl { return &netControl{conns: make(map[net.Conn]struct{})} }

func (n *netControl) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	n.mu.Lock()
	gate := n.gate
	n.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	n.conns[c] = struct{}{}
	n.mu.Unlock()
	return &trackedConn{Conn: c, n: n}, nil
}

// cut closes every connection dialed so far and returns how many it
// closed.
func (n *netControl) cut() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	cut := len(n.conns)
	for c := range n.conns {
		c.Close()
		delete(n.conns, c)
	}
	return cut
}

// hold makes new dials wait until release.
func (n *netControl) hold() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.gate == nil {
		n.gate = make(chan struct{})
	}
}

func (n *netControl) release() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.gate != nil {
		close(n.gate)
		n.gate = nil
	}
}

type trackedConn struct {
	net.Conn
	n *netControl
}

func (c *trackedConn) Close() error {
	c.n.mu.Lock()
	delete(c.n.conns, c.Conn)
	c.n.mu.Unlock()
	return c.Conn.Close()
}
