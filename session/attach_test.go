package session

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// TestOpenFrame checks the open frame's fields: the attempt echoed, the
// server's upstream ack, a fresh single-use ticket, and the interval asked
// for clamped to [MinHeartbeat, Heartbeat] (long-poll: Hold).
func TestOpenFrame(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		d    transport.Delivery
		hb   uint64
		want uint64
	}{
		{"stream at the server's interval", transport.Stream, 0, 25000},
		{"stream asking for less", transport.Stream, 5000, 5000},
		{"stream asking for less than the minimum", transport.Stream, 10, 1000},
		{"stream asking for more", transport.Stream, 60000, 25000},
		{"poll at the server's hold", transport.Poll, 0, 20000},
		{"poll asking for less", transport.Poll, 3000, 3000},
		{"poll asking for less than the minimum", transport.Poll, 10, 1000},
		{"poll asking for more", transport.Poll, 60000, 20000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newTestSession(t, newTestHandler(t, &Options{Hold: 20 * time.Second}))
			mustUpstream(t, s, `["m",1,"a"]`, `["m",2,"b"]`)
			ds := newFake(t)
			if tc.d == transport.Poll {
				ds = newFakePoll(t)
			}
			a := serve(t, s, "x", ds, tc.d, transport.AttachParams{Attempt: 7, Heartbeat: tc.hb})
			got := a.ds.next(t)
			want := fmt.Sprintf(`["o",7,2,"T",%d]`, tc.want)
			if w := wire(got); len(w) == 0 || w[0] != want {
				t.Fatalf("first batch %q, want the open frame %s first", w, want)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if !s.tickets.use(got[0].Token) {
				t.Error("the open frame's ticket is not a valid ticket")
			}
			if s.tickets.use(got[0].Token) {
				t.Error("the open frame's ticket can be used twice")
			}
		})
	}
}

// TestResume checks that a delivering attach resumes after
// max(previous ack, attach ack): nothing lost, nothing sent twice.
func TestResume(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		upAck     uint64 // the client's ack before it left, 0 for none
		attachAck uint64
		resent    []string
	}{
		{"from the attach's ack", 0, 3, []string{`["m",4,"4"]`, `["m",5,"5"]`}},
		{"from an earlier ack", 4, 2, []string{`["m",5,"5"]`}},
		{"nothing acknowledged", 0, 0, []string{`["m",1,"1"]`, `["m",2,"2"]`, `["m",3,"3"]`, `["m",4,"4"]`, `["m",5,"5"]`}},
		{"everything acknowledged", 5, 5, nil},
	}
	for _, tr := range []struct {
		name   string
		attach func(testing.TB, *Session, transport.AttachParams) *served
	}{
		{"stream", attachStream},
		{"poll", attachPoll},
	} {
		for _, tc := range tests {
			t.Run(tr.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				s := newTestSession(t, newTestHandler(t, nil))
				mustSend(t, s, "1", "2", "3", "4", "5")
				a := tr.attach(t, s, deliver(1, 0))
				a.ds.expect(t, `["o",1,0,"T",25000]`, `["m",1,"1"]`, `["m",2,"2"]`, `["m",3,"3"]`, `["m",4,"4"]`, `["m",5,"5"]`)
				if tc.upAck > 0 {
					mustUpstream(t, s, fmt.Sprintf(`["a",%d]`, tc.upAck))
				}
				a.End(errors.New("connection reset"))
				a.wait(t)
				mustSend(t, s, "6") // while the client is away

				b := tr.attach(t, s, deliver(2, tc.attachAck))
				want := slices.Concat([]string{`["o",2,0,"T",25000]`}, tc.resent, []string{`["m",6,"6"]`})
				if got := wire(b.ds.next(t)); !slices.Equal(got, want) {
					t.Fatalf("first batch after resuming\n got %q\nwant %q", got, want)
				}
				s.mu.Lock()
				defer s.mu.Unlock()
				if acked := max(tc.upAck, tc.attachAck); s.out.Acked() != acked {
					t.Errorf("window starts after %d, want %d", s.out.Acked(), acked)
				}
			})
		}
	}
}

func TestSupersede(t *testing.T) {
	t.Parallel()
	s := newTestSession(t, newTestHandler(t, nil))
	a := attachStream(t, s, deliver(1, 0))
	a.ds.expect(t, `["o",1,0,"T",25000]`)
	mustSend(t, s, "x")
	a.ds.expect(t, `["m",1,"x"]`)

	b := attachStream(t, s, deliver(2, 0))
	a.ds.expect(t, `["s"]`)
	if err := a.wait(t); err != nil {
		t.Errorf("superseded Serve = %v, want nil", err)
	}
	if !a.ds.isClosed() {
		t.Error("the superseded downstream is not closed")
	}
	b.ds.expect(t, `["o",2,0,"T",25000]`, `["m",1,"x"]`)
	mustSend(t, s, "y")
	b.ds.expect(t, `["m",2,"y"]`)
	if got := a.ds.drain(t); got != nil {
		t.Errorf("the superseded attachment was written %q", got)
	}
}

// TestStaleAttemptNeverDelivers checks that a delivering attach with a
// lower attempt than the delivering one gets its open frame and ["s"], and
// takes nothing over.
func TestStaleAttemptNeverDelivers(t *testing.T) {
	t.Parallel()
	s := newTestSession(t, newTestHandler(t, nil))
	a := attachStream(t, s, deliver(2, 0))
	a.ds.expect(t, `["o",2,0,"T",25000]`)
	mustSend(t, s, "x")
	a.ds.expect(t, `["m",1,"x"]`)

	stale := attachStream(t, s, deliver(1, 0))
	if got, want := wire(stale.ds.next(t)), []string{`["o",1,0,"T",25000]`, `["s"]`}; !slices.Equal(got, want) {
		t.Fatalf("stale attach got %q, want %q", got, want)
	}
	if err := stale.wait(t); err != nil {
		t.Errorf("stale Serve = %v, want nil", err)
	}
	mustSend(t, s, "y")
	a.ds.expect(t, `["m",2,"y"]`)
	if got := stale.ds.drain(t); got != nil {
		t.Errorf("the stale attachment was written %q", got)
	}
}

// TestDuplicateAttempt: an attach that repeats a live attachment's attempt
// is stale; the live one keeps its name, so it can still be probed and is
// still ended with the session.
func TestDuplicateAttempt(t *testing.T) {
	t.Parallel()
	s := newTestSession(t, newTestHandler(t, nil))
	a := attachStream(t, s, deliver(1, 0))
	a.ds.expect(t, `["o",1,0,"T",25000]`)

	dup := attachStream(t, s, deliver(1, 0))
	if got, want := wire(dup.ds.next(t)), []string{`["o",1,0,"T",25000]`, `["s"]`}; !slices.Equal(got, want) {
		t.Fatalf("duplicate attach got %q, want %q", got, want)
	}
	dup.wait(t)
	mustUpstream(t, s, `["p",1,"still-here"]`)
	a.ds.expect(t, `["e","still-here"]`)
	s.CloseNow()
	if err := a.wait(t); err != nil {
		t.Logf("live attachment ended with %v", err)
	}
}

// TestProbeAndCommit checks that a probe gets its open frame and echoes but
// no messages, and that committing it makes it deliver from the ack.
func TestProbeAndCommit(t *testing.T) {
	t.Parallel()
	s := newTestSession(t, newTestHandler(t, nil))
	a := attachStream(t, s, deliver(1, 0))
	a.ds.expect(t, `["o",1,0,"T",25000]`)
	p := attachStream(t, s, probe(2))
	p.ds.expect(t, `["o",2,0,"T",25000]`)
	mustSend(t, s, "x")
	a.ds.expect(t, `["m",1,"x"]`)
	mustUpstream(t, s, `["p",2,"t1"]`)
	p.ds.expect(t, `["e","t1"]`) // and no message before it

	mustUpstream(t, s, `["u",2]`)
	a.ds.expect(t, `["s"]`)
	if err := a.wait(t); err != nil {
		t.Errorf("superseded Serve = %v, want nil", err)
	}
	p.ds.expect(t, `["m",1,"x"]`)
	mustSend(t, s, "y")
	p.ds.expect(t, `["m",2,"y"]`)
}

// TestCommitFencesLowerAttempts: the early delivery of PROTOCOL.md section
// 8. A chain of polls numbered low delivers while a candidate numbered
// high is proven; committing the candidate raises the bar, so a poll of
// the chain that arrives after the commit (one the client sent before it)
// gets its open frame and ["s"] and takes nothing over, while an attach
// numbered above the candidate still takes delivery, as after any drop.
func TestCommitFencesLowerAttempts(t *testing.T) {
	t.Parallel()
	const candidate = 1_000_000_001
	s := newTestSession(t, newTestHandler(t, nil))
	ws := attachStream(t, s, probe(candidate))
	ws.ds.expect(t, `["o",1000000001,0,"T",25000]`)
	poll := attachStream(t, s, deliver(1, 0))
	poll.ds.expect(t, `["o",1,0,"T",25000]`)
	mustSend(t, s, "x")
	poll.ds.expect(t, `["m",1,"x"]`)

	mustUpstream(t, s, `["u",1000000001]`)
	poll.ds.expect(t, `["s"]`)
	ws.ds.expect(t, `["m",1,"x"]`)
	late := attachStream(t, s, deliver(2, 1))
	if got, want := wire(late.ds.next(t)), []string{`["o",2,0,"T",25000]`, `["s"]`}; !slices.Equal(got, want) {
		t.Fatalf("a chain poll after the commit got %q, want %q", got, want)
	}
	mustSend(t, s, "y")
	ws.ds.expect(t, `["m",2,"y"]`)
	if got := late.ds.drain(t); got != nil {
		t.Errorf("the fenced poll was written %q", got)
	}

	resume := attachStream(t, s, deliver(candidate+1, 1))
	ws.ds.expect(t, `["s"]`)
	resume.ds.expect(t, `["o",1000000002,0,"T",25000]`, `["m",2,"y"]`)
}

// TestProbeEchoRouting checks that ["p",attempt,token] is echoed on the
// attachment with that attempt, 0 meaning the delivering one, and dropped
// when there is none.
func TestProbeEchoRouting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		attempt int
		on      string // "deliverer", "probe" or "" (dropped)
	}{
		{"0 is the deliverer", 0, "deliverer"},
		{"the deliverer's attempt", 1, "deliverer"},
		{"the probe's attempt", 2, "probe"},
		{"an attempt that is gone", 9, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newTestSession(t, newTestHandler(t, nil))
			d := attachStream(t, s, deliver(1, 0))
			d.ds.expect(t, `["o",1,0,"T",25000]`)
			p := attachStream(t, s, probe(2))
			p.ds.expect(t, `["o",2,0,"T",25000]`)

			mustUpstream(t, s, fmt.Sprintf(`["p",%d,"tok"]`, tc.attempt), `["p",1,"end"]`, `["p",2,"end"]`)
			for name, x := range map[string]*served{"deliverer": d, "probe": p} {
				want := []string{`["e","end"]`}
				if tc.on == name {
					want = []string{`["e","tok"]`, `["e","end"]`}
				}
				x.ds.expect(t, want...)
			}
		})
	}
}

// TestPollProbe checks that a probing poll is answered with its open frame
// alone, whatever is queued.
func TestPollProbe(t *testing.T) {
	t.Parallel()
	s := newTestSession(t, newTestHandler(t, nil))
	mustSend(t, s, "x")
	p := attachPoll(t, s, probe(1))
	if got, want := wire(p.ds.next(t)), []string{`["o",1,0,"T",25000]`}; !slices.Equal(got, want) {
		t.Fatalf("probing poll got %q, want %q", got, want)
	}
	if err := p.wait(t); err != nil {
		t.Errorf("Serve = %v, want nil", err)
	}
}

// TestPollHold checks that a delivering poll holds its open frame back
// until there is a message or the hold expires, then answers with one
// batch and ends.
func TestPollHold(t *testing.T) {
	t.Parallel()
	const hold = 20 * time.Second
	tests := []struct {
		name   string
		before bool          // a message is queued before the poll
		sendAt time.Duration // a message is sent then; 0: none
		endAt  time.Duration
		want   []string
	}{
		{"message ready", true, 0, 0, []string{`["o",1,0,"T",20000]`, `["m",1,"x"]`}},
		{"message during the hold", false, 5 * time.Second, 5 * time.Second, []string{`["o",1,0,"T",20000]`, `["m",1,"x"]`}},
		{"hold expires", false, 0, hold, []string{`["o",1,0,"T",20000]`, `["h"]`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				s := newTestSession(t, newTestHandler(t, &Options{Hold: hold}))
				if tc.before {
					mustSend(t, s, "x")
				}
				start := time.Now()
				p := attachPoll(t, s, deliver(1, 0))
				if tc.endAt > 0 {
					time.Sleep(tc.endAt - time.Millisecond)
					synctest.Wait()
					p.ds.expectBatches(t)
					time.Sleep(time.Millisecond)
				}
				if tc.sendAt > 0 {
					mustSend(t, s, "x")
				}
				synctest.Wait()
				p.ds.expectBatches(t, tc.want)
				if !p.returned() {
					t.Fatal("the poll did not end after its batch")
				}
				if p.serveErr != nil {
					t.Errorf("Serve = %v, want nil", p.serveErr)
				}
				if d := time.Since(start); d != tc.endAt {
					t.Errorf("the poll was answered after %v, want %v", d, tc.endAt)
				}
			})
		})
	}
}

// TestHeartbeat checks that an attachment, delivering or probing, gets
// ["h"] after each silent interval, stays while the client answers, and
// ends when the client has been silent for two intervals.
func TestHeartbeat(t *testing.T) {
	t.Parallel()
	const interval = 10 * time.Second
	for _, deliver := range []bool{true, false} {
		t.Run(fmt.Sprintf("deliver=%v", deliver), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				// A session with no delivering attachment ends after
				// AttachTimeout; this one must outlive its probe.
				o := &Options{Heartbeat: interval, AttachTimeout: time.Hour}
				ev := observe(o)
				s := newTestSession(t, newTestHandler(t, o))
				a := attachStream(t, s, transport.AttachParams{Attempt: 1, Deliver: deliver})
				synctest.Wait()
				a.ds.expectBatches(t, []string{`["o",1,0,"T",10000]`})
				for range 3 {
					time.Sleep(interval - time.Millisecond)
					synctest.Wait()
					a.ds.expectBatches(t)
					time.Sleep(time.Millisecond)
					synctest.Wait()
					a.ds.expectBatches(t, []string{`["h"]`})
					mustUpstream(t, s, `["a",0]`) // the client's answer
				}
				// The client falls silent just after its last answer.
				time.Sleep(interval)
				synctest.Wait()
				a.ds.expectBatches(t, []string{`["h"]`})
				happensAt(t, interval, "the attachment ended", a.returned)
				if !errors.Is(a.serveErr, errPeerSilent) {
					t.Errorf("Serve = %v, want errPeerSilent", a.serveErr)
				}
				if !a.ds.isClosed() {
					t.Error("the downstream is not closed")
				}
				if isDone(s.Done()) {
					t.Error("the session ended with its transport; it should wait for the grace period")
				}
				events := ev.drain()
				lost := slices.ContainsFunc(events, func(e string) bool { return strings.HasPrefix(e, "lost websocket: ") })
				if lost != deliver {
					t.Errorf("observer events %q: want a lost transport only for a delivering one", events)
				}
			})
		})
	}
}

func TestTransportChanged(t *testing.T) {
	t.Parallel()
	o := &Options{}
	ev := observe(o)
	s := newTestSession(t, newTestHandler(t, o))
	if got := s.Transport(); got != "" {
		t.Errorf("Transport() before any attach = %q", got)
	}

	ws := attachStream(t, s, deliver(1, 0))
	ws.ds.expect(t, `["o",1,0,"T",25000]`)
	if e := ev.next(t); e != `changed ""→"websocket" why=""` {
		t.Errorf("first attach: event %q", e)
	}

	mustSend(t, s, "x") // so that the polls answer at once
	p := transport.AttachParams{Attempt: 2, Deliver: true, Reason: "ws_silent"}
	lp := attachPoll(t, s, p)
	lp.ds.expect(t, `["o",2,0,"T",25000]`, `["m",1,"x"]`)
	if e := ev.next(t); e != `changed "websocket"→"longpoll" why="ws_silent"` {
		t.Errorf("fallback to long-polling: event %q", e)
	}
	if got := s.Transport(); got != transport.LongPoll {
		t.Errorf("Transport() = %q, want %q", got, transport.LongPoll)
	}

	// The next poll is no change of transport.
	lp = attachPoll(t, s, deliver(3, 1))
	sse := serve(t, s, transport.SSE, newFake(t), transport.Stream, probe(4))
	sse.ds.expect(t, `["o",4,0,"T",25000]`)
	mustUpstream(t, s, `["u",4]`)
	lp.ds.expect(t, `["o",3,0,"T",25000]`, `["s"]`)
	if e := ev.next(t); e != `changed "longpoll"→"sse" why=""` {
		t.Errorf("commit: event %q, want the change to sse and nothing for the second poll", e)
	}
}

// TestWriteFailure checks that a failed write ends the attachment, is
// reported, and loses nothing.
func TestWriteFailure(t *testing.T) {
	t.Parallel()
	o := &Options{}
	ev := observe(o)
	s := newTestSession(t, newTestHandler(t, o))
	mustSend(t, s, "x")
	broken := newFake(t)
	broken.failWith(errors.New("broken pipe"))
	a := serve(t, s, transport.WebSocket, broken, transport.Stream, deliver(1, 0))
	if err := a.wait(t); err == nil || err.Error() != "broken pipe" {
		t.Fatalf("Serve = %v, want the write's error", err)
	}
	ev.next(t) // changed
	if e := ev.next(t); e != "lost websocket: broken pipe" {
		t.Errorf("event %q, want the lost transport", e)
	}
	b := attachStream(t, s, deliver(2, 0))
	b.ds.expect(t, `["o",2,0,"T",25000]`, `["m",1,"x"]`)
}

// TestBatchLimit checks that no downstream batch exceeds MaxBatch, which
// is what a client's read limit allows (PROTOCOL.md section 4, Batches).
func TestBatchLimit(t *testing.T) {
	t.Parallel()
	const maxBatch = 6*8 + 64 // the least MaxBatch for MaxMessage 8
	s := newTestSession(t, newTestHandler(t, &Options{MaxMessage: 8, MaxBatch: maxBatch}))
	const n = 30
	for range n {
		mustSend(t, s, "12345678")
	}
	a := attachStream(t, s, deliver(1, 0))
	for seq := 0; seq < n; {
		for _, f := range a.ds.next(t) {
			if f.Type.IsMessage() {
				seq++
				if f.Seq != uint64(seq) {
					t.Fatalf("message %d arrived as %d", seq, f.Seq)
				}
			}
		}
	}
	if got := a.ds.largestBatch(); got > maxBatch {
		t.Errorf("a batch of %d bytes was written, MaxBatch is %d", got, maxBatch)
	}
}

// TestStreamTurn checks that one write of a stream carries at most
// streamTurn bytes of messages (the first always goes), however large the
// backlog, while a poll carries up to MaxBatch.
func TestStreamTurn(t *testing.T) {
	t.Parallel()
	const size, n = 20 << 10, 12 // 240 KiB of backlog
	for _, tc := range []struct {
		name   string
		attach func(testing.TB, *Session, transport.AttachParams) *served
		limit  int
	}{
		{"stream", attachStream, streamTurn + size},
		{"poll", attachPoll, 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newTestSession(t, newTestHandler(t, nil))
			for range n {
				mustSend(t, s, strings.Repeat("x", size))
			}
			a := tc.attach(t, s, deliver(1, 0))
			batches := 0
			for seq := 0; seq < n; batches++ {
				for _, f := range a.ds.next(t) {
					if f.Type.IsMessage() {
						seq++
					}
				}
			}
			if got := a.ds.largestBatch(); got > tc.limit {
				t.Errorf("a write of %d bytes, want at most %d", got, tc.limit)
			}
			if tc.name == "stream" && batches < n*size/streamTurn {
				t.Errorf("%d writes carried %d KiB: the turn bound did not split them", batches, n*size>>10)
			}
		})
	}
}

func TestServeFinishedSession(t *testing.T) {
	t.Parallel()
	s := newTestSession(t, newTestHandler(t, nil))
	s.CloseNow()
	ds := newFake(t)
	if err := s.newAttachment(transport.WebSocket, deliver(1, 0)).Serve(ds, transport.Stream); !errors.Is(err, errFinished) {
		t.Errorf("Serve on a finished session = %v, want errFinished", err)
	}
	if !ds.isClosed() {
		t.Error("the downstream is not closed")
	}
}

// TestTickets checks that attach tickets are single use, at most 8 per
// session (the oldest dropped), and valid for 60 s.
func TestTickets(t *testing.T) {
	t.Parallel()
	t.Run("single use", func(t *testing.T) {
		t.Parallel()
		var tk tickets
		tok := tk.mint()
		if tk.use("unknown") {
			t.Error("an unknown ticket was accepted")
		}
		if !tk.use(tok) {
			t.Fatal("a fresh ticket was refused")
		}
		if tk.use(tok) {
			t.Error("a ticket was accepted twice")
		}
	})
	t.Run("at most 8", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			var tk tickets
			var minted []string
			for range maxTickets + 1 {
				minted = append(minted, tk.mint())
				time.Sleep(time.Second)
			}
			if tk.use(minted[0]) {
				t.Error("the oldest of 9 tickets was kept")
			}
			for i, tok := range minted[1:] {
				if !tk.use(tok) {
					t.Errorf("ticket %d of 9 was dropped", i+2)
				}
			}
		})
	})
	t.Run("expire after 60 s", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			var tk tickets
			early, late := tk.mint(), tk.mint()
			time.Sleep(60*time.Second - time.Millisecond)
			if !tk.use(early) {
				t.Error("a ticket expired before 60 s")
			}
			time.Sleep(time.Millisecond)
			if tk.use(late) {
				t.Error("a ticket was accepted after 60 s")
			}
		})
	})
}
