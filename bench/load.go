package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// loadHello is a load child's first line.
type loadHello struct {
	Limits fileLimit `json:"limits"`
}

// openReport answers "open": how many connections were established and
// how long it took from the command to the last one.
type openReport struct {
	Opened int    `json:"opened"`
	Failed int    `json:"failed"`
	NS     int64  `json:"ns"`
	Err    string `json:"err,omitempty"` // the first failure
	// Retried counts opens refused with 503 broker_unavailable (a cluster
	// node that has lost its broker for a moment) and tried again.
	Retried int `json:"retried,omitempty"`
}

// openTries is how many times an open refused with 503
// broker_unavailable is tried, a Retry-After (1 s) apart, as a client
// that follows the protocol does (PROTOCOL.md section 14).
const openTries = 5

// samplesReport answers "report": every fan-out message received, by
// message number and latency.
type samplesReport struct {
	I   []int32 `json:"i"`
	NS  []int64 `json:"ns"`
	Bad int     `json:"bad"` // messages that were not fan-out messages
}

// loadMain is the hidden "load" subcommand: a load client that opens n
// connections of one kind when told "open", records the latency of every
// fan-out message they receive, answers "report" with the samples, and
// closes everything when its stdin closes.
func loadMain(args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	base := fs.String("base", "", "server URL, http://host:port")
	kind := fs.String("kind", "", "connection kind")
	n := fs.Int("n", 0, "connections to open")
	conc := fs.Int("conc", 32, "connections opened at once")
	src := fs.Int("src", 0, "first source address (see sourceAddr)")
	nsrc := fs.Int("nsrc", 2, "source addresses to spread over")
	life := fs.Duration("life", childLife, "exit after this long whatever happens")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the child's life to this file")
	fs.Parse(args)
	cmds := childMain(*life)
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	lim, err := raiseFileLimit()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench load:", err)
	}
	emit(loadHello{Limits: lim})

	l := &loadClient{o: newOpener(*kind, *base)}
	defer l.closeAll()
	for cmd := range cmds {
		switch cmd {
		case "open":
			emit(l.open(*n, *conc, *src, *nsrc))
		case "report":
			l.mu.Lock()
			emit(samplesReport{I: l.msgs, NS: l.lats, Bad: l.bad})
			l.mu.Unlock()
		default:
			return fmt.Errorf("bench load: unknown command %q", cmd)
		}
	}
	return nil
}

// loadClient holds a load child's connections and samples.
type loadClient struct {
	o     *opener
	mu    sync.Mutex
	conns []conn
	msgs  []int32
	lats  []int64
	bad   int
}

func (l *loadClient) open(n, conc, src, nsrc int) openReport {
	start := time.Now()
	var next, failed, retried atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range min(conc, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				var c conn
				var err error
				for try := 1; ; try++ {
					ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
					c, err = l.o.open(ctx, sourceAddr(src+i%nsrc))
					cancel()
					if err == nil || try == openTries || !strings.Contains(err.Error(), "broker_unavailable") {
						break
					}
					retried.Add(1)
					time.Sleep(time.Second)
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				l.mu.Lock()
				l.conns = append(l.conns, c)
				l.mu.Unlock()
				go c.recvLoop(l.record)
			}
		})
	}
	wg.Wait()
	r := openReport{Opened: n - int(failed.Load()), Failed: int(failed.Load()), NS: time.Since(start).Nanoseconds(),
		Retried: int(retried.Load())}
	if e, ok := firstErr.Load().(string); ok {
		r.Err = e
	}
	return r
}

func (l *loadClient) record(p []byte) {
	now := time.Now().UnixNano()
	i, ts, ok := parseFanout(p)
	l.mu.Lock()
	defer l.mu.Unlock()
	if !ok {
		l.bad++
		return
	}
	l.msgs = append(l.msgs, int32(i))
	l.lats = append(l.lats, now-ts)
}

func (l *loadClient) closeAll() {
	l.mu.Lock()
	conns := l.conns
	l.conns = nil
	l.mu.Unlock()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, c := range conns {
		sem <- struct{}{}
		wg.Go(func() {
			c.close()
			<-sem
		})
	}
	wg.Wait()
}

// loadGroup is the load children of one configuration.
type loadGroup struct {
	kids   []*child
	limits fileLimit
}

// startLoad starts enough load children to open n connections of kind,
// at most perChild each, on fresh source addresses taken from *src. Each
// lives at most life (0: childLife).
func startLoad(base, kind string, n, perChild int, src *int, life time.Duration) (*loadGroup, error) {
	g := &loadGroup{}
	for left := n; left > 0; left -= perChild {
		k := min(left, perChild)
		var h loadHello
		args := []string{"load", "-base", base, "-kind", kind,
			"-n", fmt.Sprint(k), "-src", fmt.Sprint(*src), "-nsrc", "2", "-conc", "32",
			"-life", cmp.Or(life, childLife).String()}
		if prefix := profilePrefix("load-" + kind); prefix != "" {
			args = append(args, "-cpuprofile", prefix+"-cpu.pb.gz")
		}
		c, err := startChild(fmt.Sprintf("load(%s)", kind), &h, args...)
		if err != nil {
			g.stop()
			return nil, err
		}
		*src += 2
		g.kids = append(g.kids, c)
		g.limits = h.Limits
	}
	return g, nil
}

// open tells every child to open its connections at once and returns the
// totals and the time from the command to the last child's answer.
func (g *loadGroup) open(timeout time.Duration) (openReport, error) {
	start := time.Now()
	for _, c := range g.kids {
		if err := c.send("open"); err != nil {
			return openReport{}, err
		}
	}
	var total openReport
	for _, c := range g.kids {
		var r openReport
		if err := c.read(timeout, &r); err != nil {
			return total, err
		}
		total.Opened += r.Opened
		total.Failed += r.Failed
		total.Retried += r.Retried
		if total.Err == "" {
			total.Err = r.Err
		}
	}
	total.NS = time.Since(start).Nanoseconds()
	return total, nil
}

// samples collects every child's fan-out samples.
func (g *loadGroup) samples() (samplesReport, error) {
	var all samplesReport
	for _, c := range g.kids {
		if err := c.send("report"); err != nil {
			return all, err
		}
		var r samplesReport
		if err := c.read(60*time.Second, &r); err != nil {
			return all, err
		}
		all.I = append(all.I, r.I...)
		all.NS = append(all.NS, r.NS...)
		all.Bad += r.Bad
	}
	return all, nil
}

// stop ends every child, in parallel (each closes its connections first).
func (g *loadGroup) stop() {
	if g == nil {
		return
	}
	var wg sync.WaitGroup
	for _, c := range g.kids {
		wg.Go(c.stop)
	}
	wg.Wait()
}
