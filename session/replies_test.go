package session

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// replySession returns a session that agreed to replies in POST answers
// (or not, if agreed is false), whose application, started here, answers
// each message with "re:" and the message after delay; a negative delay
// never answers.
func replySession(t *testing.T, o *Options, agreed bool, delay time.Duration) *Session {
	s := newTestSession(t, newTestHandler(t, o))
	s.mu.Lock()
	s.replies = agreed
	s.mu.Unlock()
	go func() {
		for {
			_, p, err := s.Recv(s.Context())
			if err != nil {
				return
			}
			if delay < 0 {
				continue
			}
			time.Sleep(delay)
			if s.Send(context.Background(), transport.Text, append([]byte("re:"), p...)) != nil {
				return
			}
		}
	}()
	return s
}

// postLines POSTs frames written as on the wire after a key frame holding
// ack, naming the attachment of attempt 1, and returns the answer's frames
// as wire renders them.
func postLines(t *testing.T, s *Session, ack uint64, lines ...string) []string {
	t.Helper()
	return postFrom(t, s, 1, ack, lines...)
}

// postFrom is postLines naming the attachment of attempt.
func postFrom(t *testing.T, s *Session, attempt, ack uint64, lines ...string) []string {
	t.Helper()
	body := fmt.Appendf(nil, "[\"k\",%q,%d,0]\n%s", s.secret, ack, batch(lines...))
	answer, err := s.post(body, attempt)
	if err != nil {
		t.Fatalf("POST %q: %v", lines, err)
	}
	frames, err := transport.DecodeBatch(answer)
	if err != nil {
		t.Fatalf("POST answer %q: %v", answer, err)
	}
	return wire(frames)
}

// TestReplyInPostAnswer: a POST that brings a message waits up to
// ReplyWait for a reply and carries it, numbered as on the poll, which
// then does not; a reply after the bound goes by the poll; a POST that
// brings no message, and any POST in a session that did not agree, is
// answered at once with its ack alone, as before.
func TestReplyInPostAnswer(t *testing.T) {
	t.Parallel()
	const bound = 2 * time.Millisecond
	const hold = 20 * time.Second
	for _, tc := range []struct {
		name     string
		agreed   bool
		delay    time.Duration // the application's, before its reply; < 0: none
		lines    []string      // after the key frame
		answer   []string
		after    time.Duration // the POST's answer
		poll     []string      // what the parked poll delivers by the end
		pollAt   time.Duration // when, from the POST
		timeouts int
	}{
		{"reply within the bound", true, time.Millisecond, []string{`["m",1,"x"]`},
			[]string{`["a",1]`, `["m",1,"re:x"]`}, time.Millisecond, nil, 0, 0},
		{"reply at once", true, 0, []string{`["m",1,"x"]`},
			[]string{`["a",1]`, `["m",1,"re:x"]`}, 0, nil, 0, 0},
		{"reply after the bound", true, 3 * time.Millisecond, []string{`["m",1,"x"]`},
			[]string{`["a",1]`}, bound, []string{`["o",1,1,"T",20000]`, `["m",1,"re:x"]`}, 3 * time.Millisecond, 1},
		{"no reply", true, -1, []string{`["m",1,"x"]`},
			[]string{`["a",1]`}, bound, nil, 0, 1},
		{"no message", true, 0, nil,
			[]string{`["a",0]`}, 0, nil, 0, 0},
		{"not agreed", false, 0, []string{`["m",1,"x"]`},
			[]string{`["a",1]`}, 0, []string{`["o",1,1,"T",20000]`, `["m",1,"re:x"]`}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				s := replySession(t, &Options{ReplyWait: bound, Hold: hold}, tc.agreed, tc.delay)
				p := attachPoll(t, s, deliver(1, 0))
				synctest.Wait()
				start := time.Now()
				got := postLines(t, s, 0, tc.lines...)
				if d := time.Since(start); d != tc.after {
					t.Errorf("the POST was answered after %v, want %v", d, tc.after)
				}
				if !slices.Equal(got, tc.answer) {
					t.Fatalf("POST answer %q, want %q", got, tc.answer)
				}
				time.Sleep(tc.pollAt - time.Since(start))
				synctest.Wait()
				if tc.poll == nil {
					p.ds.expectBatches(t)
				} else {
					p.ds.expectBatches(t, tc.poll)
				}
			})
		})
	}
}

// TestReplyAdvancesThePoll: what a POST answer carried is not what the
// poll delivers next: a message sent later, with no POST waiting, goes by
// the poll, numbered after the reply.
func TestReplyAdvancesThePoll(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := replySession(t, &Options{Hold: 20 * time.Second}, true, 0)
		p := attachPoll(t, s, deliver(1, 0))
		synctest.Wait()
		if got, want := postLines(t, s, 0, `["m",1,"x"]`), []string{`["a",1]`, `["m",1,"re:x"]`}; !slices.Equal(got, want) {
			t.Fatalf("POST answer %q, want %q", got, want)
		}
		synctest.Wait()
		p.ds.expectBatches(t)
		mustSend(t, s, "later")
		synctest.Wait()
		p.ds.expectBatches(t, []string{`["o",1,1,"T",20000]`, `["m",2,"later"]`})
		// Between polls no POST answer carries a message: the next poll,
		// which resends after its ack, does.
		if got, want := postLines(t, s, 0, `["m",2,"y"]`), []string{`["a",2]`}; !slices.Equal(got, want) {
			t.Fatalf("POST answer between polls %q, want %q", got, want)
		}
		p2 := attachPoll(t, s, deliver(2, 2))
		synctest.Wait()
		p2.ds.expectBatches(t, []string{`["o",2,2,"T",20000]`, `["m",3,"re:y"]`})
	})
}

// TestReplyNamesTheAttachment: a POST that names another attachment than
// the one that delivers, or none, gets its ack alone at once; one during
// whose wait another attachment takes delivery gets none either, and the
// reply goes by that attachment: its client may have given up on the
// POST for it.
func TestReplyNamesTheAttachment(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := replySession(t, &Options{Hold: 20 * time.Second, ReplyWait: 2 * time.Millisecond}, true, time.Millisecond)
		for i, named := range []uint64{0, 5} {
			attempt, seq := uint64(i+1), uint64(i+1)
			p := attachPoll(t, s, deliver(attempt, seq-1))
			synctest.Wait()
			start := time.Now()
			got := postFrom(t, s, named, seq-1, fmt.Sprintf(`["m",%d,"x"]`, seq))
			if want := []string{fmt.Sprintf(`["a",%d]`, seq)}; !slices.Equal(got, want) || time.Since(start) != 0 {
				t.Fatalf("POST naming attempt %d: answer %q after %v, want %q at once", named, got, time.Since(start), want)
			}
			time.Sleep(time.Millisecond)
			synctest.Wait()
			p.ds.expectBatches(t, []string{fmt.Sprintf(`["o",%d,%d,"T",20000]`, attempt, seq), fmt.Sprintf(`["m",%d,"re:x"]`, seq)})
		}

		// Poll 3 parks; a POST naming it waits, and poll 4 takes delivery
		// meanwhile.
		p3 := attachPoll(t, s, deliver(3, 2))
		synctest.Wait()
		answered := make(chan []string)
		go func() { answered <- postFrom(t, s, 3, 2, `["m",3,"y"]`) }()
		synctest.Wait()
		p4 := attachPoll(t, s, deliver(4, 2))
		synctest.Wait()
		p3.ds.expectBatches(t, []string{`["o",3,3,"T",20000]`, `["s"]`})
		if got, want := <-answered, []string{`["a",3]`}; !slices.Equal(got, want) {
			t.Fatalf("POST answer after a takeover %q, want %q", got, want)
		}
		synctest.Wait()
		p4.ds.expectBatches(t, []string{`["o",4,3,"T",20000]`, `["m",3,"re:y"]`})
	})
}

// TestReplyClose: a close the application sends in reply travels in the
// POST's answer, in sequence, as any message.
func TestReplyClose(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := newTestSession(t, newTestHandler(t, &Options{Hold: 20 * time.Second}))
		s.replies = true
		go func() {
			if _, _, err := s.Recv(s.Context()); err == nil {
				s.Close(4000, "bye")
			}
		}()
		p := attachPoll(t, s, deliver(1, 0))
		synctest.Wait()
		got := postLines(t, s, 0, `["m",1,"x"]`)
		if want := []string{`["a",1]`, `["c",1,4000,"bye",0]`}; !slices.Equal(got, want) {
			t.Fatalf("POST answer %q, want %q", got, want)
		}
		synctest.Wait()
		p.ds.expectBatches(t)
	})
}

// TestReplyBoundedByMaxBatch: a POST answer holds at most MaxBatch bytes,
// as a poll's does, and goes on where the delivering attachment stopped;
// the next answer goes on where it stopped.
func TestReplyBoundedByMaxBatch(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const maxMessage = 10 // MaxBatch becomes 6*10+64 = 124
		s := replySession(t, &Options{MaxMessage: maxMessage, MaxBatch: 1}, true, -1)
		for i := range 30 {
			mustSend(t, s, fmt.Sprintf("%010d", i))
		}
		// A stream whose first write, which takes the first messages,
		// never ends.
		ds := newFake(t)
		ds.holdWrites()
		serve(t, s, transport.SSE, ds, transport.Stream, deliver(1, 0))
		<-ds.held
		s.mu.Lock()
		cursor := s.deliverer.cursor
		s.mu.Unlock()
		body := fmt.Appendf(nil, "[\"k\",%q,0,0]\n[\"m\",1,\"x\"]\n", s.secret)
		answer, err := s.post(body, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(answer) > s.opts.MaxBatch {
			t.Fatalf("POST answer of %d bytes, MaxBatch %d", len(answer), s.opts.MaxBatch)
		}
		frames, err := transport.DecodeBatch(answer)
		if err != nil {
			t.Fatal(err)
		}
		first := wire(frames)
		if want := fmt.Sprintf(`["m",%d,"%010d"]`, cursor+1, cursor); len(first) < 2 || first[1] != want {
			t.Fatalf("POST answer %q does not go on with %s", first, want)
		}
		n := cursor + uint64(len(first)-1)
		second := postFrom(t, s, 1, 0, `["m",2,"y"]`)
		if want := fmt.Sprintf(`["m",%d,"%010d"]`, n+1, n); len(second) < 2 || second[1] != want {
			t.Fatalf("the next POST answer %q does not go on with %s", second, want)
		}
	})
}

// TestRepliesLosslessWithConcurrentPolls: messages split between POST
// answers and polls that answer meanwhile (the application replies to
// each message, within the bound or not, while another goroutine of it
// pushes messages of its own at any moment) arrive once each, in a merged
// sequence without a gap: no message goes by both paths, and none by
// neither. The client is modelled as the Go client behaves: it polls with
// the ack of everything it has, and POSTs one at a time, never while a
// poll's attach is on its way.
func TestRepliesLosslessWithConcurrentPolls(t *testing.T) {
	t.Parallel()
	const messages, pushes = 300, 300
	// Every message fits the inbound buffer: the POSTs below are not
	// resent, as a client resends what the server did not take.
	s := newTestSession(t, newTestHandler(t, &Options{ReplyWait: time.Millisecond, InboundMessages: messages}))
	s.replies = true
	go func() {
		for {
			_, p, err := s.Recv(s.Context())
			if err != nil {
				return
			}
			if s.Send(context.Background(), transport.Text, append([]byte("re:"), p...)) != nil {
				return
			}
		}
	}()
	go func() {
		for i := range pushes {
			runtime.Gosched()
			if s.Send(context.Background(), transport.Text, fmt.Appendf(nil, "push %d", i)) != nil {
				return
			}
		}
	}()
	var mu sync.Mutex // the client's state; held across each POST and each poll's attach
	seen := map[uint64]int{}
	var have uint64    // merged: everything up to have has arrived
	var current uint64 // the attempt of the latest poll
	inAnswers := 0
	all := make(chan struct{}) // closed once every reply has arrived
	record := func(frames []transport.Frame, path string) {
		for _, f := range frames {
			if f.Type != transport.TypeText {
				continue
			}
			seen[f.Seq]++
			if seen[f.Seq] > 1 {
				t.Errorf("message %d (%q) arrived twice, the second time by the %s", f.Seq, f.Payload, path)
			}
			if path == "POST answer" {
				inAnswers++
			}
		}
		for seen[have+1] > 0 {
			have++
		}
		if have == messages+pushes {
			close(all)
		}
	}
	done := make(chan struct{})
	polled := make(chan struct{})
	parked := make(chan struct{}, 1) // a poll has attached since the last look
	go func() {
		defer close(polled)
		for attempt := uint64(1); ; attempt++ {
			mu.Lock()
			ack := have
			current = attempt
			ds := newFakePoll(t)
			a := s.newAttachment(transport.LongPoll, deliver(attempt, ack))
			exited := make(chan struct{})
			go func() {
				defer close(exited)
				a.Serve(ds, transport.Poll)
			}()
			// The attach takes delivery with the ack it carries: a reply
			// a POST answered meanwhile would be resent by the rule of
			// every attach, which is not what this test looks for.
			<-a.Started()
			mu.Unlock()
			select {
			case parked <- struct{}{}:
			default:
			}
			select {
			case frames := <-ds.batches:
				mu.Lock()
				record(frames, "poll")
				mu.Unlock()
				<-exited
			case <-done:
				a.End(nil)
				<-exited
				return
			}
		}
	}()
	for i := uint64(1); i <= messages; i++ {
		// POST while a poll is parked, as the Go client mostly does: it
		// polls again as soon as a poll is answered. This also keeps the
		// POSTs from starving the poller of mu.
		for {
			s.mu.Lock()
			delivering := s.deliverer != nil
			s.mu.Unlock()
			if delivering {
				break
			}
			<-parked
		}
		mu.Lock()
		body := fmt.Appendf(nil, "[\"k\",%q,%d,0]\n[\"m\",%d,\"%d\"]\n", s.secret, have, i, i)
		answer, err := s.post(body, current)
		if err != nil {
			mu.Unlock()
			t.Fatal(err)
		}
		frames, err := transport.DecodeBatch(answer)
		if err != nil {
			mu.Unlock()
			t.Fatal(err)
		}
		record(frames, "POST answer")
		mu.Unlock()
	}
	// The last replies go by the poll, which the poller collects.
	select {
	case <-all:
	case <-time.After(waitLimit):
		mu.Lock()
		t.Fatalf("%d of %d replies arrived", have, messages+pushes)
	}
	close(done)
	<-polled
	mu.Lock()
	defer mu.Unlock()
	for seq := range seen {
		if seq > messages+pushes {
			t.Errorf("message %d was never sent", seq)
		}
	}
	t.Logf("%d messages, %d of them in POST answers", messages+pushes, inAnswers)
}
