package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/seed-544bbf9f/comet/internal/logid"
	"github.com/seed-544bbf9f/comet/internal/window"
	"github.com/seed-544bbf9f/comet/transport"
)

// The handler's side of failover (durable.go has the session's): making a
// session's log, finding or taking over a session this node does not
// hold, and giving sessions up.

// agreement is what negotiate agreed with a session's client.
type agreement struct {
	Binary     bool `json:"binary,omitempty"`
	NoStatus   bool `json:"noStatus,omitempty"`
	BrokerCode bool `json:"brokerCode,omitempty"`
	LostCode   bool `json:"lostCode,omitempty"`
	Positions  bool `json:"positions,omitempty"`
	Replies    bool `json:"replies,omitempty"`
}

// agree sets what negotiate agreed. Called with s.mu held, before the
// session is shared.
func (s *Session) agree(a agreement) {
	s.binary, s.noStatus, s.brokerCode, s.lostCode = a.Binary, a.NoStatus, a.BrokerCode, a.LostCode
	s.positions, s.replies = a.Positions, a.Replies
}

// savedState is a session's state as its log keeps it: what a node that
// takes the session over needs to serve it as its first node did.
type savedState struct {
	Secret     string                             `json:"secret"`
	RemoteAddr string                             `json:"remoteAddr,omitempty"`
	ClientAddr netip.Addr                         `json:"clientAddr,omitzero"`
	Header     http.Header                        `json:"header,omitempty"`
	Cookies    []savedCookie                      `json:"cookies,omitempty"`
	Auth       []byte                             `json:"auth,omitempty"`
	HasAuth    bool                               `json:"hasAuth,omitempty"`
	Unsaved    bool                               `json:"unsaved,omitempty"` // Auth could not be saved
	Target     string                             `json:"target,omitempty"`
	Protocol   string                             `json:"protocol,omitempty"`
	Topics     map[string]transport.TopicPosition `json:"topics,omitempty"`
	Agreed     agreement                          `json:"agreed"`
}

type savedCookie struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Quoted bool   `json:"quoted,omitempty"`
}

// create records a new session's log, before its client learns of it.
func (c *cluster) create(ctx context.Context, id, secret string, info RequestInfo, agreed agreement) (*durable, error) {
	st := savedState{Secret: secret, RemoteAddr: info.RemoteAddr, ClientAddr: info.ClientAddr, Header: info.Header,
		Target: info.Target, Protocol: info.Protocol, Topics: info.Topics, Agreed: agreed}
	for _, ck := range info.Cookies {
		st.Cookies = append(st.Cookies, savedCookie{Name: ck.Name, Value: ck.Value, Quoted: ck.Quoted})
	}
	if info.Auth != nil {
		st.HasAuth = true
		if save := c.h.opts.SaveAuth; save == nil {
			st.Unsaved = true
		} else if b, err := save(info.Auth); err != nil {
			c.h.logger.Warn("comet: SaveAuth failed: the session cannot be taken over", "session", logid.Short(id), "err", err)
			st.Unsaved = true
		} else {
			st.Auth = b
		}
	}
	state, err := json.Marshal(&st)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.h.opts.BrokerTimeout)
	defer cancel()
	if err := c.store.CreateSession(ctx, id, c.node, state); err != nil {
		return nil, errors.Join(ErrBrokerUnavailable, err)
	}
	return &durable{store: c.store, epoch: 1, unsaved: st.Unsaved}, nil
}

// restore rebuilds a session this node has just claimed from its log l
// (at l.Epoch, the claimed epoch), registers it and starts its Serve,
// marked resumed. A session that was closing goes on closing, with no
// Serve; one whose Auth was not saved closes with 3009.
func (c *cluster) restore(l *SessionLog, id string) (*Session, error) {
	h := c.h
	var st savedState
	if err := json.Unmarshal(l.State, &st); err != nil {
		return nil, fmt.Errorf("comet: session state: %w", err)
	}
	info := RequestInfo{RemoteAddr: st.RemoteAddr, ClientAddr: st.ClientAddr, Header: st.Header, Target: st.Target,
		Protocol: st.Protocol, Topics: st.Topics}
	for _, ck := range st.Cookies {
		info.Cookies = append(info.Cookies, &http.Cookie{Name: ck.Name, Value: ck.Value, Quoted: ck.Quoted})
	}
	unsaved := st.Unsaved
	if st.HasAuth && !unsaved {
		if load := h.opts.LoadAuth; load == nil {
			unsaved = true
		} else if auth, err := load(st.Auth); err != nil {
			h.logger.Warn("comet: LoadAuth failed", "session", logid.Short(id), "err", err)
			unsaved = true
		} else {
			info.Auth = auth
		}
	}
	downs := make([]window.Entry, len(l.Down))
	for i, e := range l.Down {
		entry, err := decodeEntry(e.Data)
		if err != nil || e.Seq != l.Acked+uint64(i)+1 {
			return nil, fmt.Errorf("comet: session log entry %d: %w", e.Seq, errBadEntry)
		}
		downs[i] = entry
	}
	ins := make([]inMessage, 0, len(l.Up))
	var peerClose *transport.CloseError
	for i, e := range l.Up {
		if len(e.Data) == 0 || e.Seq != l.Committed+uint64(i)+1 {
			return nil, fmt.Errorf("comet: session log entry %d: %w", e.Seq, errBadEntry)
		}
		switch e.Data[0] {
		case upText:
			ins = append(ins, inMessage{typ: transport.Text, seq: e.Seq, p: e.Data[1:]})
		case upBinary:
			ins = append(ins, inMessage{typ: transport.Binary, seq: e.Seq, p: e.Data[1:]})
		case upClose:
			code, n := uvarint(e.Data[1:])
			if n <= 0 || code > 0xffff {
				return nil, errBadEntry
			}
			peerClose = &transport.CloseError{Code: transport.CloseCode(code), Reason: string(e.Data[1+n:]), Remote: true}
		case upDiscarded:
		default:
			return nil, errBadEntry
		}
	}

	s := newSession(h, id, st.Secret, info)
	s.mu.Lock()
	s.agree(st.Agreed)
	s.dur = &durable{store: c.store, epoch: l.Epoch, resumed: true, unsaved: unsaved, upKept: l.UpTop, downKept: l.DownTop,
		commit: l.Committed, wroteCommit: l.Committed, wroteAcked: l.Acked}
	s.out = window.Resume(h.opts.WindowMessages, h.opts.WindowBytes, l.Acked)
	for _, e := range downs {
		seq := s.out.Push(e)
		h.buffered.Add(s.stripe, int64(e.Size))
		if e.Type == transport.TypeClose {
			s.sentClose = seq
			if s.closeErr == nil {
				s.closeErr = e.Close
			}
		}
	}
	s.inSeq, s.lastRecv = l.UpTop, l.Committed
	for _, m := range ins {
		s.in = append(s.in, m)
		s.inBytes += len(m.p)
	}
	if peerClose != nil {
		s.recvClose = true
		if s.closeErr == nil {
			s.closeErr = peerClose
		}
	}
	// Its client has been attached, and lost its transport with the node:
	// it has the grace period to return, as after any cut.
	s.everAttached = true
	s.timer.Reset(h.opts.Grace)
	closing := s.closeErr != nil
	if closing {
		s.cancel()
		if s.sentClose != 0 && s.closeTimer == nil {
			s.closeTimer = time.AfterFunc(h.opts.Grace, s.finish)
		}
	}
	s.mu.Unlock()

	h.sessions.add(s)
	h.logger.Info("comet: session taken over", "session", logid.Short(id), "epoch", l.Epoch,
		"unacked", len(l.Down), "uncommitted", len(ins))
	if f := h.opts.Observer.SessionOpened; f != nil {
		f(s)
	}
	switch {
	case unsaved && !closing:
		s.mu.Lock()
		s.closeLostLocked("session state lost: its auth could not be restored")
		s.mu.Unlock()
	case s.sentClose != 0:
		// The application had closed it: the close is delivered, no
		// Serve runs again.
	default:
		h.serving.Add(1)
		go h.runApplication(s)
	}
	return s, nil
}

// closeLostLocked closes a session whose state is lost: with 3009 for a
// client that understands it, or else with the 3001 and retry hint an
// older client reconnects after. Called with s.mu held.
func (s *Session) closeLostLocked(reason string) {
	if s.lostCode {
		s.closeLocked(transport.CloseStateLost, reason, 0)
	} else {
		s.closeLocked(transport.CloseServerShutdown, reason, uint64(time.Second.Milliseconds()))
	}
}

// adoptTries bounds the claims of one request: each lost only to a node
// that claimed the session first, which the next try finds alive.
const adoptTries = 3

// adopt finds the session id for a request: the node that owns it, if it
// is alive and not this one; or the session itself, held here, or claimed
// here from its log because its owner is gone. It returns ErrSessionLost
// for a session the store does not know.
func (c *cluster) adopt(ctx context.Context, id string) (*Session, string, error) {
	// One claim a session at a time on this node: the others wait for it.
	var mine chan struct{}
	for mine == nil {
		if s := c.h.sessions.get(id); s != nil {
			return s, "", nil
		}
		c.mu.Lock()
		busy, ok := c.adopting[id]
		if !ok {
			mine = make(chan struct{})
			c.adopting[id] = mine
		}
		c.mu.Unlock()
		if ok {
			select {
			case <-busy:
			case <-ctx.Done():
				return nil, "", ctx.Err()
			}
		}
	}
	defer func() {
		c.mu.Lock()
		delete(c.adopting, id)
		c.mu.Unlock()
		close(mine)
	}()
	if s := c.h.sessions.get(id); s != nil {
		return s, "", nil
	}
	for range adoptTries {
		l, err := c.store.LoadSession(ctx, id)
		if err != nil {
			return nil, "", err
		}
		if l.Node != "" && l.Node != c.node && c.awaitAlive(l.Node) {
			return nil, l.Node, nil
		}
		if c.h.closing.Load() {
			// A node shutting down takes nothing over.
			return nil, "", ErrBrokerUnavailable
		}
		epoch, err := c.store.ClaimSession(ctx, id, c.node, l.Epoch)
		if errors.Is(err, ErrFenced) {
			continue // another node claimed it first: find it
		}
		if err != nil {
			return nil, "", err
		}
		// The log as it is now that no other node can write it: the
		// owner may have written between the load and the claim.
		if l, err = c.store.LoadSession(ctx, id); err != nil {
			return nil, "", err
		}
		if l.Epoch != epoch || l.Node != c.node {
			continue // claimed away again meanwhile: find it
		}
		s, err := c.restore(l, id)
		if err != nil {
			c.h.logger.Error("comet: session not taken over", "session", logid.Short(id), "err", err)
			return nil, "", ErrSessionLost
		}
		return s, "", nil
	}
	return nil, "", fmt.Errorf("%w: the session changed owner %d times", ErrBrokerUnavailable, adoptTries)
}

// locate finds a session this node does not hold, with failover: the
// session itself (taken over here), or the node that owns it. It answers
// the request itself and returns neither when it can do neither: 404 for
// a session that is gone, 503 while the store cannot be reached.
func (h *Handler) locate(w http.ResponseWriter, ctx context.Context, id string) (*Session, string) {
	c := h.cluster
	if err := c.available(); err != nil {
		h.writeCallError(w, err)
		return nil, ""
	}
	ctx, cancel := context.WithTimeout(ctx, h.opts.BrokerTimeout)
	defer cancel()
	s, owner, err := c.adopt(ctx, id)
	switch {
	case err == nil:
		return s, owner
	case errors.Is(err, ErrSessionLost):
		// The store does not know it: a session from before failover
		// was on, or one whose log the store lost, which the node that
		// made it may still run.
		return nil, h.foreignOwner(w, id)
	default:
		h.writeCallError(w, errors.Join(ErrBrokerUnavailable, err))
	}
	return nil, ""
}

// sweep takes over the sessions of node, which the broker says is gone,
// and those released, that no request has taken over meanwhile: their
// clients, which lost their transports with the node, come back on their
// own within a heartbeat, and this serves those that have nothing to say
// (their Serves run, and they end at their grace period if their clients
// never return). Every node sweeps; the store lets one claim each
// session.
func (c *cluster) sweep(node string) {
	if !c.sleep(c.h.opts.Heartbeat) {
		return
	}
	c.sweepNow(node)
	c.sweepNow("")
}

// sleep waits d, and reports false if the handler shut down first.
func (c *cluster) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.h.baseCtx.Done():
		return false
	}
}

// sweepNow takes over node's sessions ("": the released ones) while node
// stays gone.
func (c *cluster) sweepNow(node string) {
	ctx, cancel := context.WithTimeout(c.h.baseCtx, c.h.opts.BrokerTimeout)
	ids, err := c.store.NodeSessions(ctx, node)
	cancel()
	if err != nil {
		c.h.logger.Warn("comet: sessions of a lost node not listed", "node", node, "err", err)
		return
	}
	for _, id := range ids {
		if (node != "" && node != c.node && c.b.Alive(node)) || c.h.closing.Load() {
			return // it came back (it was only paused), or this one is going
		}
		ctx, cancel := context.WithTimeout(c.h.baseCtx, c.h.opts.BrokerTimeout)
		if _, _, err := c.adopt(ctx, id); err != nil && !errors.Is(err, ErrSessionLost) {
			c.h.logger.Debug("comet: session of a lost node not taken over", "session", logid.Short(id), "err", err)
		}
		cancel()
	}
}

// sweepOrphans runs once a node has started: after a heartbeat, by which
// it sees every live node, it takes over the sessions of the nodes that
// are gone, the released ones, and those of its own id's earlier life, as
// sweep does for a node that goes while this one runs.
func (c *cluster) sweepOrphans() {
	if !c.sleep(c.h.opts.Heartbeat) {
		return
	}
	ctx, cancel := context.WithTimeout(c.h.baseCtx, c.h.opts.BrokerTimeout)
	nodes, err := c.store.SessionNodes(ctx)
	cancel()
	if err != nil {
		c.h.logger.Warn("comet: the store's nodes not listed: their orphaned sessions wait for the next node", "err", err)
		return
	}
	for _, node := range nodes {
		// This node's own id too: a node restarted under its id finds
		// the sessions of its earlier life.
		if node != "" && node != c.node && c.b.Alive(node) {
			continue
		}
		c.sweepNow(node)
	}
}

// fenceAll gives up every session this node holds, without a word to
// their clients: its lease lapsed, so other nodes may own them now, and
// those that no node claimed are claimed again by the next request.
func (c *cluster) fenceAll() {
	c.h.sessions.each(func(s *Session) bool {
		if s.dur != nil {
			s.fence()
		}
		return true
	})
}

// LeaseLapsed implements Receiver.
func (c *cluster) LeaseLapsed() {
	if c.store != nil {
		c.h.logger.Warn("comet: this node's lease lapsed: its sessions are given up to the other nodes")
		go c.fenceAll()
	}
}

// StoreLost implements Receiver: each session whose log is gone closes
// with 3009, so that its client knows that the session could no longer
// outlive this node.
func (c *cluster) StoreLost() {
	if c.store == nil {
		return
	}
	c.h.logger.Warn("comet: the broker's store lost the session logs: their sessions close")
	c.h.sessions.each(func(s *Session) bool {
		if d := s.dur; d != nil {
			s.mu.Lock()
			if !d.fenced {
				s.loseLocked("session state lost: the store restarted empty")
			}
			s.mu.Unlock()
		}
		return true
	})
}

// forgetLog deletes the log of a session that has ended.
func (h *Handler) forgetLog(id string, d *durable) {
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.BrokerTimeout)
	defer cancel()
	if err := d.store.DeleteSession(ctx, id, d.epoch); err != nil {
		h.logger.Debug("comet: session log not deleted", "session", logid.Short(id), "err", err)
	}
}

// handOver gives the session up for another node to take over at once,
// as a node shutting down does: the log gets what it lacks, then the
// session is released (no owner, the same epoch) and ended here, its
// attachments cut without a close. Its client resumes through another
// node, which claims it without waiting for this node's lease to lapse.
// A message sent meanwhile that the log did not keep was never delivered,
// and its Send fails; what the client sent and was not acknowledged, it
// sends again.
func (s *Session) handOver(ctx context.Context) {
	d := s.dur
	s.mu.Lock()
	for d.flushing && !s.finished {
		ch := d.kept.Wait()
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			s.fence()
			return
		}
		s.mu.Lock()
	}
	if d.fenced || d.lost || s.finished {
		s.mu.Unlock()
		return
	}
	d.fenced = true // nothing more is written: the flush is over
	if s.closeErr == nil {
		s.closeErr = errHandedOver
	}
	s.mu.Unlock()
	if err := d.store.ReleaseSession(ctx, s.id, d.epoch); err != nil {
		s.h.logger.Debug("comet: session not released", "session", logid.Short(s.id), "err", err)
	}
	s.finish()
}

// handOverAll hands over every session this node holds, a few at a time.
func (c *cluster) handOverAll(ctx context.Context) {
	sem := make(chan struct{}, handOverParallel)
	var wg sync.WaitGroup
	c.h.sessions.each(func(s *Session) bool {
		if s.dur == nil {
			return true
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			s.handOver(ctx)
		}()
		return true
	})
	wg.Wait()
}

// handOverParallel bounds the sessions handed over at once.
const handOverParallel = 64

// errHandedOver is what a session's Serve sees when its node hands it
// over to another on shutdown.
var errHandedOver = &transport.CloseError{Code: transport.CloseGoingAway, Reason: "session handed over to another node"}
