package session

import (
	"cmp"
	"errors"
	"sync"
	"time"

	"github.com/seed-544bbf9f/comet/internal/logid"
	"github.com/seed-544bbf9f/comet/transport"
)

var (
	errPeerSilent = errors.New("comet: no traffic from the client for two heartbeat intervals")
	errFinished   = errors.New("comet: session finished")
)

// maxEchoes bounds the probe echoes queued on one attachment.
const maxEchoes = 8

// streamTurn bounds the bytes of messages one write of a stream carries
// (the first message always goes, whatever its size). 64 KiB is past the
// point where bigger writes gain throughput.
const streamTurn = 64 << 10

// ackHold is how long a stream's writer holds an ack that would go out
// alone. An application replying to a message usually does so within
// microseconds, and its reply then carries the ack: one write instead of
// two, which on WebSocket halves the server's writes in request/response
// traffic. A client sending without replies still gets an ack within
// one to two holds of each batch (see ackHolds), far inside ackDelay.
const ackHold = time.Millisecond

// attachment is one transport connection or request bound to a session:
// the session layer's side of transport.Attachment. The handler creates it
// once the request has proved itself.
type attachment struct {
	s      *Session
	name   string
	tidx   uint8 // the transport's index in the handler's counters
	params transport.AttachParams

	doneCh    chan struct{} // closed by end
	startedCh chan struct{} // closed once Start has registered the attachment
	once      sync.Once
	wakeCh    chan struct{} // wakes a writer that waits (see wake)

	// Set by Start before the attachment is shared.
	delivery transport.Delivery
	every    time.Duration // the heartbeat interval, or a poll's hold
	raw      bool          // batches may hold raw spans (transport.RawDownstream)
	prompt   bool          // ds never waits on the client (transport.PromptDownstream): see wakeNow

	// Guarded by s.mu.
	ds            transport.Downstream
	delivering    bool
	superseded    bool
	cursor        uint64 // highest sequence number written here
	ticket        string // carried by the open frame, minted once
	opened        bool   // the open frame was written
	ackDue        bool
	echoes        []string
	err           error
	ended         bool             // set by end: no writer starts any more
	writing       bool             // a writer goroutine runs; it alone writes to ds
	writerUp      bool             // a writer goroutine exists, running or waiting on wakeCh
	beat          bool             // a heartbeat is due (a poll: its hold is over)
	holding       bool             // an ack that would go alone waits (ackHold)
	holdSince     time.Time        // when the ack held began to wait
	inHolds       bool             // on the handler's list of attachments holding acks (ackHolds)
	heldSinceTick bool             // held an ack since the list's last tick
	flushAck      bool             // the hold is over: the ack goes alone
	lastWrite     time.Time        // when the last write began
	claimed       time.Time        // when wakeNow made its caller the writer, until that write begins
	heartbeat     *time.Timer      // fires every interval of downstream silence
	rd            transport.Reader // the adapter's reading, if it handed it over (reading.go)
	rdState       readState        // who reads through rd
	writer        func()           // a.write, bound once (starting it allocates nothing); nil until writes may start
}

// Params implements transport.Attachment.
func (a *attachment) Params() transport.AttachParams { return a.params }

// Limits implements transport.Attachment.
func (a *attachment) Limits() transport.Limits {
	o := a.s.opts
	return transport.Limits{MaxBatch: o.MaxBatch, WriteTimeout: o.WriteTimeout, PollRelease: o.PollRelease,
		DeflateLevel: o.Compression.DeflateLevel()}
}

// Done implements transport.Attachment.
func (a *attachment) Done() <-chan struct{} { return a.doneCh }

// Started implements transport.Attachment.
func (a *attachment) Started() <-chan struct{} { return a.startedCh }

// End implements transport.Attachment.
func (a *attachment) End(err error) { a.end(err) }

// Fail implements transport.Attachment.
func (a *attachment) Fail(code transport.CloseCode, reason string) {
	s := a.s
	s.mu.Lock()
	s.failLocked(violation(code, "%s", reason))
	s.mu.Unlock()
	a.end(errors.New("comet: " + reason))
}

// end stops the attachment, closes its downstream and detaches it from
// the session; err says why (nil: by design). Safe to call more than once
// and from any goroutine, without s.mu.
func (a *attachment) end(err error) {
	a.once.Do(func() {
		s := a.s
		s.mu.Lock()
		a.err = err
		a.ended = true
		if a.heartbeat != nil {
			a.heartbeat.Stop()
		}
		ds := a.ds
		s.mu.Unlock()
		close(a.doneCh)
		if ds == nil {
			return // Start never registered it
		}
		// Closing ds unblocks a write in flight; the writer then finds the
		// attachment ended and goes.
		ds.Close()
		s.detach(a, err)
	})
}

// interval is the heartbeat interval, or the hold of a poll, asked for by
// the client and clamped to what the server allows.
func (a *attachment) interval(d transport.Delivery) time.Duration {
	o := a.s.opts
	limit := o.Heartbeat
	if d == transport.Poll {
		limit = o.Hold
	}
	asked := time.Duration(a.params.Heartbeat) * time.Millisecond
	if asked == 0 {
		return limit
	}
	return min(max(asked, o.MinHeartbeat), limit)
}

// Serve implements transport.Attachment: Start, with the request's
// goroutine, which waits for the end anyway, as the writer. A poll's or a
// stream's writes then need no other goroutine, nor a hand-off back to
// this one before the response ends.
//
// A LeavingDownstream may ask for the goroutine back: Serve then hands
// the writer's part to the goroutines Start would use, once no wake-up
// waits for it, and returns transport.ErrLeft.
func (a *attachment) Serve(ds transport.Downstream, d transport.Delivery) error {
	a.writerUp = true // this goroutine, until the end or until it leaves
	if err := a.Start(ds, d); err != nil {
		return err
	}
	var leave <-chan struct{}
	if ld, ok := ds.(transport.LeavingDownstream); ok {
		leave = ld.Leave()
	}
	leaving := false
	// The request holds its goroutine anyway, and this batch with it.
	b := batchPool.Get().(*transport.Batch)
	defer batchPool.Put(b)
	for {
		if leaving && a.leave() {
			return transport.ErrLeft
		}
		select {
		case <-a.wakeCh:
			a.drain(b)
		case <-a.doneCh:
			// The writer is this goroutine: nothing writes to ds now.
			return a.err
		case <-leave:
			leave, leaving = nil, true
		}
	}
}

// leave gives up Serve's part as the writer, unless a wake-up waits in
// wakeCh for it (writing) or the attachment has ended: then Serve drains
// or returns first. From then on wake starts writers as under Start.
func (a *attachment) leave() bool {
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if a.writing || a.ended {
		return false
	}
	a.writerUp = false
	return true
}

// Start implements transport.Attachment. The attachment has no goroutine
// of its own: a writer runs while there is something to write, and
// writerLinger after (see wake), and the heartbeat and the ack hold are
// timers.
func (a *attachment) Start(ds transport.Downstream, d transport.Delivery) error {
	s := a.s
	defer func() {
		select {
		case <-a.startedCh:
		default:
			close(a.startedCh)
		}
	}()
	rd, raw := ds.(transport.RawDownstream)
	pd, prompt := ds.(transport.PromptDownstream)
	a.prompt = prompt && pd.WritesPromptly()
	a.delivery, a.every = d, a.interval(d)
	s.mu.Lock()
	if s.finished || a.ended {
		// Finished, or ended by the adapter before it started (a
		// WebSocket whose reader failed at once): nothing to register.
		err := cmp.Or(a.err, errFinished)
		s.mu.Unlock()
		ds.Close()
		return err
	}
	a.raw = s.binary && raw && rd.WritesRaw()
	a.ds = ds
	s.lastSeen = time.Now()
	a.lastWrite = s.lastSeen
	var change *transportChange
	if _, dup := s.attached[a.params.Attempt]; dup {
		// Attempts name attachments; a second one under a live name is
		// stale and must not take the name, or the live one could no
		// longer be found, probed or ended.
		a.superseded = true
	} else {
		s.attached[a.params.Attempt] = a
	}
	s.everAttached = true
	if a.params.Deliver && !a.superseded {
		if a.params.Attempt > s.lastAttempt {
			change = s.takeover(a)
		} else {
			// A delayed or retried request must never take delivery back.
			a.superseded = true
		}
	}
	a.heartbeat = time.AfterFunc(a.every, a.heartbeatDue)
	s.mu.Unlock()
	close(a.startedCh)
	change.report(s)
	// Writes start once the change is reported, which a failed first
	// write's loss must follow. The open frame: a stream's goes at once, a
	// poll's when the writer finds something to deliver with it, or the
	// hold is over.
	s.mu.Lock()
	a.writer = a.write
	now := a.wakeNow()
	s.mu.Unlock()
	if now {
		a.writeNow()
	}
	return nil
}

// transportChange is an observer event computed under the lock and
// reported after it.
type transportChange struct {
	from, to, reason string
}

func (c *transportChange) report(s *Session) {
	if c == nil {
		return
	}
	s.h.logger.Debug("comet: transport changed", "session", logid.Short(s.id), "from", c.from, "to", c.to, "reason", c.reason)
	if f := s.h.opts.Observer.TransportChanged; f != nil {
		f(s, c.from, c.to, c.reason)
	}
}

// takeover makes a the delivering attachment and supersedes the previous
// one. Delivery resumes after the client's ack, never after what was sent
// last. It returns the change to report, if the transport changed.
func (s *Session) takeover(a *attachment) *transportChange {
	if old := s.deliverer; old != nil && old != a {
		old.delivering = false
		old.superseded = true
		old.wake()
		switch old.rdState {
		case readInline:
			old.rd.Interrupt() // Recv turns to a's connection
		case readIdle:
			old.keepReadingLocked()
		}
	}
	if err := s.ackLocked(a.params.Ack); err != nil {
		s.failLocked(err)
	}
	s.deliverer = a
	a.delivering = true
	a.cursor = s.out.Acked()
	s.lastAttempt = max(s.lastAttempt, a.params.Attempt)
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	if s.closeTimer != nil {
		// A closing session's client is back: it gets the grace period to
		// take the close again, however short its wait had become.
		s.closeTimer.Reset(s.opts.Grace)
	}
	var change *transportChange
	if s.transport != a.name {
		change = &transportChange{from: s.transport, to: a.name, reason: a.params.Reason}
		s.countChange(a)
		s.transport = a.name
	}
	a.wake()
	return change
}

// countChange counts a's taking delivery from the session's transport:
// the first attach's latency, or a change of transport. Called with s.mu
// held, before s.transport changes.
func (s *Session) countChange(a *attachment) {
	c := &s.h.counters
	if s.finished {
		return // finish has counted the session out of s.tidx
	}
	if s.transport == "" {
		c.attach.observe(time.Since(s.made))
	} else {
		c.changes[reasonIndex(a.params.Reason)].Add(1)
	}
	c.open[s.tidx].Add(-1)
	c.open[a.tidx].Add(1)
	s.tidx = a.tidx
}

// detach forgets an ended attachment; if it was delivering, the grace
// period starts.
func (s *Session) detach(a *attachment, err error) {
	s.mu.Lock()
	if s.attached[a.params.Attempt] == a {
		delete(s.attached, a.params.Attempt)
	}
	lost := false
	if s.deliverer == a {
		s.deliverer = nil
		if !s.finished && s.timer == nil {
			s.timer = time.AfterFunc(s.opts.Grace, s.expire)
		}
		if s.h.closing.Load() {
			s.shortenLingerLocked()
		}
		lost = err != nil
	}
	s.mu.Unlock()
	if lost {
		s.h.logger.Debug("comet: transport lost", "session", logid.Short(s.id), "transport", a.name, "err", err)
		if f := s.h.opts.Observer.TransportLost; f != nil {
			f(s, a.name, err)
		}
	}
}

// collect appends what is due on a to b and reports whether the batch
// ends the downstream. Called with s.mu held.
func (a *attachment) collect(b *transport.Batch, d transport.Delivery, interval time.Duration, beat bool) (final bool) {
	s := a.s
	if !a.opened {
		if a.ticket == "" {
			a.ticket = s.tickets.mint()
		}
		b.Append(&transport.Frame{Type: transport.TypeOpen, Attempt: a.params.Attempt, Ack: s.ackSeq(),
			Token: a.ticket, Interval: uint64(interval.Milliseconds())})
	}
	// A raw batch takes its ack last, where the writer may hold it back
	// (see holdRawAck); any other keeps it first, as it always had.
	if a.ackDue && !b.Raw {
		b.Append(&transport.Frame{Type: transport.TypeAck, Ack: s.ackSeq()})
		a.ackDue = false
	}
	for _, tok := range a.echoes {
		b.Append(&transport.Frame{Type: transport.TypeEcho, Token: tok})
	}
	a.echoes = a.echoes[:0]
	if a.delivering && s.replyWaiting == 0 {
		// While a POST waits for a reply (replies.go) its answer takes the
		// messages, and this one gets what is left once it is done.
		//
		// MaxBatch is the client's read limit: stop before the message that
		// would pass it, keeping room for a trailing ["h"] or ["s"]. The
		// first message always goes; MaxBatch leaves room for the largest.
		// A stream also stops at streamTurn: what is left goes on the next
		// turn, at once, so that one session's backlog costs one bounded
		// copy and write at a time, under its lock and in the pooled batch
		// a blocked write holds, however large its window.
		limit := s.opts.MaxBatch - len(`["h"]`+"\n")
		if d == transport.Stream {
			limit = min(limit, streamTurn)
		}
		a.cursor = s.out.AppendTo(b, a.cursor, limit)
	}
	if a.ackDue {
		b.Append(&transport.Frame{Type: transport.TypeAck, Ack: s.ackSeq()})
		a.ackDue = false
	}
	if a.superseded {
		b.Append(&transport.Frame{Type: transport.TypeSuperseded})
		return true
	}
	if beat {
		b.Append(&transport.Frame{Type: transport.TypeHeartbeat})
	}
	// A probing poll is answered with its open frame alone.
	return d == transport.Poll && !a.params.Deliver
}
