package session

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"testing"
)

func TestClientOf(t *testing.T) {
	t.Parallel()
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		remote  string
		tls     bool
		hdr     http.Header
		want    client // addr as a string in wantAddr
		addr    string
	}{
		{name: "direct", remote: "192.0.2.1:1234", addr: "192.0.2.1",
			want: client{scheme: "http", host: "app.example"}},
		{name: "direct TLS", remote: "192.0.2.1:1234", tls: true, addr: "192.0.2.1",
			want: client{scheme: "https", host: "app.example"}},
		{name: "headers from an untrusted peer are ignored", trusted: proxies, remote: "192.0.2.1:1234",
			hdr:  http.Header{"X-Forwarded-For": {"198.51.100.7"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"evil.example"}},
			addr: "192.0.2.1", want: client{scheme: "http", host: "app.example"}},
		{name: "one trusted proxy", trusted: proxies, remote: "10.0.0.2:1234",
			hdr:  http.Header{"X-Forwarded-For": {"198.51.100.7"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"public.example"}},
			addr: "198.51.100.7", want: client{scheme: "https", host: "public.example"}},
		{name: "a forged hop left of the real one", trusted: proxies, remote: "10.0.0.2:1234",
			hdr:  http.Header{"X-Forwarded-For": {"203.0.113.66, 198.51.100.7"}},
			addr: "198.51.100.7", want: client{scheme: "http", host: "app.example"}},
		{name: "two trusted proxies, repeated header", trusted: proxies, remote: "10.0.0.2:1234",
			hdr:  http.Header{"X-Forwarded-For": {"203.0.113.66", "198.51.100.7, 10.1.1.1"}},
			addr: "198.51.100.7", want: client{scheme: "http", host: "app.example"}},
		{name: "every hop trusted", trusted: proxies, remote: "10.0.0.2:1234",
			hdr:  http.Header{"X-Forwarded-For": {"10.9.9.9, 10.1.1.1"}},
			addr: "10.9.9.9", want: client{scheme: "http", host: "app.example"}},
		{name: "garbage stops the walk", trusted: proxies, remote: "10.0.0.2:1234",
			hdr:  http.Header{"X-Forwarded-For": {"198.51.100.7, unknown, 10.1.1.1"}},
			addr: "10.1.1.1", want: client{scheme: "http", host: "app.example"}},
		{name: "IPv6 with port, mapped IPv4", trusted: proxies, remote: "[fd00::2]:1234",
			hdr:  http.Header{"X-Forwarded-For": {"[::ffff:198.51.100.7]:5555"}},
			addr: "198.51.100.7", want: client{scheme: "http", host: "app.example"}},
		{name: "Forwarded", trusted: proxies, remote: "10.0.0.2:1234",
			hdr:  http.Header{"Forwarded": {`for="[2001:db8::7]:4711";proto=https;host=public.example, for=10.1.1.1`}},
			addr: "2001:db8::7", want: client{scheme: "https", host: "public.example"}},
		{name: "X-Forwarded-For wins over Forwarded", trusted: proxies, remote: "10.0.0.2:1234",
			hdr:  http.Header{"X-Forwarded-For": {"198.51.100.7"}, "Forwarded": {"for=203.0.113.66"}},
			addr: "198.51.100.7", want: client{scheme: "http", host: "app.example"}},
		{name: "deprecated TrustForwardedHost: host and scheme, not the address", remote: "192.0.2.1:1234",
			hdr:  http.Header{"X-Forwarded-For": {"198.51.100.7"}, "X-Forwarded-Proto": {"HTTPS"}, "X-Forwarded-Host": {"public.example"}},
			addr: "192.0.2.1", want: client{scheme: "https", host: "public.example"}},
		{name: "not an IP", remote: "@", want: client{scheme: "http", host: "app.example"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newTestHandler(t, &Options{TrustedProxies: tc.trusted,
				TrustForwardedHost: tc.name == "deprecated TrustForwardedHost: host and scheme, not the address"})
			r := httptest.NewRequest(http.MethodGet, "http://app.example/comet/negotiate", nil)
			r.RemoteAddr = tc.remote
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			for k, v := range tc.hdr {
				r.Header[k] = v
			}
			got := h.clientOf(r)
			want := tc.want
			if tc.addr != "" {
				want.addr = netip.MustParseAddr(tc.addr)
			}
			if got != want {
				t.Errorf("clientOf = %+v, want %+v", got, want)
			}
		})
	}
}

func TestParseForwarded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   []string
		want []forwardedElement
	}{
		{[]string{"for=192.0.2.60;proto=http;by=203.0.113.43"}, []forwardedElement{{addr: "192.0.2.60", proto: "http"}}},
		{[]string{`For="[2001:db8:cafe::17]:4711"`}, []forwardedElement{{addr: "[2001:db8:cafe::17]:4711"}}},
		{[]string{"for=192.0.2.43, for=198.51.100.17"}, []forwardedElement{{addr: "192.0.2.43"}, {addr: "198.51.100.17"}}},
		{[]string{"for=192.0.2.43", "for=198.51.100.17;host=a.example"},
			[]forwardedElement{{addr: "192.0.2.43"}, {addr: "198.51.100.17", host: "a.example"}}},
		{[]string{`for="a\"b"`}, []forwardedElement{{addr: `a"b`}}},
		{[]string{"for=192.0.2.43, garbage, for=198.51.100.17"}, []forwardedElement{{addr: "192.0.2.43"}}},
		{[]string{`for="unterminated`}, nil},
		{[]string{""}, nil},
	}
	for _, tc := range tests {
		if got := parseForwarded(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseForwarded(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestCanonicalOrigin(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"http://app.example", "http://app.example:80"},
		{"HTTPS://App.Example", "https://app.example:443"},
		{"https://app.example:443", "https://app.example:443"},
		{"http://app.example:8080", "http://app.example:8080"},
		{"http://192.0.2.1:8080", "http://192.0.2.1:8080"},
		{"http://[2001:DB8::1]:8080", "http://[2001:db8::1]:8080"},
		{"http://[2001:db8::1]", "http://[2001:db8::1]:80"},
		{"null", ""},
		{"http://evil@app.example", ""},
		{"http://app.example/", ""},
		{"http://app.example/path", ""},
		{"http://app.example?q", ""},
		{"http://app.example#f", ""},
		{"http://app.example:", ""},
		{"http://app.example:0", ""},
		{"http://app.example:080", ""},
		{"http://app.example:65536", ""},
		{"http://app%2eexample", ""},
		{"http://", ""},
		{"app.example", ""},
		{"chrome-extension://abc", ""},
		{"http://[fe80::1%25eth0]", ""},
		{"http://[2001:db8::1", ""},
		{"http://[::1]x", ""},
		{"1http://app.example", ""},
	}
	for _, tc := range tests {
		got, ok := canonicalOrigin(tc.in)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("canonicalOrigin(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
}
