// Package hostport parses the "host:port" of a relay target: the one
// syntax that the negotiate check and the relay's policy share, so that
// what the server accepts is what the relay judges.
package hostport

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// MaxLen is the longest target: a 253-byte name (or a bracketed IPv6
// address) with room to spare, a colon and a five-digit port.
const MaxLen = 255 + 6

// ErrSyntax is wrapped by every error of Parse.
var ErrSyntax = errors.New("not host:port")

// Target is a parsed "host:port".
type Target struct {
	// Name is the host name, lower-cased; empty when IP is set.
	Name string
	// IP is the address when the host is an IP literal.
	IP netip.Addr
	// Port is the port, 1–65535.
	Port uint16
}

// IsIP reports whether the host is an IP literal.
func (t Target) IsIP() bool { return t.IP.IsValid() }

// Host returns the host as a dial address takes it: the name, or the IP
// address without brackets.
func (t Target) Host() string {
	if t.IsIP() {
		return t.IP.String()
	}
	return t.Name
}

// Parse reads s strictly: a DNS name (letters, digits, '-' and '_' in
// dot-separated labels of 1–63 bytes, at most 253 bytes, no trailing dot,
// and a last label that is not a number, which URL parsers and some
// resolvers would read as an IPv4 address), an IPv4 address in dotted
// decimal, or an IPv6 address in brackets without a zone; then a colon and
// a port of 1–65535 in decimal without a sign or leading zeros.
func Parse(s string) (Target, error) {
	var t Target
	if len(s) > MaxLen {
		return t, fmt.Errorf("%w: longer than %d bytes", ErrSyntax, MaxLen)
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return t, fmt.Errorf("%w: no port", ErrSyntax)
	}
	host, port := s[:i], s[i+1:]
	p, err := parsePort(port)
	if err != nil {
		return t, err
	}
	t.Port = p
	if strings.HasPrefix(host, "[") {
		inner, ok := strings.CutSuffix(host[1:], "]")
		ip, err := netip.ParseAddr(inner)
		if !ok || err != nil || !ip.Is6() || ip.Zone() != "" {
			return t, fmt.Errorf("%w: bad IPv6 address in brackets", ErrSyntax)
		}
		t.IP = ip
		return t, nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if !ip.Is4() {
			return t, fmt.Errorf("%w: an IPv6 address needs brackets", ErrSyntax)
		}
		t.IP = ip
		return t, nil
	}
	if err := checkName(host); err != nil {
		return t, err
	}
	t.Name = strings.ToLower(host)
	return t, nil
}

func parsePort(s string) (uint16, error) {
	if s == "" || len(s) > 5 || s[0] == '0' {
		return 0, fmt.Errorf("%w: port must be 1-65535", ErrSyntax)
	}
	n := 0
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: port must be 1-65535", ErrSyntax)
		}
		n = n*10 + int(c-'0')
	}
	if n > 65535 {
		return 0, fmt.Errorf("%w: port must be 1-65535", ErrSyntax)
	}
	return uint16(n), nil
}

func checkName(h string) error {
	if h == "" || len(h) > 253 {
		return fmt.Errorf("%w: host must be a name of 1-253 bytes or an IP address", ErrSyntax)
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("%w: host %q is not a DNS name", ErrSyntax, h)
		}
		for _, c := range []byte(l) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("%w: host %q is not a DNS name", ErrSyntax, h)
			}
		}
	}
	last := strings.ToLower(labels[len(labels)-1])
	if strings.HasPrefix(last, "0x") || strings.Trim(last, "0123456789") == "" {
		// "127.1", "2130706433" and "0x7f.1" are IPv4 addresses to
		// inet_aton and to URL parsers: never names.
		return fmt.Errorf("%w: host %q ends in a number but is not an IPv4 address", ErrSyntax, h)
	}
	return nil
}
