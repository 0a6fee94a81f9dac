package tcprelay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/internal/hostport"
	"github.com/seed-544bbf9f/comet/internal/logid"
)

// linger bounds the close of a relay whose session closed: the time to
// write what the client sent last, and to read the back-end's answer to
// our FIN, so that the socket ends with a FIN both ways, not a reset.
const linger = 5 * time.Second

// maxAddrs bounds the addresses of a name the relay tries.
const maxAddrs = 8

// openMessage is the relay's first downstream message (PROTOCOL.md
// section 13).
var openMessage = []byte(`{"open":true}`)

// Relay relays sessions to TCP back-ends. Its methods are safe for
// concurrent use.
type Relay struct {
	opts   Options
	policy *policy
	log    *slog.Logger

	mu        sync.Mutex
	conns     int                  // relays holding a slot
	perClient map[netip.Prefix]int // slots by client (clientKey)
}

// clientKey names a client for MaxConnsPerClient: its IPv4 address, or
// its IPv6 /64, since one host usually owns a whole /64.
func clientKey(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.WithZone("").Prefix(64)
		return p
	}
	return netip.PrefixFrom(a, a.BitLen())
}

// New returns a Relay with opts; nil means every default, which refuses
// every target until Options.Allow lists some.
func New(opts *Options) *Relay {
	o := opts.withDefaults()
	p, errs := newPolicy(o.Allow)
	for _, err := range errs {
		o.Logger.Error("tcprelay: Allow entry left out", "error", err)
	}
	return &Relay{opts: o, policy: p, log: o.Logger, perClient: make(map[netip.Prefix]int)}
}

// Serve relays s to the target it was granted (RequestInfo.Target), as
// PROTOCOL.md section 13 describes, and returns when the relay is over
// and s is closed. Use it as comet.Options.Serve, or call it from there.
func (r *Relay) Serve(s *comet.Session) {
	info := s.Request()
	ev := DialEvent{Target: info.Target, Client: info.ClientAddr}
	start := time.Now()
	log := r.log.With("session", logid.Short(s.ID()), "target", info.Target, "client", info.ClientAddr)
	var conn net.Conn
	if r.acquire(info.ClientAddr) {
		defer r.release(info.ClientAddr)
		conn = r.connect(s.Context(), &ev)
	} else {
		ev.Code, ev.Reason = comet.CloseOverloaded, "too many relayed connections"
	}
	ev.Elapsed = time.Since(start)
	if f := r.opts.OnDial; f != nil {
		f(ev)
	}
	if conn == nil {
		log.Info("tcprelay: not connected", "code", int(ev.Code), "reason", ev.Reason, "addr", ev.Addr)
		closeSession(s, ev.Code, clientReason(ev.Code))
		return
	}
	log.Debug("tcprelay: connected", "addr", ev.Addr, "elapsed", ev.Elapsed)
	p := &pipe{s: s, conn: conn, start: time.Now(), chunk: r.opts.ReadBuffer}
	p.run(r.opts.ReadBuffer, r.opts.IdleTimeout)
	ce := CloseEvent{Target: info.Target, Client: info.ClientAddr, Addr: ev.Addr, BytesUp: p.up.Load(),
		BytesDown: p.down.Load(), Duration: time.Since(p.start), Code: p.code, Reason: p.reason}
	log.Debug("tcprelay: closed", "code", int(ce.Code), "reason", ce.Reason, "up", ce.BytesUp, "down", ce.BytesDown,
		"duration", ce.Duration)
	if f := r.opts.OnClose; f != nil {
		f(ce)
	}
}

// acquire takes a connection slot for client, if both caps allow.
func (r *Relay) acquire(client netip.Addr) bool {
	k := clientKey(client)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conns >= r.opts.MaxConns || r.perClient[k] >= r.opts.MaxConnsPerClient {
		return false
	}
	r.conns++
	r.perClient[k]++
	return true
}

func (r *Relay) release(client netip.Addr) {
	k := clientKey(client)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.conns--
	if r.perClient[k]--; r.perClient[k] == 0 {
		delete(r.perClient, k)
	}
}

// connect checks ev.Target against the policy and connects to an allowed
// address of it, within ConnectTimeout. It fills ev and returns the
// connection, or nil with ev.Code set.
func (r *Relay) connect(ctx context.Context, ev *DialEvent) net.Conn {
	fail := func(code comet.CloseCode, reason string) net.Conn {
		ev.Code, ev.Reason = code, reason
		return nil
	}
	if ev.Target == "" {
		return fail(comet.CloseRelayNotAllowed, "no target granted")
	}
	t, err := hostport.Parse(ev.Target)
	if err != nil {
		return fail(comet.CloseRelayNotAllowed, err.Error())
	}
	ctx, cancel := context.WithTimeout(ctx, r.opts.ConnectTimeout)
	defer cancel()
	addrs := []netip.Addr{t.IP}
	if !t.IsIP() {
		if !r.policy.mayResolve(t) {
			return fail(comet.CloseRelayNotAllowed, "not on the allowlist")
		}
		// Resolved once: what is checked below is what is dialed, so a
		// name that answers differently the second time (DNS rebinding)
		// gains nothing.
		addrs, err = r.opts.Resolver.LookupNetIP(ctx, "ip", t.Name)
		if err != nil || len(addrs) == 0 {
			return fail(comet.CloseRelayDNS, fmt.Sprintf("resolving %s: %v (%d addresses)", t.Name, err, len(addrs)))
		}
		addrs = addrs[:min(len(addrs), maxAddrs)]
	}
	var allowed []netip.Addr
	reason := ""
	for _, a := range addrs {
		if ok, why := r.policy.allows(t, a); ok {
			allowed = append(allowed, a)
		} else if reason == "" {
			reason = why
		}
	}
	if len(allowed) == 0 {
		return fail(comet.CloseRelayNotAllowed, reason)
	}
	ev.Allowed = true
	var last error
	for _, a := range allowed {
		ev.Addr = netip.AddrPortFrom(a.Unmap().WithZone(""), t.Port)
		conn, err := r.opts.Dial(ctx, "tcp", ev.Addr.String())
		if err == nil {
			return conn
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	var ne net.Error
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.As(last, &ne) && ne.Timeout() {
		return fail(comet.CloseRelayConnectTimeout, fmt.Sprintf("connecting: %v", last))
	}
	return fail(comet.CloseRelayRefused, fmt.Sprintf("connecting: %v", last))
}

// clientReason is the reason a client is told for a failure: enough to
// act on, and nothing of the network behind the relay.
func clientReason(code comet.CloseCode) string {
	switch code {
	case comet.CloseRelayNotAllowed:
		return "target not allowed"
	case comet.CloseRelayRefused:
		return "connection refused"
	case comet.CloseRelayConnectTimeout:
		return "connect timed out"
	case comet.CloseRelayDNS:
		return "name did not resolve"
	case comet.CloseOverloaded:
		return "too many relayed connections"
	}
	return ""
}

// isReset reports whether err is the back-end resetting the connection.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED)
}

// readerEOF reports whether err is the back-end's FIN.
func readerEOF(err error) bool { return errors.Is(err, io.EOF) }
