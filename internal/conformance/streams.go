package conformance

import (
	"bytes"
	"encoding/binary"
	"net/http"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/longpoll"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/sse"
	"github.com/seed-544bbf9f/comet/streaming"
	"github.com/seed-544bbf9f/comet/transport"
	"github.com/seed-544bbf9f/comet/websocket"
)

// testRecycling sends a 1 MiB burst down an XHR stream whose server
// recycles responses after 16 KiB: it arrives intact and in order across
// dozens of responses, each attached again with the client's ack, none of
// them a change of transport.
func (su suite) testRecycling(t *testing.T) {
	const (
		budget = 16 << 10
		size   = 4 << 10
		count  = (1 << 20) / size
	)
	message := func(i int) []byte {
		p := bytes.Repeat([]byte{byte(i)}, size)
		binary.BigEndian.PutUint32(p, uint32(i))
		return p
	}
	var log requestLog
	// Batches of at most 24 KiB (the least MaxBatch allows for 4 KiB
	// messages): each response ends after its first or second batch. On a
	// loaded machine under the race detector, a recycled response's open
	// frame has come later than the default least attach timeout (300 ms),
	// and the client rightly took the stream for buffered; a roomier one
	// keeps this test about recycling.
	e := su.newEnvWith(t, transport.Streaming, &session.Options{MaxMessage: size, MaxBatch: 6*size + 64, MinClientTimeout: time.Second, Serve: func(s *session.Session) {
		for i := range count {
			if s.Send(s.Context(), transport.Binary, message(i)) != nil {
				return
			}
		}
		s.Recv(s.Context())
	}}, EnvOptions{
		Wrap: log.wrap,
		Adapters: []transport.Adapter{websocket.New(nil), sse.New(),
			streaming.New(&streaming.Options{RecycleBytes: budget}), longpoll.New()},
	})
	ctx := testContext(t, 30*time.Second)
	start := time.Now()
	c := e.dial(ctx, nil)
	for i := range count {
		typ, p, err := c.Recv(ctx)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if typ != transport.Binary || !bytes.Equal(p, message(i)) {
			t.Fatalf("message %d: %v of %d bytes, not what was sent", i, typ, len(p))
		}
	}
	elapsed := time.Since(start)

	streams := 0
	for _, r := range log.all() {
		if r.method != http.MethodGet || r.path != e.prefix+"/streaming" {
			continue
		}
		streams++
		if why := r.query.Get("why"); why != "" {
			t.Errorf("a stream attached with why=%q: a recycle is no change of transport", why)
		}
	}
	// Base64 makes the burst 1.33 MiB on the wire, in batches of 24 KiB.
	if min := (1 << 20) / (6*size + 64 + budget); streams < min {
		t.Fatalf("%d streaming responses carried 1 MiB with a %d-byte budget, want at least %d", streams, budget, min)
	}
	if c.Transport() != transport.Streaming {
		t.Fatalf("transport %q, want streaming", c.Transport())
	}
	t.Logf("%d messages of %d bytes in %v across %d recycled responses", count, size, elapsed, streams)
}

// testSSEOverHTTP2 runs SSE over HTTP/2 with TLS: one TCP connection
// carries the stream and the POSTs side by side.
func (su suite) testSSEOverHTTP2(t *testing.T) {
	var log requestLog
	e := su.newEnvWith(t, transport.SSE, nil, EnvOptions{HTTP2: true, Wrap: log.wrap})
	ctx := testContext(t, 20*time.Second)
	c := e.dial(ctx, nil)
	msgs := [][]byte{[]byte("hello"), []byte("over h2 \u2028 😀"), {}}
	for _, m := range msgs {
		if err := c.Send(ctx, transport.Text, m); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range msgs {
		if _, p, err := c.Recv(ctx); err != nil || !bytes.Equal(p, m) {
			t.Fatalf("Recv = %q, %v; want %q", p, err, m)
		}
	}
	streams := 0
	for _, r := range log.all() {
		if r.proto != 2 {
			t.Errorf("%s %s over HTTP/%d, want 2", r.method, r.path, r.proto)
		}
		if r.path == e.prefix+"/sse" {
			streams++
		}
	}
	if streams == 0 {
		t.Fatal("no SSE request reached the server")
	}
}
