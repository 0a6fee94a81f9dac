package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/transport"
)

// Kinds of connection a load client opens: a Comet session over one
// forced transport (or, "comet-a+b", transports in that order), or a raw
// baseline.
const (
	kindRawWS   = "raw-websocket" // gorilla/websocket connection
	kindRawPark = "raw-park"      // parked net/http request
	kindRawSSE  = "raw-sse"       // idle SSE stream
	// Push-storm targets: clients that hold the connection and never read.
	kindStallComet = "stall-comet" // Comet WebSocket session, its receive buffer one message
	kindStallRaw   = "stall-raw"   // gorilla/websocket connection
	// kindDeflateComet is a Comet WebSocket session whose client asks for
	// permessage-deflate (metric 11).
	kindDeflateComet = "deflate-comet"
	// kindSSEFallback is a Comet session on SSE whose client may fall
	// back to long-polling, and so probes its stream (metric 4).
	kindSSEFallback = "comet-" + transport.SSE + "+" + transport.LongPoll
)

// cometKind names the kind of a Comet session forced onto transport t.
func cometKind(t string) string { return "comet-" + t }

// sourceAddr returns the loopback address 127.0.x.y numbered i (from 0),
// skipping 127.0.0.1 and the .0 and .255 of every /24. Load clients spread
// their connections over several, since one source address has only the
// ephemeral port range (about 28,000 ports) for one server address.
func sourceAddr(i int) net.IP {
	i++ // 127.0.0.2 first
	return net.IPv4(127, 0, byte(i/254), byte(i%254+1)).To4()
}

// dialerFrom returns a dialer bound to the source address ip.
func dialerFrom(ip net.IP) *net.Dialer {
	if ip == nil {
		return &net.Dialer{Timeout: 30 * time.Second}
	}
	return &net.Dialer{Timeout: 30 * time.Second, LocalAddr: &net.TCPAddr{IP: ip}}
}

// conn is one open session or raw connection of a load client.
type conn interface {
	// recvLoop calls onMsg with every message until the connection ends.
	recvLoop(onMsg func([]byte))
	close()
}

// opener opens connections of one kind to one server.
type opener struct {
	kind string
	base string // http://host:port
	// transports caches one HTTP transport per source address for the
	// raw HTTP kinds; Comet clients build their own, as in production.
	mu         sync.Mutex
	transports map[string]*http.Transport
}

func newOpener(kind, base string) *opener {
	return &opener{kind: kind, base: base, transports: map[string]*http.Transport{}}
}

// open opens one connection from source address ip (nil: any). It returns
// once the connection is established: a Comet session attached, a
// WebSocket upgraded, an HTTP request's headers received.
func (o *opener) open(ctx context.Context, ip net.IP) (conn, error) {
	d := dialerFrom(ip)
	switch o.kind {
	case kindRawWS:
		wd := websocket.Dialer{NetDialContext: d.DialContext, HandshakeTimeout: 30 * time.Second}
		u := "ws" + strings.TrimPrefix(o.base, "http") + "/raw/ws?fanout=1"
		c, resp, err := wd.DialContext(ctx, u, nil)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		return rawWS{c}, nil
	case kindStallRaw:
		wd := websocket.Dialer{NetDialContext: d.DialContext, HandshakeTimeout: 30 * time.Second}
		c, resp, err := wd.DialContext(ctx, "ws"+strings.TrimPrefix(o.base, "http")+"/raw/stall", nil)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		return stalled{c.Close}, nil
	case kindStallComet:
		// A receive buffer of one message: the client stops reading its
		// socket as soon as one message waits for the Recv that never
		// comes (the default, 256, would buffer 16 MiB of the storm's
		// messages per client first).
		c, err := client.Dial(ctx, o.base+"/comet", &client.Options{
			Transports:     []string{transport.WebSocket},
			NetDialContext: d.DialContext,
			Header:         http.Header{stallHeader: {"1"}},
			ReceiveBuffer:  1,
		})
		if err != nil {
			return nil, err
		}
		return stalled{c.CloseNow}, nil
	case kindRawPark, kindRawSSE:
		path := "/raw/park"
		if o.kind == kindRawSSE {
			path = "/raw/sse"
		}
		return o.openStream(ctx, d, ip, path)
	}
	opts := &client.Options{NetDialContext: d.DialContext}
	if o.kind == kindDeflateComet {
		opts.Transports = []string{transport.WebSocket}
		opts.Compression = &comet.Compression{}
	} else if t, ok := strings.CutPrefix(o.kind, "comet-"); ok {
		// "comet-sse+longpoll": the transports in order, the first of which
		// is tried first and the rest are there to fall back to.
		opts.Transports = strings.Split(t, "+")
	} else {
		return nil, fmt.Errorf("unknown connection kind %q", o.kind)
	}
	c, err := client.Dial(ctx, o.base+"/comet", opts)
	if err != nil {
		return nil, err
	}
	return cometConn{c}, nil
}

func (o *opener) openStream(ctx context.Context, d *net.Dialer, ip net.IP, path string) (conn, error) {
	o.mu.Lock()
	tr := o.transports[ip.String()]
	if tr == nil {
		tr = &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 64}
		o.transports[ip.String()] = tr
	}
	o.mu.Unlock()
	rctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, o.base+path, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return &rawStream{body: resp.Body, cancel: cancel}, nil
}

type cometConn struct{ c *client.Conn }

func (c cometConn) recvLoop(onMsg func([]byte)) {
	for {
		_, p, err := c.c.Recv(context.Background())
		if err != nil {
			return
		}
		onMsg(p)
	}
}

func (c cometConn) close() { c.c.CloseNow() }

type rawWS struct{ c *websocket.Conn }

func (c rawWS) recvLoop(onMsg func([]byte)) {
	for {
		_, p, err := c.c.ReadMessage()
		if err != nil {
			return
		}
		onMsg(p)
	}
}

func (c rawWS) close() { c.c.Close() }

// stalled is a connection that is never read: a push-storm target.
type stalled struct{ closeFn func() error }

func (stalled) recvLoop(func([]byte)) {}

func (c stalled) close() { c.closeFn() }

// rawStream is an HTTP response held open: an SSE stream (whose events
// recvLoop reports) or a parked request.
type rawStream struct {
	body   io.ReadCloser
	cancel context.CancelFunc
}

func (c *rawStream) recvLoop(onMsg func([]byte)) {
	sc := bufio.NewScanner(c.body)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			onMsg([]byte(p))
		}
	}
}

func (c *rawStream) close() {
	c.cancel()
	c.body.Close()
}

// dialComet opens a Comet session forced onto transport t, from any source
// address, for the parent's own workloads.
func dialComet(ctx context.Context, base, t string) (*client.Conn, error) {
	return client.Dial(ctx, base+"/comet", &client.Options{Transports: []string{t}})
}

// sendText sends p on c.
func sendText(ctx context.Context, c *client.Conn, p []byte) error {
	return c.Send(ctx, transport.Text, p)
}
