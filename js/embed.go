// Package js embeds the built Comet browser shim (dist/comet.js,
// dist/comet.min.js and dist/comet.d.ts) and the TCP relay's helper beside
// it (dist/comet-tcp.js, dist/comet-tcp.min.js and dist/comet-tcp.d.ts),
// comet-dom.js (dist/comet-dom.js, dist/comet-dom.min.js) and
// comet-topics.js (dist/comet-topics.js, dist/comet-topics.min.js) and
// comet-share.js (dist/comet-share.js, dist/comet-share.min.js), so that
// a Go server can serve them with no npm and no files on disk.
// session.Handler serves all twelve under its prefix through Handler; an
// application that mounts them elsewhere can use Handler or File itself.
//
// Every value here is computed once, at init, and never changes: Handler
// and File may be used from any goroutine.
package js

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"net/http"
	"path"
	"time"
)

//go:embed dist/comet.js dist/comet.min.js dist/comet.d.ts
//go:embed dist/comet-tcp.js dist/comet-tcp.min.js dist/comet-tcp.d.ts
//go:embed dist/comet-dom.js dist/comet-dom.min.js
//go:embed dist/comet-topics.js dist/comet-topics.min.js
//go:embed dist/comet-share.js dist/comet-share.min.js
var dist embed.FS

// names are the files this package serves, by the name Handler matches:
// the shim, then the TCP relay's helper, each readable, minified and its
// TypeScript declarations, then comet-dom.js (the shim's exact DOM and
// WebSocket edges, declared by comet.d.ts), readable and minified, then
// comet-topics.js (topic positions, PROTOCOL.md section 15, also declared
// by comet.d.ts), readable and minified, then comet-share.js (one
// connection for a page's tabs, PROTOCOL.md section 16, its option
// declared by comet.d.ts), readable and minified.
var names = [...]string{"comet.js", "comet.min.js", "comet.d.ts", "comet-tcp.js", "comet-tcp.min.js", "comet-tcp.d.ts",
	"comet-dom.js", "comet-dom.min.js", "comet-topics.js", "comet-topics.min.js", "comet-share.js", "comet-share.min.js"}

// Names returns the names of the files Handler serves, in a fresh slice:
// the shim's (comet.js, comet.min.js, comet.d.ts), then those of the TCP
// relay's helper (comet-tcp.js, comet-tcp.min.js, comet-tcp.d.ts), then
// comet-dom.js and comet-dom.min.js, then comet-topics.js and
// comet-topics.min.js, then comet-share.js and comet-share.min.js.
func Names() []string { return append([]string(nil), names[:]...) }

// asset is one embedded file with what serving it needs.
type asset struct {
	data  []byte
	etag  string
	ctype string
}

var assets = load()

func load() map[string]asset {
	m := make(map[string]asset, len(names))
	for _, name := range names {
		data, err := dist.ReadFile("dist/" + name)
		if err != nil {
			// go:embed fails the build when a file is missing, so this
			// cannot happen in a binary that compiled.
			panic("js: " + err.Error())
		}
		ctype := "application/javascript; charset=utf-8"
		if path.Ext(name) == ".ts" {
			// No media type is registered for TypeScript (RFC 9239
			// covers JavaScript only): application/typescript is
			// unregistered, and mime.types gives .ts to MPEG transport
			// streams (video/mp2t), which a browser downloads. A
			// declaration file is text to read, and holds non-ASCII
			// (the en dash of "3000–4999"): plain text in UTF-8 shows
			// it as it is, nosniff keeps it text, and an editor or
			// script that fetches it reads the bytes whatever the type.
			ctype = "text/plain; charset=utf-8"
		}
		sum := sha256.Sum256(data)
		m[name] = asset{
			data: data,
			// A strong ETag (RFC 9110 section 8.8.3): the hash of the
			// exact bytes, so it changes with every build that changes
			// them, and two servers of one build agree on it.
			etag:  `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`,
			ctype: ctype,
		}
	}
	return m
}

// File returns the embedded file name (one of Names) and its strong ETag,
// or ok false for any other name. The bytes are shared: do not modify them.
func File(name string) (data []byte, etag string, ok bool) {
	a, ok := assets[name]
	return a.data, a.etag, ok
}

// CacheControl is the Cache-Control header Handler sends. The shim's URL
// carries no version (pages load <prefix>/comet.js), and the shim and the
// server ship in one binary: after a deploy, a browser must not run an old
// shim against the new server for an hour of max-age. So every load
// revalidates, and an unchanged shim costs a 304 with no body.
const CacheControl = "no-cache"

// Handler returns a handler that serves the file named by the last element
// of the request path (one of Names) for GET and HEAD, with a strong ETag,
// 304 Not Modified for a matching If-None-Match, and CacheControl. Any
// other name is 404; any other method is 405.
func Handler() http.Handler {
	return http.HandlerFunc(serve)
}

func serve(w http.ResponseWriter, r *http.Request) {
	a, ok := assets[path.Base(r.URL.Path)]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("ETag", a.etag)
	h.Set("Cache-Control", CacheControl)
	h.Set("X-Content-Type-Options", "nosniff")
	// ServeContent answers If-None-Match (and If-Match, Range, HEAD) against
	// the ETag set above. No modification time: the ETag alone decides,
	// since a build's embed times are all zero.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.data))
}
