package tcprelay

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/seed-544bbf9f/comet/internal/hostport"
)

// entry is one parsed Options.Allow entry: a host name and one port, or a
// network and a range of ports.
type entry struct {
	name    string       // lower-case host name; "" for a network entry
	net     netip.Prefix // the network of an IP or CIDR entry, masked
	lo, hi  uint16       // the ports admitted, lo <= hi
	special bool         // net lies within a special-purpose network
}

// explicit reports whether the entry names port alone, which admits it
// even if it is a bad port.
func (e *entry) explicit(port uint16) bool { return e.lo == port && e.hi == port }

func (e *entry) String() string {
	host := e.name
	if host == "" {
		host = e.net.String()
		if e.net.Addr().Is6() {
			host = "[" + host + "]"
		}
	}
	if e.lo == e.hi {
		return fmt.Sprintf("%s:%d", host, e.lo)
	}
	return fmt.Sprintf("%s:%d-%d", host, e.lo, e.hi)
}

var errEntry = errors.New("tcprelay: Allow entry")

// parseEntry reads an Options.Allow entry: "host:port", with host a name,
// an IPv4 address or a bracketed IPv6 address; or "CIDR:port" or
// "CIDR:lo-hi" (an IP address counts as a CIDR of one address), the IPv6
// ones in brackets: "10.0.0.0/8:6379", "[2001:db8::/32]:443-444".
func parseEntry(s string) (entry, error) {
	var e entry
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return e, fmt.Errorf("%w %q: no port", errEntry, s)
	}
	host, ports := s[:i], s[i+1:]
	lo, hi, isRange := strings.Cut(ports, "-")
	if !isRange {
		hi = lo
	}
	l, err1 := parsePort(lo)
	h, err2 := parsePort(hi)
	if err1 != nil || err2 != nil || l > h {
		return e, fmt.Errorf("%w %q: port must be 1-65535, or a range lo-hi of those", errEntry, s)
	}
	e.lo, e.hi = l, h
	inner, bracketed := strings.CutPrefix(host, "[")
	if bracketed {
		if inner, bracketed = strings.CutSuffix(inner, "]"); !bracketed {
			return e, fmt.Errorf("%w %q: unclosed bracket", errEntry, s)
		}
	}
	if _, err := netip.ParseAddr(inner); err != nil && !bracketed && !strings.Contains(inner, "/") {
		if isRange {
			return e, fmt.Errorf("%w %q: a name takes one port, not a range", errEntry, s)
		}
		t, err := hostport.Parse(s)
		if err != nil || t.IsIP() {
			return e, fmt.Errorf("%w %q: host is not a name, an IPv4 address or a bracketed IPv6 one", errEntry, s)
		}
		e.name = t.Name
		return e, nil
	}
	p, err := parseNet(inner)
	if err != nil || p.Addr().Is6() != bracketed {
		return e, fmt.Errorf("%w %q: not an IPv4 network, or an IPv6 one in brackets", errEntry, s)
	}
	e.net = normalisePrefix(p)
	e.special = slices.ContainsFunc(specialNets, func(sp netip.Prefix) bool {
		return sp.Bits() <= e.net.Bits() && sp.Contains(e.net.Addr())
	})
	return e, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 || s[0] == '0' || s[0] == '+' {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return uint16(n), nil
}

// parseNet reads an address, without a zone, or a masked CIDR.
func parseNet(s string) (netip.Prefix, error) {
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return p, err
		}
		if p != p.Masked() {
			return p, fmt.Errorf("%s has bits set past its prefix length", s)
		}
	} else {
		ip, err := netip.ParseAddr(s)
		if err != nil || ip.Zone() != "" {
			return p, fmt.Errorf("bad address %q", s)
		}
		p = netip.PrefixFrom(ip, ip.BitLen())
	}
	return p, nil
}

// normalisePrefix turns an IPv4-mapped or NAT64 network of at least 96
// bits into the IPv4 network it stands for, as normalise does addresses.
func normalisePrefix(p netip.Prefix) netip.Prefix {
	a := p.Addr()
	if p.Bits() >= 96 && (a.Is4In6() || nat64.Contains(a)) {
		b := a.As16()
		return netip.PrefixFrom(netip.AddrFrom4([4]byte(b[12:])), p.Bits()-96)
	}
	return p
}

// nat64 is the well-known NAT64 prefix (RFC 6052): 64:ff9b::a.b.c.d
// reaches a.b.c.d through a translator.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// normalise returns the IPv4 address that an IPv4-mapped (::ffff:a.b.c.d)
// or NAT64 (64:ff9b::a.b.c.d) address reaches, or a itself. The policy
// judges the address the connection ends at.
func normalise(a netip.Addr) netip.Addr {
	a = a.WithZone("")
	if a.Is4In6() || nat64.Contains(a) {
		b := a.As16()
		return netip.AddrFrom4([4]byte(b[12:]))
	}
	return a
}

// specialNets are never reached unless an IP or CIDR entry inside them
// allows it: what is not the public internet, whose back-ends an operator
// names one by one.
var specialNets = func() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",      // "this network", 0.0.0.0 the unspecified address
		"10.0.0.0/8",     // private (RFC 1918)
		"100.64.0.0/10",  // carrier-grade NAT (RFC 6598)
		"127.0.0.0/8",    // loopback
		"169.254.0.0/16", // link-local, with the cloud metadata address 169.254.169.254
		"172.16.0.0/12",  // private
		"192.168.0.0/16", // private
		"224.0.0.0/4",    // multicast
		"240.0.0.0/4",    // reserved, with the broadcast address 255.255.255.255
		"::/96",          // unspecified, and the deprecated IPv4-compatible addresses
		"::1/128",        // loopback
		"64:ff9b:1::/48", // local-use NAT64 (RFC 8215), whose IPv4 cannot be checked
		"fc00::/7",       // unique-local, with the cloud metadata address fd00:ec2::254
		"fe80::/10",      // link-local
		"ff00::/8",       // multicast
	} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}()

// isSpecial reports whether a (normalised) lies in a special network.
func isSpecial(a netip.Addr) bool {
	return slices.ContainsFunc(specialNets, func(p netip.Prefix) bool { return p.Contains(a) })
}

// badPorts is the "bad port" list of the WHATWG Fetch standard (section
// "Port blocking"): ports whose services a browser may not reach, because
// text that a page controls, sent to them, can be read as commands (SMTP,
// IRC, SIP...). A relay is the same hazard, so range entries skip them.
var badPorts = func() map[uint16]bool {
	m := map[uint16]bool{}
	for _, p := range []uint16{1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95,
		101, 102, 103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465,
		512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995,
		1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679,
		6697, 10080} {
		m[p] = true
	}
	return m
}()

// policy is a parsed allowlist.
type policy struct {
	entries []entry
}

// newPolicy parses allow; it returns the entries it could not parse as
// errors, and leaves them out: an entry left out only refuses more.
func newPolicy(allow []string) (*policy, []error) {
	p := &policy{}
	var errs []error
	for _, s := range allow {
		e, err := parseEntry(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.entries = append(p.entries, e)
	}
	return p, errs
}

// mayResolve reports whether some resolved address of the name target t
// could be allowed: a name entry for it, or a network entry for its
// port. Otherwise the relay refuses without a DNS query.
func (p *policy) mayResolve(t hostport.Target) bool {
	for i := range p.entries {
		e := &p.entries[i]
		if e.name == "" && e.lo <= t.Port && t.Port <= e.hi && (!badPorts[t.Port] || e.explicit(t.Port)) {
			return true
		}
		if e.name != "" && e.name == t.Name && e.lo == t.Port {
			return true
		}
	}
	return false
}

// allows reports whether the relay may connect to addr, an address of
// target t (t's own IP, or one its name resolved to), and if not, why.
func (p *policy) allows(t hostport.Target, addr netip.Addr) (bool, string) {
	a := normalise(addr)
	special := isSpecial(a)
	reason := "not on the allowlist"
	for i := range p.entries {
		e := &p.entries[i]
		if e.name != "" {
			if t.IsIP() || e.name != t.Name || e.lo != t.Port {
				continue
			}
			if special {
				reason = fmt.Sprintf("%s resolved to %s, which only an IP or CIDR entry admits", t.Name, a)
				continue
			}
			return true, ""
		}
		if !e.net.Contains(a) || t.Port < e.lo || t.Port > e.hi {
			continue
		}
		if special && !e.special {
			reason = fmt.Sprintf("%s is special-purpose; %s is wider than its network", a, e.String())
			continue
		}
		if badPorts[t.Port] && !e.explicit(t.Port) {
			reason = fmt.Sprintf("port %d is a bad port; %s does not name it alone", t.Port, e.String())
			continue
		}
		return true, ""
	}
	return false, reason
}
