package faultproxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Upgrade says what the proxy does with WebSocket upgrade requests.
type Upgrade int

const (
	// UpgradePass proxies upgrades like any request: a working WebSocket.
	UpgradePass Upgrade = iota
	// UpgradeBlackHole forwards the upgrade, relays the origin's 101, and
	// from then on drops every byte both ways without closing anything:
	// the proxy that answers 101 and goes silent.
	UpgradeBlackHole
	// UpgradeHang reads the upgrade request and never answers it; the
	// connection stays open until the client or Close ends it.
	UpgradeHang
	// UpgradeRefuse answers 400 without asking the origin.
	UpgradeRefuse
)

// String returns the name of u.
func (u Upgrade) String() string {
	switch u {
	case UpgradePass:
		return "pass"
	case UpgradeBlackHole:
		return "black-hole"
	case UpgradeHang:
		return "hang"
	case UpgradeRefuse:
		return "refuse"
	}
	return fmt.Sprintf("Upgrade(%d)", int(u))
}

// Cut closes every client connection at a uniformly random time between
// Min and Max after it was accepted.
type Cut struct {
	Min, Max time.Duration
}

// Options configure a Proxy. The zero value proxies everything unchanged.
type Options struct {
	// Upgrade is what happens to WebSocket upgrades; zero is UpgradePass.
	Upgrade Upgrade
	// Cut, when not nil, cuts every client connection after a random time.
	Cut *Cut
	// Buffer holds every response body until it ends, and only then
	// sends it, whatever its headers ask (X-Accel-Buffering included): the
	// proxy, or antivirus box, that buffers. A long-poll's answer passes
	// whole; a stream passes nothing until it ends.
	Buffer bool
	// Seed seeds the random cut times. Zero picks a seed from the clock;
	// Proxy.Seed reports the one in use, for the test log.
	Seed uint64
	// OnUpgrade, when not nil, is called with the Upgrade applied each
	// time an upgrade request arrives, before the proxy acts on it. It
	// must not block.
	OnUpgrade func(Upgrade)
}

// Stats count what a Proxy did.
type Stats struct {
	Conns       int64 // client connections accepted
	Cuts        int64 // client connections closed by Options.Cut
	BlackHoled  int64 // upgrades answered 101 and then silenced
	Hung        int64 // upgrade requests left unanswered
	Refused     int64 // upgrades answered 400
	Passed      int64 // upgrades relayed unchanged
	Requests    int64 // requests of any kind
	UpstreamErr int64 // requests the origin did not answer
	Buffered    int64 // responses held until they ended (Options.Buffer)
}

// Proxy is a running fault-injecting proxy.
type Proxy struct {
	opts   Options
	seed   uint64
	ln     net.Listener
	srv    *http.Server
	rp     *httputil.ReverseProxy
	done   chan struct{}
	served chan struct{}
	once   sync.Once
	err    error

	mu     sync.Mutex
	rng    *rand.Rand
	conns  map[*trackedConn]struct{}
	closed bool

	accepted, cuts, blackHoled, hung, refused, passed, requests, upstreamErr, buffered atomic.Int64
}

// Start starts a proxy on a free port of 127.0.0.1 in front of the origin
// at target, an http:// URL. opts may be nil.
func Start(target string, opts *Options) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("faultproxy: target %q is not an http:// URL", target)
	}
	p := &Proxy{done: make(chan struct{}), served: make(chan struct{}), conns: map[*trackedConn]struct{}{}}
	if opts != nil {
		p.opts = *opts
	}
	if c := p.opts.Cut; c != nil && (c.Min <= 0 || c.Max < c.Min) {
		return nil, fmt.Errorf("faultproxy: cut range [%v, %v] is empty or not positive", c.Min, c.Max)
	}
	p.seed = p.opts.Seed
	if p.seed == 0 {
		p.seed = uint64(time.Now().UnixNano())
	}
	p.rng = rand.New(rand.NewPCG(p.seed, p.seed>>1|1))

	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host // the origin sees the Host the client asked for
			r.SetXForwarded()
		},
		FlushInterval: -1, // flush every write: streams pass unbuffered
		Transport:     &http.Transport{Proxy: nil, DialContext: (&net.Dialer{}).DialContext},
		ModifyResponse: func(resp *http.Response) error {
			if p.opts.Buffer && resp.StatusCode != http.StatusSwitchingProtocols {
				// Read whole before anything is sent: a stream's reader
				// waits here until the stream ends, or its client leaves
				// (which cancels the request, and this read).
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					return err
				}
				p.buffered.Add(1)
				resp.Body = io.NopCloser(bytes.NewReader(b))
				resp.ContentLength = int64(len(b))
				resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
				resp.TransferEncoding = nil
				return nil
			}
			if resp.StatusCode == http.StatusSwitchingProtocols && p.opts.Upgrade == UpgradeBlackHole {
				rwc, ok := resp.Body.(io.ReadWriteCloser)
				if !ok {
					return errors.New("faultproxy: 101 body is not a connection")
				}
				p.blackHoled.Add(1)
				resp.Body = &blackHole{rwc}
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			p.upstreamErr.Add(1)
			http.Error(w, "faultproxy: origin: "+err.Error(), http.StatusBadGateway)
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: %w", err)
	}
	p.ln = ln
	p.srv = &http.Server{
		Handler:  http.HandlerFunc(p.serve),
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go func() {
		defer close(p.served)
		p.srv.Serve(listener{ln, p})
	}()
	return p, nil
}

// Addr returns the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL returns the proxy's http:// base URL.
func (p *Proxy) URL() string { return "http://" + p.Addr() }

// Seed returns the seed of the random cut times.
func (p *Proxy) Seed() uint64 { return p.seed }

// Stats returns what the proxy did so far.
func (p *Proxy) Stats() Stats {
	return Stats{
		Conns: p.accepted.Load(), Cuts: p.cuts.Load(), BlackHoled: p.blackHoled.Load(), Hung: p.hung.Load(),
		Refused: p.refused.Load(), Passed: p.passed.Load(), Requests: p.requests.Load(),
		UpstreamErr: p.upstreamErr.Load(), Buffered: p.buffered.Load(),
	}
}

// Close stops the proxy: it closes the listener and every connection,
// hung and black-holed ones included, and waits for the server to stop.
func (p *Proxy) Close() error {
	p.once.Do(func() { p.err = p.close() })
	return p.err
}

func (p *Proxy) close() error {
	close(p.done) // releases hung requests
	err := p.srv.Close()
	<-p.served
	p.mu.Lock()
	p.closed = true
	open := make([]*trackedConn, 0, len(p.conns))
	for c := range p.conns {
		open = append(open, c)
	}
	p.mu.Unlock()
	for _, c := range open {
		c.Close() // upgraded connections, which http.Server no longer tracks
	}
	p.rp.Transport.(*http.Transport).CloseIdleConnections()
	return err
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	if !isUpgrade(r) {
		p.rp.ServeHTTP(w, r)
		return
	}
	// Counted before OnUpgrade reports it, so that Stats agrees with
	// what a test was told.
	switch p.opts.Upgrade {
	case UpgradeHang:
		p.hung.Add(1)
	case UpgradeRefuse:
		p.refused.Add(1)
	case UpgradePass:
		p.passed.Add(1)
	}
	if p.opts.OnUpgrade != nil {
		p.opts.OnUpgrade(p.opts.Upgrade)
	}
	switch p.opts.Upgrade {
	case UpgradeHang:
		select {
		case <-r.Context().Done():
		case <-p.done:
		}
		return
	case UpgradeRefuse:
		http.Error(w, "faultproxy: upgrades refused", http.StatusBadRequest)
		return
	}
	p.rp.ServeHTTP(w, r)
}

// listener arms the cut timer of each connection it accepts and keeps
// every open one, upgraded ones included (http.Server forgets those), so
// that Close can end them.
type listener struct {
	net.Listener
	p *Proxy
}

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	p := l.p
	p.accepted.Add(1)
	tc := &trackedConn{Conn: c, p: p}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	if cut := p.opts.Cut; cut != nil {
		d := cut.Min + time.Duration(p.rng.Int64N(int64(cut.Max-cut.Min)+1))
		tc.timer = time.AfterFunc(d, func() {
			p.cuts.Add(1)
			tc.Close()
		})
	}
	p.conns[tc] = struct{}{}
	return tc, nil
}

type trackedConn struct {
	net.Conn
	p     *Proxy
	timer *time.Timer // nil without Options.Cut
	once  sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.p.mu.Lock()
		defer c.p.mu.Unlock()
		if c.timer != nil { // set under mu, maybe after the timer fired
			c.timer.Stop()
		}
		delete(c.p.conns, c)
	})
	return c.Conn.Close()
}

// isUpgrade reports whether r asks to switch to WebSocket.
func isUpgrade(r *http.Request) bool {
	for _, v := range r.Header.Values("Connection") {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), "upgrade") {
				return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
			}
		}
	}
	return false
}

// blackHole is the origin side of a black-holed upgrade: what the client
// writes is dropped, and nothing the origin writes is ever read out.
type blackHole struct{ rwc io.ReadWriteCloser }

// Read discards the origin's bytes and returns only when the connection
// ends.
func (b *blackHole) Read(p []byte) (int, error) {
	for {
		if _, err := b.rwc.Read(p); err != nil {
			return 0, err
		}
	}
}

func (b *blackHole) Write(p []byte) (int, error) { return len(p), nil }

func (b *blackHole) Close() error { return b.rwc.Close() }
