package js_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/seed-544bbf9f/comet/internal/leakcheck"
	"github.com/seed-544bbf9f/comet/js"
	"github.com/seed-544bbf9f/comet/session"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// TestFile checks that each embedded file is the one in dist/ and that its
// ETag is strong and follows its bytes.
func TestFile(t *testing.T) {
	want := []string{"comet.js", "comet.min.js", "comet.d.ts", "comet-tcp.js", "comet-tcp.min.js", "comet-tcp.d.ts",
		"comet-dom.js", "comet-dom.min.js", "comet-topics.js", "comet-topics.min.js", "comet-share.js", "comet-share.min.js"}
	if got := js.Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %q, want %q", got, want)
	}
	js.Names()[0] = "changed"
	if js.Names()[0] != "comet.js" {
		t.Fatal("Names shares its slice with the caller")
	}
	for _, name := range want {
		t.Run(name, func(t *testing.T) {
			data, etag, ok := js.File(name)
			if !ok {
				t.Fatal("not embedded")
			}
			disk, err := os.ReadFile("dist/" + name)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(data, disk) {
				t.Fatal("embedded bytes differ from dist/")
			}
			if !strings.Contains(string(data), "Comet") {
				t.Fatalf("%s does not mention Comet: %.80q", name, data)
			}
			sum := sha256.Sum256(data)
			want := `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
			if etag != want {
				t.Fatalf("ETag %s, want %s", etag, want)
			}
		})
	}
	if _, _, ok := js.File("comet.mjs"); ok {
		t.Fatal("comet.mjs is embedded; only the files a page or an editor loads are")
	}
}

// TestServe runs the shim's routes through a session.Handler, as a page
// reaches them, and through Handler alone.
func TestServe(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/comet/", session.NewHandler(&session.Options{Prefix: "/comet"}))
	mux.Handle("/static/", js.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	do := func(t *testing.T, method, path string, header http.Header) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}

	for _, tc := range []struct{ path, name, ctype string }{
		{"/comet/comet.js", "comet.js", "application/javascript; charset=utf-8"},
		{"/comet/comet.min.js", "comet.min.js", "application/javascript; charset=utf-8"},
		{"/comet/comet.d.ts", "comet.d.ts", "text/plain; charset=utf-8"},
		{"/static/comet.js", "comet.js", "application/javascript; charset=utf-8"},
		{"/static/comet.d.ts", "comet.d.ts", "text/plain; charset=utf-8"},
		{"/comet/comet-tcp.js", "comet-tcp.js", "application/javascript; charset=utf-8"},
		{"/comet/comet-tcp.min.js", "comet-tcp.min.js", "application/javascript; charset=utf-8"},
		{"/comet/comet-tcp.d.ts", "comet-tcp.d.ts", "text/plain; charset=utf-8"},
		{"/static/comet-tcp.min.js", "comet-tcp.min.js", "application/javascript; charset=utf-8"},
		{"/comet/comet-dom.js", "comet-dom.js", "application/javascript; charset=utf-8"},
		{"/comet/comet-dom.min.js", "comet-dom.min.js", "application/javascript; charset=utf-8"},
		{"/comet/comet-topics.js", "comet-topics.js", "application/javascript; charset=utf-8"},
		{"/comet/comet-topics.min.js", "comet-topics.min.js", "application/javascript; charset=utf-8"},
		{"/comet/comet-share.js", "comet-share.js", "application/javascript; charset=utf-8"},
		{"/comet/comet-share.min.js", "comet-share.min.js", "application/javascript; charset=utf-8"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			data, etag, _ := js.File(tc.name)
			// A cross-origin page may load the script: no Origin check.
			resp, body := do(t, "GET", tc.path, http.Header{"Origin": {"http://elsewhere.example"}})
			if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
				t.Fatalf("GET: %d, %d bytes, want 200 and the %d bytes of %s", resp.StatusCode, len(body), len(data), tc.name)
			}
			for k, want := range map[string]string{
				"Content-Type":           tc.ctype,
				"ETag":                   etag,
				"Cache-Control":          js.CacheControl,
				"X-Content-Type-Options": "nosniff",
			} {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}

			for _, inm := range []string{etag, `"other", ` + etag, "*"} {
				resp, body = do(t, "GET", tc.path, http.Header{"If-None-Match": {inm}})
				if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
					t.Errorf("If-None-Match %s: %d with %d bytes, want 304 and none", inm, resp.StatusCode, len(body))
				}
				if got := resp.Header.Get("ETag"); got != etag {
					t.Errorf("304 ETag %q, want %q", got, etag)
				}
			}
			resp, body = do(t, "GET", tc.path, http.Header{"If-None-Match": {`"stale"`}})
			if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
				t.Errorf("stale If-None-Match: %d, %d bytes, want 200 and the file", resp.StatusCode, len(body))
			}

			resp, body = do(t, "HEAD", tc.path, nil)
			if resp.StatusCode != http.StatusOK || len(body) != 0 || resp.Header.Get("ETag") != etag {
				t.Errorf("HEAD: %d, %d bytes, ETag %q", resp.StatusCode, len(body), resp.Header.Get("ETag"))
			}
			resp, _ = do(t, "POST", tc.path, nil)
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("POST: %d, want 405", resp.StatusCode)
			}
		})
	}

	// The handler serves the shim's names only; other names under its
	// prefix are still transports (and this one is not offered).
	resp, body := do(t, "GET", "/comet/comet.mjs?v=1", nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "transport_disabled") {
		t.Errorf("/comet/comet.mjs: %d %s, want 404 transport_disabled", resp.StatusCode, body)
	}
	resp, _ = do(t, "GET", "/static/other.js", nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/static/other.js: %d, want 404", resp.StatusCode)
	}
}
