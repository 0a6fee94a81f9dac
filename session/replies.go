package session

import (
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// Replies in POST answers (PROTOCOL.md section 6). A long-polling client
// that sends a message and reads the application's reply pays two
// requests per round trip otherwise: the POST, and the poll that carries
// the reply. A client that asked for them at negotiate gets, in the
// answer to a POST that carried messages, the downstream messages that
// are due by the time it is answered, numbered as on any attachment and
// kept in the window until acknowledged; a POST that brought a new
// message waits up to Options.ReplyWait for one.
//
// The delivering attachment and the POST answer take messages from one
// cursor, the attachment's, so that neither sends what the other did:
// while a POST waits, the attachment leaves messages to it (collect), and
// it is woken for what is left when no POST waits any more. A client
// merges both paths by sequence number, as a reply may overtake the poll
// that carries the message before it. A POST answer the client never
// reads loses nothing: the next delivering attachment resends after the
// client's ack, as after any drop; for that, a POST names the attachment
// its client delivers by (see appendReplies).

// appendReplies appends to b, a POST's answer, the messages due after the
// delivering attachment's cursor, waiting up to ReplyWait for one if none
// is and wait is set, and advances the cursor past them. The answer is
// bounded by MaxBatch, as a poll's is. Called with s.mu held, which it
// lets go while it waits.
//
// The POST names, by its attempt, the attachment its client delivers by.
// It takes messages only while that one delivers, and only if no other
// took delivery meanwhile: a client that gives up on a POST (its stream
// recycled, a drop) attaches again, and the attachment that begins then
// resends after the ack it carries. Were the POST to take messages from
// that attachment's cursor after it began, they would be in neither.
// While none delivers (between polls), the POST takes nothing: the next
// poll, which the client sends at once, would resend it anyway.
func (s *Session) appendReplies(b *transport.Batch, attempt uint64, wait bool) {
	a := s.deliverer
	if a == nil || a.params.Attempt != attempt {
		return
	}
	if wait && !s.out.PendingAfter(a.cursor) {
		s.replyWaiting++
		timer := time.NewTimer(s.opts.ReplyWait)
		for !s.out.PendingAfter(a.cursor) && s.deliverer == a {
			ready := s.replyReady.Wait()
			s.mu.Unlock()
			timeout := false
			select {
			case <-ready:
			case <-timer.C:
				timeout = true
			}
			s.mu.Lock()
			if timeout {
				break
			}
		}
		timer.Stop()
		s.replyWaiting--
	}
	if s.deliverer == a {
		start := len(b.Frames)
		a.cursor = s.out.AppendTo(b, a.cursor, s.opts.MaxBatch)
		n := 0
		for i := start; i < len(b.Frames); i++ {
			if b.Frames[i].Type.IsMessage() {
				n++
			}
		}
		if n > 0 {
			s.h.counters.traffic.at(s.stripe, s.tidx).msgsOut.Add(uint64(n))
		}
	}
	// What the answer left, or what came for the attachment that took
	// delivery while this POST waited.
	if d := s.deliverer; d != nil && s.replyWaiting == 0 && s.out.PendingAfter(d.cursor) {
		d.wake()
	}
}
