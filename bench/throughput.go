package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/transport"
)

// roundTripper does one request/response exchange of payload.
type roundTripper interface {
	roundTrip(ctx context.Context) error
	close()
}

// cometRT echoes p (payload unless said otherwise) on a Comet session.
type cometRT struct {
	c *client.Conn
	p []byte
}

func (r cometRT) roundTrip(ctx context.Context) error {
	if err := r.c.Send(ctx, transport.Text, r.p); err != nil {
		return err
	}
	_, p, err := r.c.Recv(ctx)
	if err == nil && !bytes.Equal(p, r.p) {
		err = fmt.Errorf("echo: got %q", p)
	}
	return err
}

func (r cometRT) close() { r.c.CloseNow() }

// rawWSRT echoes p (payload unless said otherwise) on a gorilla connection.
type rawWSRT struct {
	c *websocket.Conn
	p []byte
}

func (r rawWSRT) roundTrip(context.Context) error {
	if err := r.c.WriteMessage(websocket.TextMessage, r.p); err != nil {
		return err
	}
	_, _, err := r.c.ReadMessage()
	return err
}

func (r rawWSRT) close() { r.c.Close() }

// rawHTTPRT posts payload to the raw echo handler on a keep-alive
// connection of its own.
type rawHTTPRT struct {
	hc  *http.Client
	url string
}

func (r rawHTTPRT) roundTrip(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(payload))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	return r.do(req)
}

// do sends req and reads its whole answer, so that the connection goes
// back to the keep-alive pool.
func (r rawHTTPRT) do(req *http.Request) error {
	resp, err := r.hc.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return err
}

func (r rawHTTPRT) close() { r.hc.CloseIdleConnections() }

// rawGetRT fetches one message per request: server push by plain polling.
type rawGetRT struct{ rawHTTPRT }

func (r rawGetRT) roundTrip(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return err
	}
	return r.do(req)
}

// dialer opens the roundTrippers of one workload.
type dialer func(ctx context.Context) (roundTripper, error)

func cometDialer(base, t string) dialer {
	return func(ctx context.Context) (roundTripper, error) {
		c, err := dialComet(ctx, base, t)
		if err != nil {
			return nil, err
		}
		return cometRT{c, payload}, nil
	}
}

func rawWSDialer(base string) dialer {
	return func(ctx context.Context) (roundTripper, error) {
		c, resp, err := websocket.DefaultDialer.DialContext(ctx, "ws"+strings.TrimPrefix(base, "http")+"/raw/ws", nil)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		return rawWSRT{c, payload}, nil
	}
}

func rawHTTPDialer(base, path string, get bool) dialer {
	return func(context.Context) (roundTripper, error) {
		rt := rawHTTPRT{hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}, url: base + path}
		if get {
			return rawGetRT{rt}, nil
		}
		return rt, nil
	}
}

// openAll opens n roundTrippers, closing them all if one fails.
func openAll(ctx context.Context, n int, dial dialer) ([]roundTripper, error) {
	rts := make([]roundTripper, 0, n)
	for range n {
		rt, err := dial(ctx)
		if err != nil {
			closeAll(rts)
			return nil, err
		}
		rts = append(rts, rt)
	}
	return rts, nil
}

func closeAll(rts []roundTripper) {
	for _, rt := range rts {
		rt.close()
	}
}

// rate runs one loop per roundTripper for warm plus d and returns the
// exchanges per second counted during d.
func rate(rts []roundTripper, warm, d time.Duration) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), warm+d+30*time.Second)
	defer cancel()
	var counting atomic.Bool
	var count atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, rt := range rts {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := rt.roundTrip(ctx); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				if counting.Load() {
					count.Add(1)
				}
			}
		})
	}
	time.Sleep(warm)
	counting.Store(true)
	start := time.Now()
	time.Sleep(d)
	n := count.Load()
	elapsed := time.Since(start)
	close(stop)
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return 0, err
	}
	return float64(n) / elapsed.Seconds(), nil
}

// latency runs round trips one after another on rt for warm plus d and
// returns the samples taken during d (at most maxSamples).
func latency(rt roundTripper, warm, d time.Duration) (latencies, error) {
	const maxSamples = 2_000_000
	ctx, cancel := context.WithTimeout(context.Background(), warm+d+30*time.Second)
	defer cancel()
	for end := time.Now().Add(warm); time.Now().Before(end); {
		if err := rt.roundTrip(ctx); err != nil {
			return nil, err
		}
	}
	var l latencies
	for end := time.Now().Add(d); time.Now().Before(end) && len(l) < maxSamples; {
		start := time.Now()
		if err := rt.roundTrip(ctx); err != nil {
			return nil, err
		}
		l = append(l, time.Since(start))
	}
	return l.sorted(), nil
}

// echoResult is what one echo configuration measured.
type echoResult struct {
	rate float64
	lat  latencies
}

// measureEcho measures one echo configuration in a fresh server process:
// round trips per second with n sessions, then latency with one session.
func (r *runner) measureEcho(name string, n int, dial func(base string) dialer) (echoResult, error) {
	res, err := r.measureEchoes(n, echoConfig{name, dial})
	if err != nil {
		return echoResult{}, err
	}
	return res[0], nil
}

// echoConfig is an echo configuration: what to call it, and how to dial
// its server.
type echoConfig struct {
	name string
	dial func(base string) dialer
}

// echoTurns is how many turns measureEchoes gives each configuration, for
// the rate and for the latency.
const echoTurns = 6

// measureEchoes measures echo configurations (Comet's beside its raw
// baseline), each in a fresh server process of its own, taking turns: for
// the rate with n sessions each, then for the latency with one, the
// configurations measure one after the other, echoTurns times, each turn
// a share of the window after a short warm-up. A machine whose speed
// drifts, as a shared host's does from one second to the next, then slows
// every configuration alike: measured whole, one after the other, they
// met different machines.
func (r *runner) measureEchoes(n int, cfgs ...echoConfig) ([]echoResult, error) {
	type side struct {
		d   dialer
		rts []roundTripper
		sum float64
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sides := make([]side, len(cfgs))
	defer func() {
		for _, s := range sides {
			closeAll(s.rts)
		}
	}()
	for i, cfg := range cfgs {
		srv, err := startServer(appEcho)
		if err != nil {
			return nil, err
		}
		defer srv.stop()
		sides[i].d = cfg.dial(srv.base)
		if sides[i].rts, err = openAll(ctx, n, sides[i].d); err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.name, err)
		}
	}
	turn := r.window / echoTurns
	warm := func(t int) time.Duration {
		if t == 0 {
			return r.warm
		}
		return r.warm / 4 // caches and threads, cold after the other's turn
	}
	for t := range echoTurns {
		for i := range sides {
			rate, err := rate(sides[i].rts, warm(t), turn)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", cfgs[i].name, err)
			}
			sides[i].sum += rate
		}
	}
	res := make([]echoResult, len(cfgs))
	rts := make([]roundTripper, len(cfgs))
	for i := range sides {
		closeAll(sides[i].rts)
		sides[i].rts = nil
		res[i].rate = sides[i].sum / echoTurns
		rt, err := sides[i].d(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfgs[i].name, err)
		}
		defer rt.close()
		rts[i] = rt
	}
	for t := range echoTurns {
		for i, rt := range rts {
			l, err := latency(rt, warm(t), turn)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", cfgs[i].name, err)
			}
			res[i].lat = append(res[i].lat, l...)
		}
	}
	for i := range res {
		res[i].lat = res[i].lat.sorted()
	}
	return res, nil
}

// addLatency adds the p50, p99 and p99.9 of comet beside raw.
func (s *section) addLatency(r *runner, what string, comet, raw latencies) {
	for _, p := range []float64{50, 99, 99.9} {
		s.add(r.log, figure{Name: fmt.Sprintf("%s p%g", what, p), Unit: "ms", Comet: comet.ms(p), Raw: raw.ms(p)})
	}
}

// webSocketEcho is metric 1.
func (r *runner) webSocketEcho() error {
	s := r.section(1, "WebSocket echo",
		fmt.Sprintf("Each session sends a %d-byte text message and waits for its echo, in a loop: with %d "+
			"sessions at once for round trips per second, and with one session for the latency "+
			"distribution of %s of round trips. The Go client is forced onto WebSocket; the server "+
			"application echoes in `Recv`/`Send`. Comet and the baseline, each with a server process of "+
			"its own, take turns (%d each, after a short warm-up) so that a drift in the machine's speed "+
			"meets both alike.", len(payload), r.sessions, r.window, echoTurns),
		"a gorilla/websocket echo server (default buffer sizes) and a gorilla client, message by message.")
	res, err := r.measureEchoes(r.sessions,
		echoConfig{"comet websocket", func(b string) dialer { return cometDialer(b, transport.WebSocket) }},
		echoConfig{"raw websocket", rawWSDialer})
	if err != nil {
		return err
	}
	comet, raw := res[0], res[1]
	s.add(r.log, figure{Name: fmt.Sprintf("round trips/s, %d sessions", r.sessions), Unit: "round trips/s", Comet: comet.rate, Raw: raw.rate, Higher: true})
	s.addLatency(r, "round trip, 1 session,", comet.lat, raw.lat)
	r.plots.latency = append(r.plots.latency, latencySeries{"WebSocket: Comet", comet.lat}, latencySeries{"WebSocket: raw gorilla", raw.lat})
	r.plots.throughput = append(r.plots.throughput, barPair{"WebSocket echo", comet.rate, raw.rate})
	return nil
}

// longPolling is metric 2.
func (r *runner) longPolling() error {
	s := r.section(2, "Long-polling",
		fmt.Sprintf("Two workloads. **Echo**: as in section 1, with the Go client forced onto long-polling: "+
			"each message goes up in a POST, and its echo comes back in that POST's answer, which waits "+
			"up to 1 ms for it (PROTOCOL.md section 6), while a poll stays parked for anything later "+
			"(%d sessions for the rate, one for the latency; Comet and the baseline take turns, as there). **Server push**: the server application "+
			"calls `Send` in a loop in each of %d sessions; the client counts the messages it receives. "+
			"A poll carries every message queued since the last one, so batching lets Comet deliver more "+
			"messages than the raw baseline makes requests.", r.sessions, r.sessions),
		"net/http on keep-alive connections, one per client: for echo, a POST whose answer is its body; for "+
			"push, a GET answered at once with one message (the most a request/response loop can deliver).")
	res, err := r.measureEchoes(r.sessions,
		echoConfig{"comet longpoll", func(b string) dialer { return cometDialer(b, transport.LongPoll) }},
		echoConfig{"raw http", func(b string) dialer { return rawHTTPDialer(b, "/raw/echo", false) }})
	if err != nil {
		return err
	}
	comet, raw := res[0], res[1]
	r.rawPOST = raw.rate
	s.add(r.log, figure{Name: fmt.Sprintf("echo round trips/s, %d sessions", r.sessions), Unit: "round trips/s", Comet: comet.rate, Raw: raw.rate, Higher: true})
	s.addLatency(r, "echo round trip, 1 session,", comet.lat, raw.lat)
	r.plots.latency = append(r.plots.latency, latencySeries{"long-polling: Comet", comet.lat}, latencySeries{"long-polling: raw net/http", raw.lat})
	r.plots.throughput = append(r.plots.throughput, barPair{"long-polling echo", comet.rate, raw.rate})

	push, err := r.pushRate(transport.LongPoll, r.sessions)
	if err != nil {
		return err
	}
	rawPush, err := r.rawRate("/raw/msg", r.sessions)
	if err != nil {
		return err
	}
	s.add(r.log, figure{Name: fmt.Sprintf("server push, %d sessions", r.sessions), Unit: "messages/s", Comet: push, Raw: rawPush, Higher: true})
	r.plots.throughput = append(r.plots.throughput, barPair{"long-polling push", push, rawPush})
	return nil
}

// pushRate counts the messages/s n sessions forced onto t receive from the
// push application, in a fresh server process.
func (r *runner) pushRate(t string, n int) (float64, error) {
	srv, err := startServer(appPush)
	if err != nil {
		return 0, err
	}
	defer srv.stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var conns []*client.Conn
	defer func() {
		for _, c := range conns {
			c.CloseNow()
		}
	}()
	for range n {
		c, err := dialComet(ctx, srv.base, t)
		if err != nil {
			return 0, fmt.Errorf("comet %s push: %w", t, err)
		}
		conns = append(conns, c)
	}
	rts := make([]roundTripper, len(conns))
	for i, c := range conns {
		rts[i] = recvOnly{c}
	}
	return rate(rts, r.warm, r.window)
}

// recvOnly receives one message per "round trip".
type recvOnly struct{ c *client.Conn }

func (r recvOnly) roundTrip(ctx context.Context) error {
	_, _, err := r.c.Recv(ctx)
	return err
}

func (r recvOnly) close() {}

// rawRate measures GET requests/s on path with n keep-alive clients.
func (r *runner) rawRate(path string, n int) (float64, error) {
	srv, err := startServer(appEcho)
	if err != nil {
		return 0, err
	}
	defer srv.stop()
	rts, err := openAll(context.Background(), n, rawHTTPDialer(srv.base, path, true))
	if err != nil {
		return 0, err
	}
	defer closeAll(rts)
	return rate(rts, r.warm, r.window)
}

// rawSSERate counts the events/s one raw SSE stream delivers.
func (r *runner) rawSSERate() (float64, error) {
	srv, err := startServer(appEcho)
	if err != nil {
		return 0, err
	}
	defer srv.stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := newOpener(kindRawSSE, srv.base)
	c, err := o.openStream(ctx, dialerFrom(nil), nil, "/raw/sse?push=1")
	if err != nil {
		return 0, err
	}
	defer c.close()
	events := make(chan struct{}, 1024)
	go c.recvLoop(func([]byte) { events <- struct{}{} })
	return rate([]roundTripper{chanRT(events)}, r.warm, r.window)
}

// chanRT takes one event from a channel per "round trip".
type chanRT chan struct{}

func (c chanRT) roundTrip(ctx context.Context) error {
	select {
	case <-c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c chanRT) close() {}

// streams is metric 3.
func (r *runner) streams() error {
	s := r.section(3, "SSE and XHR streaming",
		fmt.Sprintf("**Events per stream**: one session; the server application calls `Send` with a "+
			"%d-byte message in a loop, exactly as the raw handler writes an event in a loop, and the "+
			"client counts the messages it receives for %s. The raw handler flushes after every event; "+
			"Comet's writer flushes after every batch of what is queued. **Upstream**: echo with %d "+
			"sessions, each message POSTed up and echoed down the stream.", len(payload), r.window, r.sessions),
		"for events, a net/http handler writing `data: …` and flushing per event, read by a line "+
			"scanner; for upstream, the raw keep-alive POST echo of section 2 (the figure measured there).")
	rawEvents, err := r.rawSSERate()
	if err != nil {
		return err
	}
	for _, t := range []string{transport.SSE, transport.Streaming} {
		events, err := r.pushRate(t, 1)
		if err != nil {
			return err
		}
		s.add(r.log, figure{Name: t + ": events/s, 1 stream", Unit: "events/s", Comet: events, Raw: rawEvents, Higher: true})
		r.plots.throughput = append(r.plots.throughput, barPair{t + " events", events, rawEvents})
	}
	for _, t := range []string{transport.SSE, transport.Streaming} {
		echo, err := r.measureEchoRate(t)
		if err != nil {
			return err
		}
		s.add(r.log, figure{Name: fmt.Sprintf("%s: upstream POST round trips/s, %d sessions", t, r.sessions), Unit: "round trips/s", Comet: echo, Raw: r.rawPOST, Higher: true})
		r.plots.throughput = append(r.plots.throughput, barPair{t + " upstream", echo, r.rawPOST})
	}
	if math.IsNaN(r.rawPOST) {
		s.note(r.log, "the raw POST figure comes from section 2, which did not run")
	}
	return nil
}

// measureEchoRate is the rate half of measureEcho, for transport t.
func (r *runner) measureEchoRate(t string) (float64, error) {
	srv, err := startServer(appEcho)
	if err != nil {
		return 0, err
	}
	defer srv.stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rts, err := openAll(ctx, r.sessions, cometDialer(srv.base, t))
	if err != nil {
		return 0, fmt.Errorf("comet %s echo: %w", t, err)
	}
	defer closeAll(rts)
	return rate(rts, r.warm, r.window)
}
