package prometheus_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/client"
	cometprom "github.com/seed-544bbf9f/comet/prometheus"
)

// server is a Comet handler echoing on loopback, with the server side of
// each session it opens.
type server struct {
	h        *comet.Handler
	url      string
	sessions chan *comet.Session
}

// newServer starts a server that ends with the test (or, for an example,
// with the returned stop).
func newServer(opts *comet.Options) (*server, func()) {
	s := &server{sessions: make(chan *comet.Session, 16)}
	var o comet.Options
	if opts != nil {
		o = *opts
	}
	o.Logger = slog.New(slog.DiscardHandler)
	o.Serve = func(ss *comet.Session) {
		s.sessions <- ss
		ctx := ss.Context()
		for {
			typ, p, err := ss.Recv(ctx)
			if err != nil || ss.Send(ctx, typ, p) != nil {
				return
			}
		}
	}
	s.h = comet.NewHandler(&o)
	srv := httptest.NewServer(s.h)
	s.url = srv.URL + "/comet"
	return s, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.h.Shutdown(ctx)
		srv.CloseClientConnections()
		srv.Close()
	}
}

// echoOnce dials a client on transport name, has one message echoed, and
// closes it with 1000; it returns once the server has forgotten the
// session, so that every counter of its life is final.
func (s *server) echoOnce(ctx context.Context, name string) error {
	c, err := client.Dial(ctx, s.url, &client.Options{Transports: []string{name}})
	if err != nil {
		return err
	}
	ss := <-s.sessions
	if err := c.Send(ctx, comet.Text, []byte("ping")); err != nil {
		return err
	}
	if _, _, err := c.Recv(ctx); err != nil {
		return err
	}
	c.Close(comet.CloseNormal, "done")
	select {
	case <-ss.Done():
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-c.Done():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestCollector(t *testing.T) {
	s, stop := newServer(nil)
	t.Cleanup(stop)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.echoOnce(ctx, comet.WebSocket); err != nil {
		t.Fatal(err)
	}

	c := cometprom.NewCollector(s.h, nil)
	want := `
# HELP comet_sessions_opened_total Sessions negotiated.
# TYPE comet_sessions_opened_total counter
comet_sessions_opened_total 1
# HELP comet_sessions_closed_total Sessions finished, by close code.
# TYPE comet_sessions_closed_total counter
comet_sessions_closed_total{code="1000"} 1
# HELP comet_sessions_open Sessions held now, by the transport delivering to each (none: not attached yet).
# TYPE comet_sessions_open gauge
comet_sessions_open{transport="longpoll"} 0
comet_sessions_open{transport="none"} 0
comet_sessions_open{transport="sse"} 0
comet_sessions_open{transport="streaming"} 0
comet_sessions_open{transport="websocket"} 0
# HELP comet_messages_total Application messages received (in) and written (out, resends included).
# TYPE comet_messages_total counter
comet_messages_total{direction="in",transport="longpoll"} 0
comet_messages_total{direction="in",transport="sse"} 0
comet_messages_total{direction="in",transport="streaming"} 0
comet_messages_total{direction="in",transport="websocket"} 1
comet_messages_total{direction="out",transport="longpoll"} 0
comet_messages_total{direction="out",transport="sse"} 0
comet_messages_total{direction="out",transport="streaming"} 0
comet_messages_total{direction="out",transport="websocket"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"comet_sessions_opened_total", "comet_sessions_closed_total", "comet_sessions_open", "comet_messages_total"); err != nil {
		t.Error(err)
	}
	// No page shares here: the carriers' gauges are 0, and no sub-request
	// was started.
	carriers := `
# HELP comet_carriers_open Carriers of the sessions of a page's tabs held now, by kind (stream or polls).
# TYPE comet_carriers_open gauge
comet_carriers_open{kind="polls"} 0
comet_carriers_open{kind="stream"} 0
# HELP comet_sub_requests_total Attaches and POSTs of sessions started by carriers for a page's tabs.
# TYPE comet_sub_requests_total counter
comet_sub_requests_total 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(carriers), "comet_carriers_open", "comet_sub_requests_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(c, "comet_attach_seconds"); n != 1 {
		t.Errorf("comet_attach_seconds: %d series, want 1", n)
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestCollectorOptions checks that a namespace and constant labels name
// every metric, so that two handlers can share a registry.
func TestCollectorOptions(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	for _, name := range []string{"chat", "feed"} {
		s, stop := newServer(nil)
		t.Cleanup(stop)
		reg.MustRegister(cometprom.NewCollector(s.h, &cometprom.Options{Namespace: "app", ConstLabels: prometheus.Labels{"handler": name}}))
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	// An idle handler has closed no session, changed no transport and
	// refused no negotiate: those three families have no series yet.
	if len(families) != 12 {
		t.Errorf("%d metric families, want 12", len(families))
	}
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "app_") {
			t.Errorf("metric %s lacks the namespace", f.GetName())
		}
		if f.GetName() == "app_sessions_opened_total" && len(f.GetMetric()) != 2 {
			t.Errorf("app_sessions_opened_total: %d series, want one per handler", len(f.GetMetric()))
		}
	}
}
