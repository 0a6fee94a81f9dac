package e2e

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// TestLibReconnectingWebSocket runs reconnecting-websocket with Comet as
// its WebSocket class, forced onto each transport: it connects, echoes
// cross both ways with a transport drop half-way that the library does not
// see, a server close reaches it as a WebSocket close and it connects
// again by itself, and its close(1000) reaches the server.
func TestLibReconnectingWebSocket(t *testing.T) { runTransports(t, testReconnectingWebSocket) }

// echoApp is the application of the reconnecting-websocket case: it sends
// every text back, cuts every connection once after cutAfter echoes, and
// closes with 4000 on "restart-me", as a server restarting would.
type echoApp struct {
	s        *libServer
	cutAfter int32
	cutOnce  sync.Once
	echoes   atomic.Int32
	// ended gets what each session saw as it ends; it has room for more
	// sessions than a case makes, so that a surplus one, which the checks
	// report, cannot block the handler's shutdown.
	ended chan appEnd
}

// appEnd is what one session's application received, in order, and how
// its Recv ended.
type appEnd struct {
	got []string
	err error
}

func (a *echoApp) serve(sess *session.Session) {
	ctx := sess.Context()
	var got []string
	for {
		typ, p, err := sess.Recv(ctx)
		if err != nil {
			a.ended <- appEnd{got, err}
			return
		}
		got = append(got, string(p))
		if string(p) == "restart-me" {
			sess.Close(4000, "restart")
			continue
		}
		if err := sess.Send(ctx, typ, p); err != nil {
			a.s.log.Error("e2e: Send", "err", err)
		}
		if a.echoes.Add(1) == a.cutAfter {
			a.s.cut(&a.cutOnce)
		}
	}
}

func testReconnectingWebSocket(t *testing.T, name string) {
	const n = 40
	app := &echoApp{cutAfter: n / 2, ended: make(chan appEnd, 8)}
	s := newLibServer(t, session.Options{Serve: app.serve})
	app.s = s
	var r struct {
		libWatch
		Sent, Got  []string
		Opens      int
		Closes     []wsClose
		ReadyState int
	}
	s.open(t).run("reconnectingWebSocket", s.params(name, n), &r)

	var want []string
	for i := 1; i <= n; i++ {
		want = append(want, fmt.Sprintf("m%d", i))
	}
	want = append(want, "after the restart")
	if !slices.Equal(r.Sent, want) || !slices.Equal(r.Got, want) {
		t.Errorf("page: sent %q\n got %q\nwant each %q (every echo once, in order)", r.Sent, r.Got, want)
	}
	if r.Opens != 2 {
		t.Errorf("page: %d open events, want 2 (the first, and after the restart)", r.Opens)
	}
	if len(r.Closes) != 2 {
		t.Fatalf("page: close events %+v, want 2", r.Closes)
	}
	if c := r.Closes[0]; c.Code != 4000 || c.Reason != "restart" || !c.WasClean {
		t.Errorf("page: the restart reached the library as %+v, want a clean close 4000 restart", c)
	}
	if c := r.Closes[1]; c.Code != 1000 || !c.WasClean {
		t.Errorf("page: close(1000) ended with %+v, want a clean 1000", c)
	}
	if r.ReadyState != 3 {
		t.Errorf("page: readyState %d after the close, want 3", r.ReadyState)
	}
	// Two sessions: the first with its drop, the second after the restart.
	checkLibRun(t, s, r.libWatch, name, 2)

	first := testutil.Receive(t, app.ended, "the end of the first session")
	if w := append(want[:n:n], "restart-me"); !slices.Equal(first.got, w) {
		t.Errorf("server: the first session received %q, want %q", first.got, w)
	}
	if code, reason, remote := closeOf(first.err); code != 4000 || reason != "restart" || remote {
		t.Errorf("server: the first session ended with %v, want its own close 4000", first.err)
	}
	second := testutil.Receive(t, app.ended, "the end of the second session")
	if !slices.Equal(second.got, want[n:]) {
		t.Errorf("server: the second session received %q, want %q", second.got, want[n:])
	}
	if code, reason, remote := closeOf(second.err); code != transport.CloseNormal || reason != "done" || !remote {
		t.Errorf("server: the second session ended with %v, want the page's close 1000 done", second.err)
	}
}
