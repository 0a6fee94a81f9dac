package tcprelay

import (
	"net"
	"net/netip"
	"strconv"
	"testing"

	"github.com/seed-544bbf9f/comet/internal/hostport"
)

// FuzzParseTarget checks that a target the parser accepts is within its
// bounds and reads the same once written back in canonical form.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"redis:6379", "Irc.Example.ORG:6667", "10.0.0.1:1", "[2001:db8::1]:65535",
		"[::ffff:127.0.0.1]:80", "127.1:80", "[fe80::1%eth0]:80", "a..b:80", "x:080", "x:65536"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := hostport.Parse(s)
		if err != nil {
			return
		}
		if len(s) > hostport.MaxLen || tg.Port == 0 || tg.IsIP() == (tg.Name != "") {
			t.Fatalf("Parse(%q) = %+v", s, tg)
		}
		if tg.IsIP() && tg.IP.Zone() != "" {
			t.Fatalf("Parse(%q) kept a zone", s)
		}
		again, err := hostport.Parse(net.JoinHostPort(tg.Host(), strconv.Itoa(int(tg.Port))))
		if err != nil || again != tg {
			t.Fatalf("Parse(%q) = %+v, whose canonical form reads %+v, %v", s, tg, again, err)
		}
	})
}

// FuzzPolicy checks the allowlist parser (an entry it accepts reads the
// same from its canonical form) and the policy's promises, for any entry,
// target and resolved address: a special-purpose address is admitted only
// by a network entry within a special network, a bad port only by an
// entry naming it alone, and a name entry admits only its own name.
func FuzzPolicy(f *testing.F) {
	f.Add("redis.internal:6379", "redis.internal:6379", []byte{127, 0, 0, 1})
	f.Add("0.0.0.0/0:1-65535", "10.0.0.1:25", []byte{10, 0, 0, 1})
	f.Add("[::/0]:1-65535", "[64:ff9b::7f00:1]:80", []byte{0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 127, 0, 0, 1})
	f.Add("127.0.0.1:6380", "[::ffff:127.0.0.1]:6380", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1})
	f.Add("[64:ff9b::/96]:80", "a.example:80", []byte{169, 254, 169, 254})
	f.Add("irc.example:6697", "irc.example:6697", []byte{203, 0, 113, 9})
	f.Fuzz(func(t *testing.T, entrySrc, targetSrc string, raw []byte) {
		e, err := parseEntry(entrySrc)
		if err != nil {
			return
		}
		again, err := parseEntry(e.String())
		if err != nil || again != e {
			t.Fatalf("parseEntry(%q) = %s, which reads %+v, %v", entrySrc, e.String(), again, err)
		}
		tg, err := hostport.Parse(targetSrc)
		if err != nil {
			return
		}
		var addr netip.Addr
		switch len(raw) {
		case 4:
			addr = netip.AddrFrom4([4]byte(raw))
		case 16:
			addr = netip.AddrFrom16([16]byte(raw))
		default:
			return
		}
		p := &policy{entries: []entry{e}}
		ok, _ := p.allows(tg, addr)
		if !ok {
			return
		}
		a := normalise(addr)
		switch {
		case e.name != "" && (e.name != tg.Name || e.lo != tg.Port):
			t.Fatalf("%s admits %s", e.String(), targetSrc)
		case e.name != "" && isSpecial(a):
			t.Fatalf("name entry %s admits the special address %s", e.String(), a)
		case e.name == "" && isSpecial(a) && !e.special:
			t.Fatalf("%s admits the special address %s", e.String(), a)
		case e.name == "" && !e.net.Contains(a):
			t.Fatalf("%s admits %s, outside it", e.String(), a)
		case badPorts[tg.Port] && !e.explicit(tg.Port):
			t.Fatalf("%s admits the bad port %d", e.String(), tg.Port)
		}
	})
}
