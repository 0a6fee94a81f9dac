package client

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seed-544bbf9f/comet/transport"
)

// whyUpgraded is the reason of an attach that probes WebSocket in the
// background, to take the session over from another transport
// (PROTOCOL.md section 5).
const whyUpgraded = "upgraded"

// maxUpgradeDelay caps the wait between background probes of WebSocket.
const maxUpgradeDelay = 5 * time.Minute

// upgradeState is what the supervisor and the upgrade loop share, guarded
// by the Conn's mutex.
type upgradeState struct {
	stop    context.CancelFunc // ends the attachment being served; nil between attachments
	pending *wsAttachment      // a WebSocket proven both ways, for the supervisor to commit
}

// serve serves a until it ends, with a context that an upgrade cancels to
// replace it.
func (c *Conn) serve(a attachment) error {
	ctx, stop := context.WithCancel(c.ctx)
	defer stop()
	c.mu.Lock()
	c.up.stop = stop
	c.wakeLocked()
	c.mu.Unlock()
	err := a.serve(ctx)
	c.mu.Lock()
	c.up.stop = nil
	c.mu.Unlock()
	return err
}

// upgradeLoop probes WebSocket in the background while the session is
// carried by another transport, and hands a WebSocket that works both
// ways to the supervisor, which commits it. The wait before a probe
// starts at Options.UpgradeDelay and doubles after each failure, up to
// maxUpgradeDelay. The shim does the same once a page has remembered a
// network where WebSocket failed; a Go program lives longer than a page,
// so the probes go on for the Conn's life.
func (c *Conn) upgradeLoop() {
	if c.opts.UpgradeDelay < 0 || !slices.Contains(c.order, transport.WebSocket) || len(c.order) == 1 {
		// Nothing to return to, or nothing else to return from: a
		// session on WebSocket alone keeps no goroutine waiting here.
		return
	}
	delay := c.opts.UpgradeDelay
	for {
		// Arriving messages change nothing it waits for: it sleeps
		// through them.
		if err := c.waitOn(c.ctx, &c.control, c.upgradeWantedLocked); err != nil {
			return
		}
		if !sleep(c.ctx, delay) {
			return
		}
		c.mu.Lock()
		wanted := c.upgradeWantedLocked()
		c.mu.Unlock()
		if !wanted {
			continue
		}
		w, err := c.probeWebSocket()
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			delay = min(2*delay, maxUpgradeDelay)
			c.log.Debug("comet: WebSocket probe failed", "err", err, "next", delay)
			continue
		}
		if c.offerUpgrade(w) {
			delay = c.opts.UpgradeDelay
		} else {
			w.ws.Close()
		}
	}
}

// upgradeWantedLocked reports whether WebSocket should be probed: an
// attachment of another transport is being served, no upgrade awaits its
// commit, and WebSocket was not left after early deaths.
func (c *Conn) upgradeWantedLocked() bool {
	return c.up.stop != nil && c.up.pending == nil && c.closeErr == nil &&
		c.current != transport.WebSocket && !c.demotedLocked(transport.WebSocket)
}

// probeWebSocket attaches a WebSocket as a probe (d=0), which delivers
// nothing, and proves it both ways: a probe frame sent on it must be
// echoed on it within the attach timeout (PROTOCOL.md section 5).
func (c *Conn) probeWebSocket() (*wsAttachment, error) {
	a, err := c.attachWebSocket(whyUpgraded, c.lim.attachTimeout)
	if err != nil {
		return nil, err
	}
	w := a.(*wsAttachment)
	if err := c.expectEcho(w); err != nil {
		w.ws.Close()
		return nil, err
	}
	return w, nil
}

// expectEcho sends a probe on w and reads until its echo arrives.
// Nothing but heartbeats may come before it: a probe receives no
// messages.
func (c *Conn) expectEcho(w *wsAttachment) error {
	if w.superseded {
		return errSuperseded
	}
	stop := context.AfterFunc(c.ctx, func() { w.ws.Close() })
	defer stop()
	token := cacheBuster()
	var b transport.Batch
	b.Append(&transport.Frame{Type: transport.TypeProbe, Attempt: w.attempt, Token: token})
	deadline := time.Now().Add(c.lim.attachTimeout)
	w.ws.SetWriteDeadline(deadline)
	if err := w.ws.WriteMessage(websocket.TextMessage, b.Bytes); err != nil {
		return err
	}
	w.ws.SetReadDeadline(deadline)
	for echoed := false; !echoed; {
		typ, frames, err := c.readWSBatch(w.ws)
		if err == nil && typ != websocket.TextMessage {
			err = fmt.Errorf("comet: binary message on a WebSocket probe")
		}
		if err != nil {
			return err
		}
		for _, f := range frames {
			switch {
			case f.Type == transport.TypeEcho && f.Token == token:
				echoed = true
			case f.Type == transport.TypeHeartbeat || f.Type == transport.TypeEcho:
			default:
				return fmt.Errorf("comet: unexpected %s frame on a WebSocket probe", f.Type)
			}
		}
	}
	w.ws.SetReadDeadline(time.Time{})
	w.ws.SetWriteDeadline(time.Time{})
	return nil
}

// offerUpgrade hands a proven WebSocket to the supervisor and ends the
// attachment it serves, unless the upgrade is no longer wanted.
func (c *Conn) offerUpgrade(w *wsAttachment) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.upgradeWantedLocked() {
		return false
	}
	c.up.pending = w
	c.up.stop()
	return true
}

// takeUpgrade returns the WebSocket the upgrade loop proved, if any.
func (c *Conn) takeUpgrade() *wsAttachment {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.up.pending
	c.up.pending = nil
	return w
}

// commitUpgrade makes the proven WebSocket w the delivering attachment
// with ["u",attempt]. The attachment it replaces has stopped, so nothing
// else asks for delivery meanwhile; the server resends downstream what
// the client has not acknowledged, and w's writer resends upstream what
// the server has not (duplicates are dropped by sequence number on either
// side), so nothing is lost or repeated.
func (c *Conn) commitUpgrade(w *wsAttachment) error {
	var b transport.Batch
	b.Append(&transport.Frame{Type: transport.TypeCommit, Attempt: w.attempt})
	w.ws.SetWriteDeadline(time.Now().Add(c.lim.attachTimeout))
	err := w.ws.WriteMessage(websocket.TextMessage, b.Bytes)
	w.ws.SetWriteDeadline(time.Time{})
	if err != nil {
		w.ws.Close()
		return fmt.Errorf("comet: WebSocket upgrade: %w", err)
	}
	c.mu.Lock()
	from := c.current
	c.heardLocked(time.Now())
	c.mu.Unlock()
	c.switchTo(from, transport.WebSocket, whyUpgraded)
	return nil
}

// dropUpgrade closes a proven WebSocket that was never committed, when
// the session ends.
func (c *Conn) dropUpgrade() {
	if w := c.takeUpgrade(); w != nil {
		w.ws.Close()
	}
}
