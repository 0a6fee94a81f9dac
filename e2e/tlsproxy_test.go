package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/session"
)

// TestTLSTerminatingProxy puts Comet behind an nginx that terminates TLS
// and proxies plain HTTP, as most deployments do: the page's Origin is
// https, the request Comet sees is http. With nginx in TrustedProxies,
// Comet takes the scheme from its X-Forwarded-Proto and the client's
// address from its X-Forwarded-For; without, it refuses the https page
// with a message saying what to configure, and a forged X-Forwarded-For
// changes nothing.
func TestTLSTerminatingProxy(t *testing.T) {
	bin := needProxy(t, "nginx")
	certDir := t.TempDir()
	tlsCfg := selfSigned(t, certDir)
	// The client dials from forwardedClientIP, nginx from 127.0.0.1.
	nginx := netip.MustParsePrefix("127.0.0.1/32")

	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		scheme  string // of the page's Origin
		want    int
		client  string // the ClientAddr of an admitted session
	}{
		{"trusted, https page", []netip.Prefix{nginx}, "https", http.StatusOK, forwardedClientIP},
		{"trusted, http page", []netip.Prefix{nginx}, "http", http.StatusForbidden, ""},
		{"not trusted, https page", nil, "https", http.StatusForbidden, ""},
		{"not trusted, http page", nil, "http", http.StatusOK, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, config{opts: session.Options{TrustedProxies: tc.trusted}})
			origin := srv.srv.Listener.Addr().String()
			p := startProxy(t, srv, "nginx", tlsCfg, func(dir string, port int) ([]string, error) {
				conf := filepath.Join(dir, "nginx.conf")
				if err := os.WriteFile(conf, []byte(tlsNginxConfig(dir, port, origin, certDir)), 0o644); err != nil {
					return nil, err
				}
				return []string{bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", conf, "-g", "daemon off;"}, nil
			})
			host := strings.TrimPrefix(p.url, "https://")
			// A forged hop: nginx appends the real one after it.
			resp, body := negotiateVia(t, p, tc.scheme+"://"+host, http.Header{"X-Forwarded-For": {"203.0.113.66"}})
			if tc.want != http.StatusOK {
				e := originRefusal(t, resp, body)
				if tc.trusted == nil && !strings.Contains(e.Message, "TrustedProxies") {
					t.Errorf("refusal message %q does not say to trust the TLS proxy", e.Message)
				}
				return
			}
			if got := clientAddrOf(t, srv, resp, body); got != tc.client {
				t.Errorf("ClientAddr = %s, want %s", got, tc.client)
			}
		})
	}
}

// tlsNginxConfig is an nginx that terminates TLS on 127.0.0.1:port and
// passes the scheme, the host and the client's address on, as the recipe
// in the docs says.
func tlsNginxConfig(dir string, port int, origin, certDir string) string {
	return nginxHTTP(dir, "# terminates TLS", fmt.Sprintf(`
	server {
		listen 127.0.0.1:%[1]d ssl;
		ssl_certificate %[3]s/cert.pem;
		ssl_certificate_key %[3]s/key.pem;
		location / {
			proxy_pass http://%[2]s;
			proxy_http_version 1.1;
			proxy_set_header Host $http_host;
			proxy_set_header X-Forwarded-Proto $scheme;
			proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
		}
	}`, port, origin, certDir))
}

// selfSigned writes a certificate for 127.0.0.1 and its key into dir
// (cert.pem, key.pem) and returns a client config that trusts it.
func selfSigned(t *testing.T, dir string) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "comet e2e"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("cert.pem", "CERTIFICATE", der)
	write("key.pem", "EC PRIVATE KEY", keyDER)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{RootCAs: pool}
}
