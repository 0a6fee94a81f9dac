package websocket

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet/internal/chatjson"
	"github.com/seed-544bbf9f/comet/internal/wirecount"
	"github.com/seed-544bbf9f/comet/internal/wswrite"
	"github.com/seed-544bbf9f/comet/transport"
)

// BenchmarkWriteJSON writes batches of chat room JSON documents (1 to 4
// KiB each, chatjson) through the adapter's downstream to a client on
// loopback that discards them, uncompressed and with permessage-deflate
// at levels 1 and 9: batches of one document, written in place, and of
// 32, as a backlog drains, which are compressed into memory first.
// wire-B/op is what crossed the wire per batch, WebSocket framing
// included.
func BenchmarkWriteJSON(b *testing.B) {
	for _, size := range []struct {
		name string
		docs int
	}{{"1doc", 1}, {"32docs", 32}} {
		batches := make([]*transport.Batch, 64)
		for i := range batches {
			batches[i] = &transport.Batch{}
			for j := range size.docs {
				batches[i].Append(&transport.Frame{Type: transport.TypeText, Seq: uint64(i*size.docs + j + 1), Payload: chatjson.Doc(i*size.docs + j)})
			}
		}
		for _, bc := range []struct {
			name  string
			level int
		}{{"plain", 0}, {"deflate-1", 1}, {"deflate-9", 9}} {
			b.Run(size.name+"/"+bc.name, func(b *testing.B) {
				ds, wl := benchDownstream(b, bc.level)
				b.ReportAllocs()
				start := wl.Counts.BytesOut.Load()
				i := 0
				for b.Loop() {
					if err := ds.WriteBatch(batches[i%len(batches)]); err != nil {
						b.Fatal(err)
					}
					i++
				}
				b.ReportMetric(float64(wl.Counts.BytesOut.Load()-start)/float64(i), "wire-B/op")
			})
		}
	}
}

// benchDownstream returns the server end of a WebSocket on loopback whose
// client discards every byte, compressing at level (0: not at all), and
// the listener counting its bytes. Both ends close when the
// benchmark does.
func benchDownstream(b *testing.B, level int) (*downstream, *wirecount.Listener) {
	up := websocket.Upgrader{EnableCompression: level != 0}
	conns := make(chan *websocket.Conn, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			b.Error(err)
			return
		}
		conns <- c
	}))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	wl := wirecount.Wrap(l)
	srv.Listener = wl
	srv.Start()
	// The client is a bare connection after a handshake written by hand,
	// which discards what arrives without decoding it: the benchmark
	// times the writer, not a reader competing with it for the CPU.
	nc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	ext := ""
	if level != 0 {
		ext = "Sec-WebSocket-Extensions: permessage-deflate\r\n"
	}
	io.WriteString(nc, "GET / HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: Y29tZXQgYmVuY2htYXJrIQ==\r\nSec-WebSocket-Version: 13\r\n"+ext+"\r\n")
	read := make(chan struct{})
	go func() {
		defer close(read)
		io.Copy(io.Discard, nc)
	}()
	sc := <-conns
	wswrite.Setup(sc, level)
	b.Cleanup(func() {
		sc.Close()
		<-read
		nc.Close()
		srv.Close()
	})
	return &downstream{conn: sc, timeout: time.Minute, deflate: level != 0}, wl
}
