package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/session"
)

// TestLibStomp runs @stomp/stompjs with a webSocketFactory that makes a
// Comet forced onto each transport, against the test's STOMP broker: it
// connects (STOMP 1.2), subscribes, publishes with receipts and escaped
// headers across a transport drop it does not see, unsubscribes, and
// disconnects with a clean close the broker sees. The factory passes no
// subprotocols, as a factory may.
func TestLibStomp(t *testing.T) {
	runTransports(t, func(t *testing.T, name string) { testStomp(t, name, false) })
}

// TestLibStompSubprotocols is TestLibStomp with the factory passing the
// library's subprotocols (v12.stomp, v11.stomp, v10.stomp), as stompjs
// does with a WebSocket it makes itself: the session agrees on v12.stomp,
// which the page's protocol attribute and the server's Session.Protocol
// report, and the broker speaks the version it names.
func TestLibStompSubprotocols(t *testing.T) {
	runTransports(t, func(t *testing.T, name string) { testStomp(t, name, true) })
}

func testStomp(t *testing.T, name string, protocols bool) {
	const n = 40
	b := newStompBroker(n / 2)
	opts := session.Options{Serve: b.serve}
	wantProtocol := ""
	if protocols {
		opts.Protocols = []string{"v12.stomp", "v11.stomp", "v10.stomp"}
		wantProtocol = "v12.stomp"
	}
	s := newLibServer(t, opts)
	b.s = s
	p := s.params(name, n)
	p.Protocols = protocols
	var r struct {
		libWatch
		Connects          int
		Version, Protocol string
		Sent, SentNotes   []string
		Got, Notes        []string
		Receipts          []string
		Errors            []string
		Close             wsClose
	}
	s.open(t).run("stomp", p, &r)

	if r.Connects != 1 || r.Version != "1.2" || len(r.Errors) > 0 {
		t.Errorf("page: %d CONNECTED, version %q, errors %q; want one, 1.2, none", r.Connects, r.Version, r.Errors)
	}
	if r.Protocol != wantProtocol {
		t.Errorf("page: protocol %q, want %q", r.Protocol, wantProtocol)
	}
	if len(r.Sent) != n || !slices.Equal(r.Got, r.Sent) || !slices.Equal(r.Notes, r.SentNotes) {
		t.Errorf("page: published %d, received bodies %q\nwant %q\nnotes %q\nwant %q", len(r.Sent), r.Got, r.Sent, r.Notes, r.SentNotes)
	}
	var receipts []string
	for i := 1; i <= n; i++ {
		receipts = append(receipts, fmt.Sprintf("r-%d", i))
	}
	receipts = append(receipts, "r-last")
	if !slices.Equal(r.Receipts, receipts) {
		t.Errorf("page: receipts %q, want %q", r.Receipts, receipts)
	}
	// disconnect closes the WebSocket with close(), no code: 1000 today,
	// 1005 where the server agrees to a close without a code.
	if !r.Close.WasClean || r.Close.Code != 1000 && r.Close.Code != 1005 {
		t.Errorf("page: the library's disconnect ended with %+v, want a clean 1000 or 1005", r.Close)
	}
	checkLibRun(t, s, r.libWatch, name, 1)

	e := testutil.Receive(t, b.ended, "the end of the STOMP session")
	want := []string{"CONNECT", "SUBSCRIBE"}
	for range n {
		want = append(want, "SEND")
	}
	want = append(want, "UNSUBSCRIBE", "SEND", "DISCONNECT")
	if !slices.Equal(e.commands, want) {
		t.Errorf("server: commands %q, want %q", e.commands, want)
	}
	if !slices.Equal(e.bodies, append(slices.Clone(r.Sent), "unheard")) {
		t.Errorf("server: SEND bodies %q, want the page's and unheard", e.bodies)
	}
	if v, _ := e.connect.header("accept-version"); v != "1.2,1.1,1.0" || e.version != "1.2" {
		t.Errorf("server: accept-version %q, agreed %q; want 1.2,1.1,1.0 and 1.2", v, e.version)
	}
	if e.protocol != wantProtocol {
		t.Errorf("server: the session's protocol is %q, want %q", e.protocol, wantProtocol)
	}
	if code, _, remote := closeOf(e.err); code != 1000 && code != 1005 || !remote {
		t.Errorf("server: the session ended with %v, want the client's close", e.err)
	}
	t.Logf("page close %+v; server %v", r.Close, e.err)
}

// TestLibStompFrames: the broker's frame codec reads what stompjs writes
// (EOLs between frames, content-length with a NUL in the body, escaped
// headers) and answers bad frames with a clear error.
func TestLibStompFrames(t *testing.T) {
	f := stompFrame{command: "MESSAGE", headers: [][2]string{{"note", "a:b\\c\nd\r1"}}, body: []byte("x\x00y")}
	in := append([]byte("\n\r\n"), f.encode(true)...)
	in = append(in, "\nSEND\ndestination:/q\n\nhi\x00\n"...)
	got, err := parseStomp(in, true)
	if err != nil || len(got) != 2 {
		t.Fatalf("parseStomp: %d frames, %v; want 2", len(got), err)
	}
	if v, _ := got[0].header("note"); v != "a:b\\c\nd\r1" || string(got[0].body) != "x\x00y" {
		t.Errorf("first frame: note %q, body %q", v, got[0].body)
	}
	if v, _ := got[1].header("destination"); got[1].command != "SEND" || v != "/q" || string(got[1].body) != "hi" {
		t.Errorf("second frame: %+v", got[1])
	}
	for _, tc := range []struct{ in, want string }{
		{"SEND\ndestination:/q\n\nno end", "no NUL"},
		{"SEND\ndestination", "inside its headers"},
		{"SEND\nnocolon\n\n\x00", "no colon"},
		{"SEND\nnote:a\\t\n\n\x00", "undefined escape"},
		{"SEND\ncontent-length:9\n\nab\x00", "does not match"},
		{"\n\nSEND", "command line"},
	} {
		if _, err := parseStomp([]byte(tc.in), true); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseStomp(%q): %v, want an error saying %q", tc.in, err, tc.want)
		}
	}
}
