package wswrite

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet/internal/chatjson"
	"github.com/seed-544bbf9f/comet/internal/leakcheck"
	"github.com/seed-544bbf9f/comet/internal/wirecount"
	"github.com/seed-544bbf9f/comet/transport"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// TestBatch writes batches on a WebSocket that agreed to permessage-deflate
// and reads, off the wire, how each went: which frames share a message,
// and which messages are compressed.
func TestBatch(t *testing.T) {
	doc := chatjson.Doc(0)
	big := bytes.Repeat(doc, 8) // above inPlace: compressed into memory first
	open := transport.Frame{Type: transport.TypeOpen, Attempt: 1, Token: "Yz8wLk2pQx2wJb1kR9sT4A", Interval: 25000}
	text := func(seq uint64, p []byte) transport.Frame {
		return transport.Frame{Type: transport.TypeText, Seq: seq, Payload: p}
	}
	type msg struct {
		binary, deflated bool
		frames           int // frames in the message; 0 for a raw binary message
	}
	tests := []struct {
		name    string
		deflate bool
		raw     bool
		frames  []transport.Frame
		binary  []byte // a raw binary message appended last, if set
		want    []msg
	}{
		{"open frame alone, then the rest compressed", true, false,
			[]transport.Frame{open, {Type: transport.TypeAck, Ack: 3}, text(1, doc)},
			nil, []msg{{false, false, 1}, {false, true, 2}}},
		{"small batch as it is", true, false,
			[]transport.Frame{{Type: transport.TypeAck, Ack: 3}, text(1, []byte("hi"))},
			nil, []msg{{false, false, 2}}},
		{"a credential after the first frame: nothing compressed", true, false,
			[]transport.Frame{text(1, doc), {Type: transport.TypeTicket, Token: "Lk2pYz8wQx2wJb1kR9sT4A"}},
			nil, []msg{{false, false, 2}}},
		{"large message", true, false, []transport.Frame{text(1, big)}, nil, []msg{{false, true, 1}}},
		{"raw binary beside text", true, true, []transport.Frame{text(1, doc)}, big,
			[]msg{{false, true, 1}, {true, true, 0}}},
		{"without deflate, one message as always", false, false,
			[]transport.Frame{open, text(1, doc)}, nil, []msg{{false, false, 2}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc, cc, got := pair(t, tc.deflate)
			b := &transport.Batch{Raw: tc.raw}
			for i := range tc.frames {
				b.Append(&tc.frames[i])
			}
			if tc.binary != nil {
				b.AppendBinary(uint64(len(tc.frames)+1), tc.binary)
			}
			if tc.deflate {
				Setup(sc, 1)
			}
			if err := Batch(sc, b, tc.deflate); err != nil {
				t.Fatal(err)
			}
			var read []byte // what the client read, messages joined
			for i, w := range tc.want {
				typ, p, err := cc.ReadMessage()
				if err != nil {
					t.Fatal(err)
				}
				m := <-got
				if m.Binary != w.binary || m.Deflated != w.deflated || (typ == websocket.BinaryMessage) != w.binary {
					t.Fatalf("message %d: binary %v, compressed %v; want %v, %v", i, m.Binary, m.Deflated, w.binary, w.deflated)
				}
				if !w.binary {
					frames, err := transport.DecodeBatch(p)
					if err != nil || len(frames) != w.frames {
						t.Fatalf("message %d: %d frames, %v; want %d", i, len(frames), err, w.frames)
					}
				}
				read = append(read, p...)
			}
			if !bytes.Equal(read, b.Bytes) {
				t.Fatalf("the messages hold %d bytes, not the batch's %d", len(read), len(b.Bytes))
			}
		})
	}
}

// pair returns the server and client ends of a WebSocket on loopback,
// which agreed to permessage-deflate if deflate is set, and the messages
// the server writes, read off the wire (16 at most, unless read).
func pair(t *testing.T, deflate bool) (server, client *websocket.Conn, written <-chan wirecount.Message) {
	t.Helper()
	wl := wirecount.Wrap(listen(t))
	out := make(chan wirecount.Message, 16)
	wl.Record = func(m wirecount.Message) {
		if m.Out {
			out <- m
		}
	}
	server, client = connect(t, wl, deflate)
	return server, client, out
}

// plainPair returns the two ends of a WebSocket on loopback, without
// compression, whose messages nobody counts.
func plainPair(t *testing.T) (server, client *websocket.Conn) {
	t.Helper()
	return connect(t, listen(t), false)
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// connect serves WebSocket upgrades on l and returns the ends of one.
func connect(t *testing.T, l net.Listener, deflate bool) (server, client *websocket.Conn) {
	t.Helper()
	up := websocket.Upgrader{EnableCompression: deflate}
	conns := make(chan *websocket.Conn, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := up.Upgrade(w, r, nil); err == nil {
			conns <- c
		}
	}))
	srv.Listener = l
	srv.Start()
	d := websocket.Dialer{EnableCompression: deflate}
	client, _, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	server = <-conns
	t.Cleanup(func() {
		client.Close()
		server.Close()
		srv.Close()
	})
	return server, client
}

func TestNamed(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   bool
	}{
		{"none", nil, false},
		{"alone", []string{"permessage-deflate"}, true},
		{"with parameters, among others", []string{"x-webkit-deflate-frame", "permessage-deflate; client_max_window_bits"}, true},
		{"in one list, upper case", []string{"foo, Permessage-Deflate; server_no_context_takeover"}, true},
		{"others only", []string{"x-webkit-deflate-frame"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{"Sec-Websocket-Extensions": tc.values}
			if got := Named(h); got != tc.want {
				t.Errorf("Named(%q) = %v, want %v", tc.values, got, tc.want)
			}
		})
	}
}
