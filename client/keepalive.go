package client

import (
	"errors"
	"slices"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// Reasons reported on the attach after a drop that the keep-alive
// judgement explained (PROTOCOL.md sections 5 and 7).
const (
	whyIdleCut    = "idle_cut"
	whyEarlyDeath = "early_death"
)

// Timings of the keep-alive judgement.
const (
	// earlyLife is the lifetime under which an attachment's drop counts as
	// an early death.
	earlyLife = 10 * time.Second
	// minIdleCut is the shortest silence taken for a proxy's idle timeout:
	// below it, a drop after the same silence twice is chance.
	minIdleCut = time.Second
	// earlyDeaths is how many early deaths in a row, with no idle timeout
	// to explain them, demote a transport.
	earlyDeaths = 3
)

// judgement is the Conn's memory of how its attachments ended, from which
// it decides what an unexpected drop says about the network. It is
// guarded by the Conn's mutex.
type judgement struct {
	silence time.Duration   // the downstream silence before the previous drop; 0 if under minIdleCut
	early   int             // early deaths in a row
	heard   time.Time       // when the attachment in use last received a frame
	demoted map[string]bool // transports left after early deaths, tried again only when nothing else is left
}

// verdict is what a drop says: nothing (why ""), a proxy's idle timeout
// to stay under by asking for heartbeats every heartbeat, or a transport
// to leave.
type verdict struct {
	why       string
	heartbeat time.Duration
	demote    bool
}

// judge classifies the unexpected drop of an attachment that lived for
// life and had heard nothing downstream for idle, under the heartbeat
// interval in force. Two drops after the same silence (within a second,
// or a tenth of it) are a proxy's idle timeout: ask for heartbeats at half
// that silence, if the server allows it (minHeartbeat) and it is shorter
// than the interval in force, rather than leave a transport that works.
// Otherwise, earlyDeaths attachments in a row that died within earlyLife
// demote the transport: something on the way lets it start and then
// kills it.
func (j *judgement) judge(life, idle, interval, minHeartbeat time.Duration) verdict {
	var v verdict
	if life < earlyLife {
		j.early++
	} else {
		j.early = 0
	}
	hb := idle / 2
	diff := idle - j.silence
	if diff < 0 {
		diff = -diff
	}
	switch {
	case idle >= minIdleCut && j.silence > 0 && diff <= max(time.Second, j.silence/10) && hb >= minHeartbeat && hb < interval:
		v = verdict{why: whyIdleCut, heartbeat: hb}
		j.early = 0
	case j.early >= earlyDeaths:
		v = verdict{why: whyEarlyDeath, demote: true}
		j.early = 0
	}
	j.silence = 0
	if idle >= minIdleCut {
		j.silence = idle
	}
	return v
}

// judgeDrop applies the keep-alive judgement to the attachment of
// transport name, begun at start, which ended with err, and returns the
// reason to report on the next attach ("" if the judgement has none). A
// drop the client decided on (a silent or buffered downstream, a recycled
// or superseded one) or that the server's close explains says nothing
// about the network, and is not judged.
func (c *Conn) judgeDrop(name string, start time.Time, err error) string {
	if errors.Is(err, errSilent) || errors.Is(err, errSuperseded) || errors.Is(err, errRecycled) || errors.Is(err, errBuffered) {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.remoteClosed || c.closeErr != nil {
		return ""
	}
	now := time.Now()
	heard := c.judge.heard
	if heard.Before(start) {
		heard = start
	}
	hi := c.lim.heartbeat
	if name == transport.LongPoll {
		hi = c.lim.hold
	}
	interval := clampInterval(time.Duration(c.lim.hb)*time.Millisecond, c.lim.minHeartbeat, hi)
	v := c.judge.judge(now.Sub(start), now.Sub(heard), interval, c.lim.minHeartbeat)
	switch {
	case v.heartbeat > 0:
		c.lim.hb = uint64(v.heartbeat.Milliseconds())
		c.log.Info("comet: connections die after the same silence: asking for shorter heartbeats",
			"transport", name, "silence", now.Sub(heard), "heartbeat", v.heartbeat)
	case v.demote && len(c.order) > 1:
		if c.judge.demoted == nil {
			c.judge.demoted = make(map[string]bool)
		}
		c.judge.demoted[name] = true
		c.log.Info("comet: attachments die right after they start: leaving the transport", "transport", name)
	case v.demote:
		return "" // a forced transport has nothing to be demoted to
	}
	return v.why
}

// heardLocked records that a frame arrived on the attachment in use.
func (c *Conn) heardLocked(now time.Time) { c.judge.heard = now }

// demotedLocked reports whether the transport name was left after early
// deaths.
func (c *Conn) demotedLocked(name string) bool { return c.judge.demoted[name] }

// rotateAfter returns order starting after name (wrapping round), so that
// a demoted transport is followed by the next one in the order.
func rotateAfter(order []string, name string) []string {
	i := slices.Index(order, name)
	return append(slices.Clone(order[i+1:]), order[:i+1]...)
}
