package e2e

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/internal/faultproxy"
	"github.com/seed-544bbf9f/comet/session"
)

// TestResumeUnderCuts keeps a session echoing for resumeRun on each
// transport, forced, through a faultproxy that cuts every connection 1–3 s
// after it opened, and measures the share of the time the session spent
// with no live transport.
//
// The measure, from the page's view (page.js's track): the window runs
// from the open event to the page's close(); an outage starts at a
// reconnecting event (the attachment in use dropped) and ends when the
// open frame of the next delivering attachment arrives, which is when the
// shim delivers again. The no-transport fraction is the outages' total
// over the window. Every cut costs at least a round trip, so it is never
// zero; a shim that backs off after a drop that followed a healthy
// attachment spends seconds per cut.
//
// The bound, resumeOutageLimit, is generous (the target is 15%, which a
// loaded machine may miss); the test prints the figure. The cuts are drawn
// from a seed, printed; COMET_CUT_SEED repeats a run's schedule.
func TestResumeUnderCuts(t *testing.T) {
	seed := cutSeed(t)
	// The four at once, whatever -parallel says (it defaults to the
	// number of CPUs, often two): each case mostly waits on its pace, so
	// four take the time of one.
	var wg sync.WaitGroup
	for i, name := range transports {
		wg.Go(func() {
			t.Run(name, func(t *testing.T) { testResumeUnderCuts(t, name, seed+uint64(i)) })
		})
	}
	wg.Wait()
}

const (
	// resumeRun is how long the page keeps sending: resumeMessages in
	// batches every resumeEvery.
	resumeRun      = 20 * time.Second
	resumeEvery    = 200 * time.Millisecond
	resumeMessages = 1000
	// resumeOutageLimit is the most of the window a case may spend with
	// no live transport.
	resumeOutageLimit = 0.35
	// resumeTimeout bounds the tab: the run, then a drain under cuts.
	resumeTimeout = 90 * time.Second
)

// outage is a span without a live transport, in ms from the navigation's
// start.
type outage struct {
	From float64 `json:"from"`
	To   float64 `json:"to"`
}

func testResumeUnderCuts(t *testing.T, name string, seed uint64) {
	t.Logf("cut schedule seed %d", seed)
	browser := needBrowser(t)
	// A 2 s least attach timeout, as in the other cases forced onto one
	// transport: a machine loaded by the parallel cases must not turn a
	// slow attach into a failed one, which is not what this case measures.
	srv := newServer(t, config{opts: session.Options{MinClientTimeout: 2 * time.Second}})
	fp := startFault(t, srv, &faultproxy.Options{Cut: &faultproxy.Cut{Min: time.Second, Max: 3 * time.Second}, Seed: seed})
	tb := newTabWithin(t, browser, resumeTimeout)
	tb.open(srv.pageURL(fp.URL(), fp.URL()))

	p := forced(fp.URL()+"/comet", name)
	p.N = resumeMessages
	p.Every = int(resumeEvery.Milliseconds())
	p.Batch = resumeMessages * int(resumeEvery) / int(resumeRun)
	p.Brief = true
	var r result
	tb.run("exchange", p, &r)
	e := srv.sessionEnd()

	for _, d := range []struct {
		name string
		got  tally
	}{{"page to server", tallyOf(e.got, resumeMessages)}, {"server to page", tallyOf(r.Got, resumeMessages)}} {
		if !d.got.exact(resumeMessages) {
			t.Errorf("%s: %+v; want %d messages, each once, in order", d.name, d.got, resumeMessages)
		}
	}
	checkOn(t, srv, r, name)
	if r.Close.Code != 1000 || !r.Close.WasClean {
		t.Errorf("page: close %+v; want a clean 1000", r.Close)
	}
	if len(r.Errors) != 0 {
		t.Errorf("page: error events %+v", r.Errors)
	}
	// One session throughout, resumed after every cut.
	if n := srv.negotiates.Load(); n != 1 {
		t.Errorf("server: %d negotiates, want 1", n)
	}
	// Long-polling may see no drop at all: a cut between two polls ends
	// an idle keep-alive connection, and the browser sends the next poll
	// on a new one, as it does for any GET that meets a closed reused
	// connection.
	st := fp.Stats()
	if st.Cuts == 0 {
		t.Fatalf("proxy: no connection was cut: %+v", st)
	}
	// Every drop opens an outage that the next open frame closes: fewer
	// outages than drops would mean page.js no longer recognises the
	// shim's debug messages.
	if len(r.Outages) != r.Reconnecting {
		t.Errorf("page: %d outages for %d reconnecting events; want one each: %+v", len(r.Outages), r.Reconnecting, r.Outages)
	}
	s := outageSummary(r.OpenedAt, r.ClosingAt, r.Outages)
	t.Logf("%s: no live transport %.1f%% of %.1f s: %s; %d of %d connections cut; drops %v",
		name, 100*s.fraction, s.window.Seconds(), s, st.Cuts, st.Conns, r.Drops)
	if s.fraction > resumeOutageLimit {
		t.Errorf("no live transport %.1f%% of the time; want at most %.0f%%", 100*s.fraction, 100*resumeOutageLimit)
	}
}

// outages sums up the outages inside a window, each clipped to it.
type outages struct {
	window, total, longest time.Duration
	count                  int
	fraction               float64
}

func outageSummary(from, to float64, spans []outage) outages {
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	s := outages{window: ms(to - from)}
	for _, o := range spans {
		d := ms(min(o.To, to) - max(o.From, from))
		if d <= 0 {
			continue
		}
		s.count++
		s.total += d
		s.longest = max(s.longest, d)
	}
	if s.window > 0 {
		s.fraction = float64(s.total) / float64(s.window)
	}
	return s
}

func (s outages) String() string {
	if s.count == 0 {
		return "no outage"
	}
	return fmt.Sprintf("%d outages, %v in all, mean %v, longest %v", s.count, s.total.Round(time.Millisecond),
		(s.total / time.Duration(s.count)).Round(time.Millisecond), s.longest.Round(time.Millisecond))
}

// cutSeed is the seed of a cut schedule: COMET_CUT_SEED if set, so that a
// logged run can be repeated, else drawn from the clock.
func cutSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("COMET_CUT_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("COMET_CUT_SEED=%q: %v", v, err)
		}
	}
	t.Logf("cut schedule seed %d (COMET_CUT_SEED=%d repeats it)", seed, seed)
	return seed
}
