package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// The recipes of docs/proxies.md are run as written: each test config is
// the doc's block with only its listening address and its upstream's
// changed, so a directive edited in the doc is a directive tested.

// recipesDoc is docs/proxies.md, from this module's folder.
const recipesDoc = "../docs/proxies.md"

// The addresses the recipes are written for, which the tests replace.
const (
	recipeUpstream = "127.0.0.1:8080" // the Go server, as in the quickstart
	recipeListen   = "80"
)

// proxyRecipe is one proxy of docs/proxies.md that the suite runs.
type proxyRecipe struct {
	name    string // of the program, and of the Debian package
	heading string // the doc's section
	fence   string // the info string of the section's config block
	version string // the flag that prints the version
	// rewritesHost: the recipe sends Comet the upstream's address as
	// Host, so a negotiate without TrustedProxies is refused.
	rewritesHost bool
	// config returns the files of a proxy listening on 127.0.0.1:port in
	// front of upstream, with block (the doc's) in them, and its command.
	config func(t *testing.T, bin, dir, block string, port int, upstream string) []string
}

var proxyRecipes = []proxyRecipe{
	{name: "nginx", heading: "## nginx", fence: "nginx", version: "-v", rewritesHost: true, config: nginxRecipe},
	{name: "haproxy", heading: "## HAProxy", fence: "haproxy", version: "-v", config: haproxyRecipe},
	{name: "apache2", heading: "## Apache", fence: "apache", version: "-v", rewritesHost: true, config: apacheRecipe},
}

// TestProxyRecipes puts each recipe of docs/proxies.md between Chromium
// and a Comet server that trusts the proxy's address: the page, loaded
// through the proxy, echoes on the automatic choice (which must be
// WebSocket) and forced onto SSE and long-polling; the Go client, on each
// transport alone, makes its session in its first attach through the
// proxy, which passes the answer's Comet-Negotiate header (no negotiate
// POST reaches the server), and echoes. Then a negotiate from
// another loopback address, with forged X-Forwarded-Host and
// X-Forwarded-For: with TrustedProxies, it is admitted and Comet names
// that address as the client's; without, a recipe that rewrites Host is refused with
// 403 origin_refused pointing to the doc, and one that keeps it is
// admitted with the proxy's address as the client's.
func TestProxyRecipes(t *testing.T) {
	doc, err := os.ReadFile(recipesDoc)
	if err != nil {
		t.Fatal(err)
	}
	browser := needBrowser(t)
	proxyNet := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	for _, rc := range proxyRecipes {
		t.Run(rc.name, func(t *testing.T) {
			block := docBlock(t, string(doc), rc.heading, rc.fence)
			bin := needProxy(t, rc.name)
			t.Logf("%s", version(bin, rc.version))
			start := func(t *testing.T, srv *server) *proxyProc {
				upstream := srv.srv.Listener.Addr().String()
				return startProxy(t, srv, rc.name, nil, func(dir string, port int) ([]string, error) {
					return rc.config(t, bin, dir, block, port, upstream), nil
				})
			}

			for _, tc := range []struct {
				name   string
				forced string // "" for the automatic choice
				want   string
			}{
				{"automatic", "", transport.WebSocket},
				{"forced sse", transport.SSE, transport.SSE},
				{"forced longpoll", transport.LongPoll, transport.LongPoll},
			} {
				t.Run("echo "+tc.name, func(t *testing.T) {
					srv := newServer(t, config{opts: session.Options{TrustedProxies: proxyNet, MinClientTimeout: 2 * time.Second}})
					px := start(t, srv)
					tb := newTab(t, browser)
					tb.open(srv.pageURL(px.url, px.url))
					// The automatic choice waits for its race to be decided,
					// which the early chain of polls may outlast.
					p := params{URL: px.url + "/comet", Settle: int(raceSettle.Milliseconds())}
					if tc.forced != "" {
						p = forced(px.url+"/comet", tc.forced)
					}
					var r result
					tb.run("echo", p, &r)
					if tc.forced == "" {
						wantSettled(t, r)
					}
					checkOn(t, srv, r, tc.want)
					checkClosed(t, "page", r.Close, 1000, "done")
					if len(r.Got) != len(r.Sent) || len(r.Sent) == 0 {
						t.Errorf("page: sent %d messages, got %d back", len(r.Sent), len(r.Got))
					}
				})
			}

			// The Go client with one transport negotiates in its first
			// attach, whose answer carries the session in a header: the
			// proxy must pass it (else the client negotiates apart, which
			// the count of negotiate POSTs would show).
			for _, name := range transport.Order() {
				t.Run("go client "+name, func(t *testing.T) {
					srv := newServer(t, config{opts: session.Options{TrustedProxies: proxyNet}})
					px := start(t, srv)
					goClientEcho(t, px.url+"/comet", name)
					if n := srv.negotiates.Load(); n != 0 {
						t.Errorf("%d negotiate POSTs through %s, want none: the first attach negotiates", n, rc.name)
					}
				})
			}

			for _, tc := range []struct {
				name    string
				trusted []netip.Prefix
			}{
				{"negotiate, trusted", proxyNet},
				{"negotiate, not trusted", nil},
			} {
				t.Run(tc.name, func(t *testing.T) {
					srv := newServer(t, config{opts: session.Options{TrustedProxies: tc.trusted}})
					px := start(t, srv)
					refused := tc.trusted == nil && rc.rewritesHost
					negotiateThrough(t, srv, px, refused, tc.trusted != nil)
				})
			}
		})
	}
}

// negotiateThrough sends a same-origin negotiate through px from
// 127.0.0.2, with forged forwarded headers, and checks that it is refused (origin_refused, naming the
// upstream's address as the host, and the doc) or admitted, with the
// client's address from X-Forwarded-For if forwarded, else the proxy's.
func negotiateThrough(t *testing.T, srv *server, px *proxyProc, refused, forwarded bool) {
	t.Helper()
	// Forged copies: the recipe must overwrite the host (else the Origin
	// check compares with evil.example) and append to the hops (Comet
	// reads them from the right).
	resp, body := negotiateVia(t, px, px.url, http.Header{
		"X-Forwarded-Host": {"evil.example"}, "X-Forwarded-For": {"203.0.113.66"}})
	if refused {
		e := originRefusal(t, resp, body)
		if upstream := srv.srv.Listener.Addr().String(); e.Origin != px.url || e.Host != upstream {
			t.Errorf("refusal names origin %q host %q, want %q and the upstream %q", e.Origin, e.Host, px.url, upstream)
		}
		if !strings.Contains(e.Message, "docs/proxies.md") || !strings.Contains(e.Message, "TrustedProxies") {
			t.Errorf("refusal message %q points neither to docs/proxies.md nor to TrustedProxies", e.Message)
		}
		if strings.Contains(e.Message, "scheme") {
			t.Errorf("refusal message %q blames the scheme; the page and the request are both http", e.Message)
		}
		return
	}
	want := "127.0.0.1" // the proxy's
	if forwarded {
		want = forwardedClientIP
	}
	if got := clientAddrOf(t, srv, resp, body); got != want {
		t.Errorf("ClientAddr = %s, want %s", got, want)
	}
}

// docBlock returns the first fenced block with info string fence in the
// section of doc under heading (up to the next heading of its level).
func docBlock(t *testing.T, doc, heading, fence string) string {
	t.Helper()
	_, section, ok := strings.Cut(doc, "\n"+heading+"\n")
	if !ok {
		t.Fatalf("%s: no section %q", recipesDoc, heading)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, block, ok := strings.Cut(section, "\n```"+fence+"\n")
	if !ok {
		t.Fatalf("%s, %s: no ```%s block", recipesDoc, heading, fence)
	}
	block, _, ok = strings.Cut(block, "\n```\n")
	if !ok {
		t.Fatalf("%s, %s: the ```%s block does not end", recipesDoc, heading, fence)
	}
	return block + "\n"
}

// replaceOnce replaces old in s by new, failing the test unless s holds
// old exactly once: the doc's block must name each address the test
// changes, and nowhere else.
func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	if n := strings.Count(s, old); n != 1 {
		t.Fatalf("the recipe holds %q %d times, want once:\n%s", old, n, s)
	}
	return strings.Replace(s, old, new, 1)
}

// writeConfig writes text into dir/name and returns its path.
func writeConfig(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// nginxRecipe puts the doc's block (server and map, of the http block)
// into nginxHTTP's frame.
func nginxRecipe(t *testing.T, bin, dir, block string, port int, upstream string) []string {
	block = replaceOnce(t, block, "listen "+recipeListen+";", fmt.Sprintf("listen 127.0.0.1:%d;", port))
	block = replaceOnce(t, block, recipeUpstream, upstream)
	conf := writeConfig(t, dir, "nginx.conf", nginxHTTP(dir, "# docs/proxies.md's recipe", "\n"+block))
	return []string{bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", conf, "-g", "daemon off;"}
}

// haproxyRecipe puts a global section before the doc's sections.
func haproxyRecipe(t *testing.T, bin, dir, block string, port int, upstream string) []string {
	block = replaceOnce(t, block, "bind :"+recipeListen+"\n", fmt.Sprintf("bind 127.0.0.1:%d\n", port))
	block = replaceOnce(t, block, recipeUpstream, upstream)
	conf := writeConfig(t, dir, "haproxy.cfg", "# docs/proxies.md's recipe\nglobal\n    maxconn 512\n\n"+block)
	// -db: foreground, no daemon.
	return []string{bin, "-db", "-f", conf}
}

// apacheModules are the modules the Apache recipe needs (those a2enmod
// proxy proxy_http headers enables), with an MPM and the authn/authz
// cores, without which Apache answers every request 500.
var apacheModules = []string{"mpm_event", "authn_core", "authz_core", "proxy", "proxy_http", "headers"}

// apacheModuleDir is where Debian's apache2 keeps its modules:
// lib/apache2/modules beside the sbin that holds the program.
func apacheModuleDir(bin string) string {
	return filepath.Join(filepath.Dir(filepath.Dir(bin)), "lib", "apache2", "modules")
}

// apacheRecipe puts the doc's virtual host into a config of its own,
// which reads no system config: every path is in dir. apache2 -X runs
// one process in the foreground, so stopping its PID stops all of it. As
// root, Apache refuses to serve until it has changed user: User and
// Group name nobody by number, which every system has (as anyone else,
// they are ignored).
func apacheRecipe(t *testing.T, bin, dir, block string, port int, upstream string) []string {
	block = replaceOnce(t, block, "<VirtualHost *:"+recipeListen+">", fmt.Sprintf("<VirtualHost 127.0.0.1:%d>", port))
	block = strings.ReplaceAll(block, recipeUpstream, upstream) // ProxyPass and ProxyPassReverse
	var b strings.Builder
	fmt.Fprintf(&b, `# docs/proxies.md's recipe
ServerRoot %[1]q
ServerName 127.0.0.1
PidFile %[1]s/httpd.pid
ErrorLog %[1]s/error.log
LogLevel info
DefaultRuntimeDir %[1]s
Mutex file:%[1]s default
Listen 127.0.0.1:%[2]d
User #65534
Group #65534
`, dir, port)
	for _, m := range apacheModules {
		fmt.Fprintf(&b, "LoadModule %s_module %s\n", m, filepath.Join(apacheModuleDir(bin), "mod_"+m+".so"))
	}
	b.WriteString("\n" + block)
	conf := writeConfig(t, dir, "httpd.conf", b.String())
	return []string{bin, "-X", "-f", conf}
}

// goClientEcho dials url with the Go client on transport name alone,
// echoes a few messages and closes.
func goClientEcho(t *testing.T, url, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, &client.Options{Transports: []string{name}})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.CloseNow()
	if got := c.Transport(); got != name {
		t.Fatalf("Transport() = %q, want %q", got, name)
	}
	for i := range 3 {
		m := fmt.Sprintf("through the proxy %d", i)
		if err := c.Send(ctx, transport.Text, []byte(m)); err != nil {
			t.Fatalf("Send: %v", err)
		}
		if _, p, err := c.Recv(ctx); err != nil || string(p) != m {
			t.Fatalf("Recv = %q, %v; want %q", p, err, m)
		}
	}
	if err := c.Close(transport.CloseNormal, "done"); err != nil {
		t.Fatalf("Close: %v", err)
	}
}
