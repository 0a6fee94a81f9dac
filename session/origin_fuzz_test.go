package session

import (
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// FuzzCanonicalOrigin checks the Origin parser of PROTOCOL.md section 11
// on any string: what it accepts it writes as scheme://host:port, which
// it accepts again unchanged; it never accepts userinfo, a path, a query,
// a fragment or whitespace; and net/url reads an accepted origin as the
// same scheme, host and port, with nothing else.
func FuzzCanonicalOrigin(f *testing.F) {
	for _, s := range []string{
		"http://app.example", "HTTPS://App.Example:443", "http://192.0.2.1:8080", "http://[2001:DB8::1]:8080",
		"http://[::ffff:192.0.2.1]", "wss://a.example", "chrome-extension://abc", "null", "http://evil@app.example",
		"http://app.example/", "http://app.example?q", "http://app.example#f", "http://app.example:080",
		"http://app.example:65536", "http://[fe80::1%25eth0]", "http://app%2eexample", "http://a b", "http://app.example:8080 ",
		"http://[::1]:1", "a+b-c.d://x:65535",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := canonicalOrigin(s)
		if !ok {
			if c != "" {
				t.Fatalf("canonicalOrigin(%q) refused it but returned %q", s, c)
			}
			return
		}
		if again, ok := canonicalOrigin(c); !ok || again != c {
			t.Fatalf("canonicalOrigin(%q) = %q, whose canonical form is %q, %v", s, c, again, ok)
		}
		if _, rest, _ := strings.Cut(s, "://"); strings.ContainsAny(rest, "@/?#%\\ \t\r\n\f\v") || s == "null" {
			t.Fatalf("canonicalOrigin accepted %q, which holds more than scheme://host[:port]", s)
		}
		scheme, hostport, found := strings.Cut(c, "://")
		if !found || scheme != strings.ToLower(scheme) || !validScheme(scheme) {
			t.Fatalf("canonicalOrigin(%q) = %q: no lower-case scheme", s, c)
		}
		if strings.ContainsAny(hostport, "@/?#%\\") || strings.ContainsFunc(hostport, isSpace) {
			t.Fatalf("canonicalOrigin(%q) = %q: more than host:port after the scheme", s, c)
		}
		i := strings.LastIndexByte(hostport, ':')
		if i <= 0 {
			t.Fatalf("canonicalOrigin(%q) = %q: no host and port", s, c)
		}
		host, port := hostport[:i], hostport[i+1:]
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 || strconv.FormatUint(n, 10) != port {
			t.Fatalf("canonicalOrigin(%q) = %q: port %q is not a number from 1 to 65535", s, c, port)
		}
		if host != strings.ToLower(host) {
			t.Fatalf("canonicalOrigin(%q) = %q: host not in lower case", s, c)
		}

		u, err := url.Parse(s)
		if err != nil || u.User != nil || u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
			t.Fatalf("canonicalOrigin accepted %q, which net/url reads as %#v, %v", s, u, err)
		}
		wantPort := u.Port()
		if wantPort == "" {
			wantPort = map[string]string{"http": "80", "ws": "80", "https": "443", "wss": "443"}[u.Scheme]
		}
		if u.Scheme != scheme || wantPort != port || !sameHost(u.Hostname(), strings.Trim(host, "[]")) {
			t.Fatalf("canonicalOrigin(%q) = %q, net/url reads scheme %q host %q port %q", s, c, u.Scheme, u.Hostname(), u.Port())
		}
	})
}

// sameHost reports whether two host names, or two IP addresses however
// written, are equal.
func sameHost(a, b string) bool {
	if x, err := netip.ParseAddr(a); err == nil {
		y, err := netip.ParseAddr(b)
		return err == nil && x == y
	}
	return strings.EqualFold(a, b)
}

func isSpace(r rune) bool { return strings.ContainsRune(" \t\r\n\f\v\u0085\u00a0", r) }

// FuzzParseForwarded checks the Forwarded header parser (RFC 7239) on any
// header values, one per line of the input: it never panics; the values
// before the last parse to a prefix of what all of them parse to (an
// element that does not parse ends the list, never reorders it); and the
// elements it returns, written back as a header, parse to themselves. Each
// for= value goes through parseHop too.
func FuzzParseForwarded(f *testing.F) {
	for _, s := range []string{
		"for=192.0.2.60;proto=http;by=203.0.113.43",
		`For="[2001:db8:cafe::17]:4711"`,
		"for=192.0.2.43, for=198.51.100.17",
		"for=192.0.2.43\nfor=198.51.100.17;host=a.example",
		`for="a\"b\\c"`,
		"for=192.0.2.43, garbage, for=198.51.100.17",
		`for="unterminated`,
		`for="trailing\`,
		"for=;proto=;host=",
		"  for=unknown ;\tproto=https , host=x",
		"=x",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		values := strings.Split(in, "\n")
		got := parseForwarded(values)
		if head := parseForwarded(values[:len(values)-1]); len(head) > len(got) || !slices.Equal(head, got[:len(head)]) {
			t.Fatalf("parseForwarded(%q) = %q, but its first values alone give %q", values, got, head)
		}
		var b strings.Builder
		for i, e := range got {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("for=" + quoteForwarded(e.addr) + ";proto=" + quoteForwarded(e.proto) + ";host=" + quoteForwarded(e.host))
			checkHop(t, e.addr)
		}
		if len(got) == 0 {
			return
		}
		if again := parseForwarded([]string{b.String()}); !slices.Equal(again, got) {
			t.Fatalf("parseForwarded(%q) = %q, but written back as %q they parse to %q", values, got, b.String(), again)
		}
	})
}

// quoteForwarded writes v as an RFC 7230 quoted string.
func quoteForwarded(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}

// FuzzParseHop checks the parser of proxy hops: whatever the input, it
// returns the zero Addr or a valid address that is not IPv4-mapped and
// has no zone, which it parses again to itself; an address netip reads
// without brackets or port it returns unchanged, only unmapped and
// without its zone.
func FuzzParseHop(f *testing.F) {
	for _, s := range []string{
		"192.0.2.1", "192.0.2.1:4711", "2001:db8::1", "[2001:db8::1]:4711", "[::ffff:198.51.100.7]:5555",
		"::ffff:192.0.2.1", "fe80::1%eth0", "[fe80::1%eth0]:80", "[192.0.2.1]", "unknown", "_hidden", "[]", "[::1",
		"1.2.3.4:99999", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a := checkHop(t, s)
		if want, err := netip.ParseAddr(s); err == nil && a != want.Unmap().WithZone("") {
			t.Fatalf("parseHop(%q) = %v, want %v", s, a, want.Unmap().WithZone(""))
		}
	})
}

// checkHop checks parseHop(s) and returns it.
func checkHop(t *testing.T, s string) netip.Addr {
	t.Helper()
	a := parseHop(s)
	if a == (netip.Addr{}) {
		return a
	}
	if !a.IsValid() || a.Is4In6() || a.Zone() != "" {
		t.Fatalf("parseHop(%q) = %#v: not a valid unmapped address without zone", s, a)
	}
	if again := parseHop(a.String()); again != a {
		t.Fatalf("parseHop(%q) = %v, which parses again to %v", s, a, again)
	}
	return a
}
