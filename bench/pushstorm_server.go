package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// The server's half of the push storm (metric 8): the targets, whose
// clients never read, and the storm that pushes into them.

// stallHeader marks the negotiate of a Comet client that never reads: the
// storm application holds its session as a target instead of echoing.
const stallHeader = "X-Bench-Stall"

// rawStallQueue is the per-connection queue of the raw baseline, in
// messages: 4 of the storm's 64 KiB messages, the 256 KiB outbound window
// Comet has in this configuration, so that both buffer as much.
const rawStallQueue = 4

// errStallGone is a push into a raw connection that has ended.
var errStallGone = errors.New("connection gone")

// stormReport answers /_bench/storm.
type stormReport struct {
	Targets int   `json:"targets"`
	Sent    int64 `json:"sent"`   // messages accepted (Send returned, or queued)
	Failed  int64 `json:"failed"` // pushes into ended sessions or connections
	NS      int64 `json:"ns"`     // from the first push to the last sender's end
	// Start and LastSent are Unix times in ns: the storm's start and the
	// last push accepted. Windows and queues that are never drained fill
	// up, so the pushing is over at LastSent, often well before the end.
	Start    int64 `json:"start"`
	LastSent int64 `json:"lastSent"`
}

// stormTargets holds the targets as their clients connect. A target that
// ends stays listed; a push into it fails at once.
type stormTargets struct {
	mu    sync.Mutex
	comet []*session.Session
	raw   []*rawStaller
}

func (t *stormTargets) addSession(s *session.Session) {
	t.mu.Lock()
	t.comet = append(t.comet, s)
	t.mu.Unlock()
}

func (t *stormTargets) addRaw(c *rawStaller) {
	t.mu.Lock()
	t.raw = append(t.raw, c)
	t.mu.Unlock()
}

// rawStaller is a raw baseline target: a gorilla connection with one
// writer goroutine fed by a bounded queue, the usual way to push to a
// gorilla connection from many goroutines.
type rawStaller struct {
	q    chan []byte
	done chan struct{} // closed when the handler returns
}

// push queues p, waiting while the queue is full, as Send waits while the
// window is full.
func (c *rawStaller) push(ctx context.Context, p []byte) error {
	select {
	case c.q <- p:
		return nil
	case <-c.done:
		return errStallGone
	case <-ctx.Done():
		return ctx.Err()
	}
}

// rawStall is the raw baseline's target handler: its writer drains the
// queue into the connection; the handler itself reads, only to notice the
// client leaving (a client that never sends).
func (s *benchServer) rawStall(w http.ResponseWriter, r *http.Request) {
	c, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	s.raw.Add(1)
	defer s.raw.Add(-1)
	st := &rawStaller{q: make(chan []byte, rawStallQueue), done: make(chan struct{})}
	defer close(st.done)
	s.storm.addRaw(st)
	go func() {
		for {
			select {
			case p := <-st.q:
				// The write timeout Comet's writer has by default.
				c.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if c.WriteMessage(websocket.TextMessage, p) != nil {
					c.Close() // ends the handler's read, which closes done
					return
				}
			case <-st.done:
				return
			}
		}
	}()
	for {
		if _, _, err := c.NextReader(); err != nil {
			return
		}
	}
}

// pushStorm runs the storm and answers when it is over: ?senders
// goroutines push ?size-byte text messages round-robin into the targets
// (the raw ones with ?raw=1) for ?d, each push waiting while its target is
// full. A sender stops early once a whole round of its targets failed.
func (s *benchServer) pushStorm(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d, err := time.ParseDuration(q.Get("d"))
	senders, err2 := strconv.Atoi(q.Get("senders"))
	size, err3 := strconv.Atoi(q.Get("size"))
	if err := errors.Join(err, err2, err3); err != nil || d <= 0 || d > time.Minute || senders <= 0 || size <= 0 {
		http.Error(w, "want d (up to 1m), senders and size", http.StatusBadRequest)
		return
	}
	p := make([]byte, size)
	for i := range p {
		p[i] = 'x'
	}
	var push []func(context.Context) error
	s.storm.mu.Lock()
	if q.Get("raw") == "1" {
		for _, c := range s.storm.raw {
			push = append(push, func(ctx context.Context) error { return c.push(ctx, p) })
		}
	} else {
		for _, ss := range s.storm.comet {
			push = append(push, func(ctx context.Context) error { return ss.Send(ctx, transport.Text, p) })
		}
	}
	s.storm.mu.Unlock()
	json.NewEncoder(w).Encode(runStorm(push, senders, d))
}

// runStorm is the storm itself: sender g pushes into its share of the
// targets, g, g+senders, g+2·senders, …, round and round until d has
// passed.
func runStorm(targets []func(context.Context) error, senders int, d time.Duration) stormReport {
	rep := stormReport{Targets: len(targets)}
	if len(targets) == 0 {
		return rep
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	var sent, failed atomic.Int64
	lastSent := make([]time.Time, min(senders, len(targets))) // by sender
	var wg sync.WaitGroup
	for g := range lastSent {
		wg.Go(func() {
			share := (len(targets) - g + senders - 1) / senders
			failedInARow := 0
			for i := g; ctx.Err() == nil && failedInARow < share; {
				switch err := targets[i](ctx); {
				case err == nil:
					sent.Add(1)
					lastSent[g] = time.Now()
					failedInARow = 0
				case ctx.Err() == nil:
					failed.Add(1)
					failedInARow++
				}
				if i += senders; i >= len(targets) {
					i = g
				}
			}
		})
	}
	wg.Wait()
	rep.Sent, rep.Failed, rep.NS = sent.Load(), failed.Load(), time.Since(start).Nanoseconds()
	rep.Start = start.UnixNano()
	if last := slices.MaxFunc(lastSent, time.Time.Compare); !last.IsZero() {
		rep.LastSent = last.UnixNano()
	}
	return rep
}
