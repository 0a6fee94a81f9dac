package e2e

import (
	"fmt"
	"slices"
	"testing"

	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// TestLibGraphQLWS runs graphql-ws's client with Comet as its
// webSocketImpl, forced onto each transport, against the test's
// graphql-transport-ws server: the library asks for its subprotocol, which
// the session agrees on; connection_init is acknowledged; a subscription
// receives a tick for each of the queries run one after another across a
// transport drop, none lost or repeated, with the library's retries off;
// it answers the server's ping; and when its last operation ends the lazy
// client closes the socket with 1000, which the server sees.
func TestLibGraphQLWS(t *testing.T) {
	runTransports(t, testGraphQLWS)
}

func testGraphQLWS(t *testing.T, name string) {
	const n = 20
	g := newGQLServer(n / 2)
	opts := session.Options{Serve: g.serve}
	opts.Protocols = []string{graphqlSubprotocol}
	s := newLibServer(t, opts)
	g.s = s
	var r struct {
		libWatch
		Connected      int
		Protocol       string
		Ticks          []int
		Echoes         []string
		Pings, Pongs   int
		Errors         []string
		TicksCompleted bool
		Close          wsClose
	}
	s.open(t).run("graphqlWs", s.params(name, n), &r)

	var echoes []string
	ticks := []int{0}
	for i := 1; i <= n; i++ {
		echoes = append(echoes, fmt.Sprintf("q%d", i))
		ticks = append(ticks, i)
	}
	if r.Connected != 1 || r.Protocol != graphqlSubprotocol || len(r.Errors) > 0 {
		t.Errorf("page: connected %d times, protocol %q, errors %q; want once, %s, none", r.Connected, r.Protocol, r.Errors, graphqlSubprotocol)
	}
	if !slices.Equal(r.Echoes, echoes) || !slices.Equal(r.Ticks, ticks) || !r.TicksCompleted {
		t.Errorf("page: echoes %q, ticks %v, ticks completed %v; want %q, %v, true", r.Echoes, r.Ticks, r.TicksCompleted, echoes, ticks)
	}
	if r.Pings == 0 || r.Pongs == 0 {
		t.Errorf("page: %d pings received, %d pongs sent; want one of each at least", r.Pings, r.Pongs)
	}
	if r.Close.Code != 1000 || !r.Close.WasClean {
		t.Errorf("page: the library's close ended with %+v, want a clean 1000", r.Close)
	}
	checkLibRun(t, s, r.libWatch, name, 1)

	e := testutil.Receive(t, g.ended, "the end of the GraphQL session")
	if e.protocol != graphqlSubprotocol {
		t.Errorf("server: the session's protocol is %q, want %s", e.protocol, graphqlSubprotocol)
	}
	if len(e.types) == 0 || e.types[0] != "connection_init" || e.pongs == 0 {
		t.Errorf("server: messages %q with %d pongs; want connection_init first, and a pong", e.types, e.pongs)
	}
	if !slices.Equal(e.echoes, echoes) {
		t.Errorf("server: echoed %q, want %q", e.echoes, echoes)
	}
	if e.ticks == "" || !slices.Contains(e.completed, e.ticks) {
		t.Errorf("server: the ticks subscription %q was not completed (completed %q)", e.ticks, e.completed)
	}
	if code, reason, remote := closeOf(e.err); code != transport.CloseNormal || reason != "Normal Closure" || !remote {
		t.Errorf("server: the session ended with %v, want the library's close 1000 Normal Closure", e.err)
	}
	t.Logf("page close %+v; server %v", r.Close, e.err)
}
