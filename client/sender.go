package client

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// sendLoop POSTs what is due upstream on the transports without an
// upstream of their own (long-polling and the streams), one POST at a
// time: the messages not yet accepted and, once the server's close has
// arrived, our ack of it. A network failure or a partial ack (the
// server's inbound buffer was full) resends the rest after a pause that
// starts at ackDelay and doubles to 1 s (PROTOCOL.md section 6) for as
// long as the server accepts nothing; a partial ack that made progress
// starts it over, since the server's application is reading.
//
// On a stream, keepalive is its heartbeat interval, and the loop also
// POSTs our ack by the cadence of PROTOCOL.md section 6 (a POST with
// only the key frame when nothing else is due), and after keepalive
// without any POST (the prober's count): while Recv's full buffer holds the reader back, no
// heartbeat is read and answered, and the server would otherwise take the
// client for gone. On long-polling (keepalive 0) every poll carries the
// ack instead, but for the messages that POST answers carry (in a session
// that agreed to them), which no poll answers soon: those are acked by
// the cadence too.
//
// A POST whose answer could hold messages and never came ends the loop:
// the path that delivers has gone past them, and only a new attachment,
// which resends after our ack, brings them back.
func (c *Conn) sendLoop(ctx context.Context, keepalive time.Duration) error {
	var b transport.Batch
	var sent uint64 // the highest sequence number the server accepted on this path
	var pause time.Duration
	ackTimer := time.NewTimer(time.Hour)
	ackTimer.Stop()
	defer ackTimer.Stop()
	var idle <-chan time.Time
	if keepalive > 0 {
		// Ticking at half the interval keeps every gap between POSTs under
		// one and a half intervals; the server waits two.
		t := time.NewTicker(keepalive / 2)
		defer t.Stop()
		idle = t.C
	}
	beat := false
	for {
		c.mu.Lock()
		ackDue, wait := false, time.Duration(0)
		if keepalive > 0 || c.replies {
			ackDue, wait = c.in.ackDue(time.Now(), c.lim.ack)
		}
		if !c.out.PendingAfter(sent) && !(c.remoteClosed && c.in.acked < c.in.n) && !ackDue && !beat {
			ch := c.control.Wait()
			c.mu.Unlock()
			if wait > 0 {
				ackTimer.Reset(wait)
			}
			select {
			case <-ch:
			case <-ackTimer.C:
			case <-idle:
				c.mu.Lock()
				beat = time.Since(c.lastPost) >= keepalive
				c.mu.Unlock()
			case <-ctx.Done():
				return ctx.Err()
			}
			ackTimer.Stop()
			continue
		}
		b.Reset()
		ack := c.appendKeyLocked(&b, c.tickets.low(time.Now()))
		last := c.out.AppendTo(&b, sent, c.lim.maxBatch)
		carried := b.Len() > 1
		c.mu.Unlock()

		accepted, err := c.post(ctx, b.Bytes, ack)
		beat = false
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			he := refusal(err, "")
			if he != nil && he.Status != http.StatusTooManyRequests &&
				he.Status != http.StatusServiceUnavailable {
				return err
			}
			// A 503 may come after the server took replies for the answer
			// (a node's call to the session's owner that timed out): only a
			// 429, refused before anything was applied, leaves none behind.
			if c.replies && carried && (he == nil || he.Status != http.StatusTooManyRequests) {
				return fmt.Errorf("comet: a POST whose answer may have held messages failed: %w", err)
			}
			// What the server took is unknown: resend all it has not
			// acknowledged; it drops the duplicates.
			sent = 0
			pause = nextPause(pause, c.lim.ackDelay)
			if !sleep(ctx, pause) {
				return ctx.Err()
			}
			continue
		}
		c.mu.Lock()
		c.wroteLocked(accepted)
		c.mu.Unlock()
		if accepted >= last {
			sent, pause = last, 0
			continue
		}
		if accepted > sent {
			pause = 0 // progress: the server's application is reading
		}
		sent = accepted
		pause = nextPause(pause, c.lim.ackDelay)
		if !sleep(ctx, pause) {
			return ctx.Err()
		}
	}
}
