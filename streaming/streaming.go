package streaming

import (
	"net/http"
	"strings"
	"sync"

	"github.com/seed-544bbf9f/comet/internal/httpstream"
	"github.com/seed-544bbf9f/comet/transport"
)

// ContentType is the Content-Type of a streaming response.
const ContentType = "text/plain; charset=utf-8"

// preambleSize is the padding line that opens every response, newline
// included: browsers and proxies that hold back the first bytes of a
// response release the open frame behind it at once. (Internet Explorer's
// XHR reports no progress before 2 KiB, which is why SockJS sends the same
// prelude.)
const preambleSize = 2048 + 1

// spaces is enough for the longest padding line, the preamble or the pad.
var spaces = strings.Repeat(" ", max(preambleSize, transport.MaxPad))

// defaultPreamble is the preamble of a response whose pad is no longer,
// shared by every response.
var defaultPreamble = padding(nil, preambleSize)

// Options configures the adapter. Nil means defaults.
type Options struct {
	// RecycleBytes is the byte budget of one response, preamble and
	// padding included: the response ends after the write that passes it,
	// at a frame boundary, and the client attaches again. It bounds what
	// XMLHttpRequest.responseText holds. Default 128 KiB.
	RecycleBytes int
}

// Adapter serves XHR-streaming attachments.
type Adapter struct {
	budget int
}

// New returns an XHR-streaming adapter.
func New(opts *Options) *Adapter {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.RecycleBytes <= 0 {
		o.RecycleBytes = 128 << 10
	}
	return &Adapter{budget: o.RecycleBytes}
}

// Name returns transport.Streaming.
func (*Adapter) Name() string { return transport.Streaming }

// ServeAttach serves one stream until the attachment ends, its budget is
// spent, or it is superseded. On HTTP/1.1 it takes the connection over
// once the preamble is out, starts the attachment and returns (see
// httpstream.Response.TookOver).
func (ad *Adapter) ServeAttach(w http.ResponseWriter, r *http.Request, a transport.Attachment) {
	pad := int(a.Params().Pad) // at most transport.MaxPad
	preamble := defaultPreamble
	if pad > preambleSize {
		preamble = padding(nil, pad)
	}
	resp, err := httpstream.Start(w, r, a, httpstream.Config{
		ContentType:  ContentType,
		Stream:       true,
		Preamble:     preamble,
		WriteTimeout: a.Limits().WriteTimeout,
	})
	if err != nil {
		return // answered, or the client is gone
	}
	ds := &downstream{resp: resp, pad: pad, budget: ad.budget, written: len(preamble)}
	if resp.TookOver() {
		a.Start(ds, transport.Stream) // on error, Start has closed ds
		return
	}
	defer resp.Finish()
	a.Serve(ds, transport.Stream)
}

// downstream writes batches back to back, each frame already terminated
// by "\n", and counts what the response has carried.
type downstream struct {
	resp    *httpstream.Response
	pad     int // every flush is at least this long; 0: no padding
	budget  int
	written int
}

// padPool holds the buffers of batches padded up to the pad: a session
// keeps none between batches.
var padPool = sync.Pool{New: func() any { return new([]byte) }}

// WritesPromptly implements transport.PromptDownstream.
func (d *downstream) WritesPromptly() bool { return d.resp.Prompt() }

// WriteBatch writes b, padded up to the pad if asked, as one flush. It
// returns transport.ErrDone after the write that passes the budget, so
// that the response ends after a flush and at a frame boundary.
func (d *downstream) WriteBatch(b *transport.Batch) error {
	p := b.Bytes
	if len(p) < d.pad {
		bp := padPool.Get().(*[]byte)
		*bp = padding(append((*bp)[:0], p...), d.pad-len(p))
		defer padPool.Put(bp) // at most transport.MaxPad long
		p = *bp
	}
	if err := d.resp.Write(p); err != nil {
		return err
	}
	d.written += len(p)
	if d.written > d.budget {
		return transport.ErrDone
	}
	return nil
}

func (d *downstream) Close() error { return d.resp.Close() }

// padding appends a padding line of n bytes, newline included: spaces a
// reader skips (PROTOCOL.md section 4, "Batches").
func padding(dst []byte, n int) []byte {
	if n <= 0 {
		return dst
	}
	dst = append(dst, spaces[:n-1]...)
	return append(dst, '\n')
}
