package sse

import (
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/seed-544bbf9f/comet/internal/httpstream"
	"github.com/seed-544bbf9f/comet/transport"
)

// ContentType is the Content-Type of an SSE response.
const ContentType = "text/event-stream; charset=utf-8"

// preamble opens every response (PROTOCOL.md section 5.1): a comment line
// of 2,048 spaces, for proxies and browsers that hold back the first bytes
// of a response, then a retry of a day, so that EventSource never
// reconnects on its own: its reconnect reuses the spent ticket and is
// refused, while the client attaches again itself with a fresh one.
var preamble = []byte(":" + strings.Repeat(" ", 2048) + "\n" + "retry: 86400000\n\n")

// maxKept is the largest event buffer returned to the pool; a larger one,
// grown for a burst, is left to the garbage collector.
const maxKept = 64 << 10

// Adapter serves SSE attachments.
type Adapter struct{}

// New returns an SSE adapter.
func New() *Adapter { return &Adapter{} }

// Name returns transport.SSE.
func (*Adapter) Name() string { return transport.SSE }

// ServeAttach serves one stream. On HTTP/1.1 it takes the connection
// over once the preamble is out, starts the attachment and returns (see
// httpstream.Response.TookOver); otherwise it serves the stream until the
// attachment ends.
func (*Adapter) ServeAttach(w http.ResponseWriter, r *http.Request, a transport.Attachment) {
	resp, err := httpstream.Start(w, r, a, httpstream.Config{
		ContentType:  ContentType,
		Stream:       true,
		Preamble:     preamble,
		WriteTimeout: a.Limits().WriteTimeout,
	})
	if err != nil {
		return // answered, or the client is gone
	}
	ds := &downstream{resp: resp}
	if resp.TookOver() {
		a.Start(ds, transport.Stream) // on error, Start has closed ds
		return
	}
	defer resp.Finish()
	a.Serve(ds, transport.Stream)
}

// downstream writes each batch as one run of events.
type downstream struct {
	resp *httpstream.Response
}

// bufPool holds the buffers events are encoded in: a session keeps none
// between batches.
var bufPool = sync.Pool{New: func() any { return new([]byte) }}

func (d *downstream) WriteBatch(b *transport.Batch) error {
	bp := bufPool.Get().(*[]byte)
	buf := appendEvents((*bp)[:0], b)
	err := d.resp.Write(buf)
	if cap(buf) <= maxKept {
		*bp = buf
		bufPool.Put(bp)
	}
	return err
}

// WritesPromptly implements transport.PromptDownstream.
func (d *downstream) WritesPromptly() bool { return d.resp.Prompt() }

func (d *downstream) Close() error { return d.resp.Close() }

// appendEvents appends one event per frame of b. Message and close frames
// carry their seq as the event id; other frames carry none, since an empty
// id line would reset the browser's last event id. A frame holds no raw
// CR, LF, U+2028 or U+2029 (PROTOCOL.md section 4), so it fits on one
// data line as it is.
func appendEvents(dst []byte, b *transport.Batch) []byte {
	for _, f := range b.Frames {
		if f.Type.Sequenced() {
			dst = append(dst, "id: "...)
			dst = strconv.AppendUint(dst, f.Seq, 10)
			dst = append(dst, '\n')
		}
		dst = append(dst, "data: "...)
		dst = append(dst, b.Bytes[f.Start:f.End]...)
		dst = append(dst, '\n', '\n')
	}
	return dst
}
