package tcprelay

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/seed-544bbf9f/comet/internal/hostport"
)

func TestParseEntry(t *testing.T) {
	t.Parallel()
	good := map[string]string{ // entry: its canonical form
		"redis.internal:6379":       "redis.internal:6379",
		"Redis.Internal:6379":       "redis.internal:6379",
		"10.0.0.7:6379":             "10.0.0.7/32:6379",
		"10.0.0.0/8:6379":           "10.0.0.0/8:6379",
		"10.0.0.0/8:8000-8099":      "10.0.0.0/8:8000-8099",
		"0.0.0.0/0:443":             "0.0.0.0/0:443",
		"[2001:db8::7]:6379":        "[2001:db8::7/128]:6379",
		"[2001:db8::/32]:443-444":   "[2001:db8::/32]:443-444",
		"[::ffff:10.0.0.7]:6379":    "10.0.0.7/32:6379",
		"[64:ff9b::a00:0/104]:6379": "10.0.0.0/8:6379",
		"127.0.0.1:1-65535":         "127.0.0.1/32:1-65535",
	}
	for in, want := range good {
		e, err := parseEntry(in)
		if err != nil || e.String() != want {
			t.Errorf("parseEntry(%q) = %v, %v; want %s", in, e.String(), err, want)
		}
	}
	for _, in := range []string{"", "redis", "redis:", "redis:0", "redis:65536", "redis:1-2", "10.0.0.0/8", "10.0.0.1/8:80",
		"10.0.0.0/33:80", "[10.0.0.0/8]:80", "2001:db8::/32:443", "[2001:db8::/32:443", "10.0.0.0/8:90-80",
		"10.0.0.0/8:080", "10.0.0.0/8:+80", "[fe80::1%eth0]:80", "*.example:80", "127.1:80", "a b:80"} {
		if e, err := parseEntry(in); err == nil {
			t.Errorf("parseEntry(%q) = %s, want an error", in, e.String())
		}
	}
}

func TestPolicy(t *testing.T) {
	t.Parallel()
	p, errs := newPolicy([]string{"redis.internal:6379", "irc.example:6697", "127.0.0.1:6380", "10.0.0.0/8:6379",
		"198.51.100.0/24:1-65535", "198.51.100.9:25", "[2001:db8::/32]:443", "169.254.169.254:80", "bogus"})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "bogus") {
		t.Errorf("errors %v, want one for bogus", errs)
	}
	tests := []struct {
		target, addr string
		ok           bool
	}{
		{"redis.internal:6379", "203.0.113.5", true},
		{"redis.internal:6379", "127.0.0.1", false},
		{"redis.internal:6379", "10.1.1.1", true}, // admitted by 10.0.0.0/8, which lies within 10/8
		{"redis.internal:6380", "203.0.113.5", false},
		{"irc.example:6697", "203.0.113.6", true}, // a bad port, named alone
		{"127.0.0.1:6380", "127.0.0.1", true},
		{"[::ffff:127.0.0.1]:6380", "::ffff:127.0.0.1", true},
		{"[64:ff9b::7f00:1]:6380", "64:ff9b::7f00:1", true},
		{"127.0.0.2:6380", "127.0.0.2", false},
		{"198.51.100.7:80", "198.51.100.7", true},
		{"198.51.100.7:25", "198.51.100.7", false},
		{"198.51.100.9:25", "198.51.100.9", true},
		{"198.51.100.7:6667", "198.51.100.7", false},
		{"[2001:db8::1]:443", "2001:db8::1", true},
		{"169.254.169.254:80", "169.254.169.254", true}, // listed on purpose
		{"[fe80::1]:443", "fe80::1", false},
	}
	for _, tc := range tests {
		target, err := hostport.Parse(tc.target)
		if err != nil {
			t.Fatal(err)
		}
		if ok, why := p.allows(target, netip.MustParseAddr(tc.addr)); ok != tc.ok {
			t.Errorf("allows(%s, %s) = %v (%s), want %v", tc.target, tc.addr, ok, why, tc.ok)
		}
	}
	for target, want := range map[string]bool{"redis.internal:6379": true, "other.internal:6379": true,
		"other.internal:6380": true, "irc.example:6697": true, "other.internal:6667": false, "other.internal:8080": true} {
		tgt, _ := hostport.Parse(target)
		if got := p.mayResolve(tgt); got != want {
			t.Errorf("mayResolve(%s) = %v, want %v", target, got, want)
		}
	}
}

func TestClientKey(t *testing.T) {
	t.Parallel()
	same := [][2]string{{"192.0.2.1", "::ffff:192.0.2.1"}, {"2001:db8:1:2::1", "2001:db8:1:2:ffff::9"}}
	for _, p := range same {
		if a, b := clientKey(netip.MustParseAddr(p[0])), clientKey(netip.MustParseAddr(p[1])); a != b {
			t.Errorf("clientKey(%s) = %s, clientKey(%s) = %s; want one client", p[0], a, p[1], b)
		}
	}
	if clientKey(netip.MustParseAddr("192.0.2.1")) == clientKey(netip.MustParseAddr("192.0.2.2")) ||
		clientKey(netip.MustParseAddr("2001:db8:1:2::1")) == clientKey(netip.MustParseAddr("2001:db8:1:3::1")) {
		t.Error("two clients share a key")
	}
}
