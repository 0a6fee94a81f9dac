package session

import (
	"context"
	"slices"
)

// A MemoryCluster keeps its sessions' logs too: each MemoryNode is a
// SessionStore, so that the handlers of one process can fail over
// (Options.Failover) as those of many do over Redis. A node that is down
// or closed reaches the logs no more than its broker: what a dead
// process tries to write never lands.

// memoryLog is one session's log.
type memoryLog struct {
	node      string
	epoch     uint64
	state     []byte
	acked     uint64
	committed uint64
	down, up  []LogEntry // after acked, after committed
	downTop   uint64
	upTop     uint64
}

var _ SessionStore = (*MemoryNode)(nil)

// CreateSession implements SessionStore.
func (n *MemoryNode) CreateSession(ctx context.Context, id, node string, state []byte) error {
	if err := n.storeUsable(ctx); err != nil {
		return err
	}
	c := n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.logs[id] == nil {
		c.logs[id] = &memoryLog{node: node, epoch: 1, state: slices.Clone(state)}
	}
	return nil
}

// WriteLog implements SessionStore.
func (n *MemoryNode) WriteLog(ctx context.Context, writes []LogWrite) ([]error, error) {
	if err := n.storeUsable(ctx); err != nil {
		return nil, err
	}
	c := n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	errs := make([]error, len(writes))
	for i := range writes {
		w := &writes[i]
		l := c.logs[w.Session]
		switch {
		case l == nil:
			errs[i] = ErrSessionLost
			continue
		case l.epoch != w.Epoch || l.node == "":
			errs[i] = ErrFenced
			continue
		}
		if gap(l.downTop, w.Down) || gap(l.upTop, w.Up) {
			errs[i] = &LogLostError{DownTop: l.downTop, UpTop: l.upTop}
			continue
		}
		l.down, l.downTop = appendLog(l.down, l.downTop, w.Down)
		l.up, l.upTop = appendLog(l.up, l.upTop, w.Up)
		if w.Acked > l.acked && w.Acked <= l.downTop {
			l.down = dropLog(l.down, l.acked, w.Acked)
			l.acked = w.Acked
		}
		if w.Committed > l.committed && w.Committed <= l.upTop {
			l.up = dropLog(l.up, l.committed, w.Committed)
			l.committed = w.Committed
		}
	}
	return errs, nil
}

// gap reports whether entries, numbered consecutively, start after the
// next number of a log whose newest is top: the log lost entries.
func gap(top uint64, entries []LogEntry) bool {
	return len(entries) > 0 && entries[0].Seq > top+1
}

// appendLog appends entries to a log whose newest is top, skipping those
// it holds.
func appendLog(log []LogEntry, top uint64, entries []LogEntry) ([]LogEntry, uint64) {
	for _, e := range entries {
		if e.Seq == top+1 {
			log = append(log, LogEntry{Seq: e.Seq, Data: slices.Clone(e.Data)})
			top = e.Seq
		}
	}
	return log, top
}

// dropLog drops the entries up to upTo from a log whose first is from+1.
func dropLog(log []LogEntry, from, upTo uint64) []LogEntry {
	k := min(int(upTo-from), len(log))
	return slices.Delete(log, 0, k)
}

// LoadSession implements SessionStore.
func (n *MemoryNode) LoadSession(ctx context.Context, id string) (*SessionLog, error) {
	if err := n.storeUsable(ctx); err != nil {
		return nil, err
	}
	c := n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.logs[id]
	if l == nil {
		return nil, ErrSessionLost
	}
	return &SessionLog{Node: l.node, Epoch: l.epoch, State: slices.Clone(l.state),
		Acked: l.acked, Committed: l.committed, Down: cloneLog(l.down), Up: cloneLog(l.up),
		DownTop: l.downTop, UpTop: l.upTop}, nil
}

func cloneLog(log []LogEntry) []LogEntry {
	out := make([]LogEntry, len(log))
	for i, e := range log {
		out[i] = LogEntry{Seq: e.Seq, Data: slices.Clone(e.Data)}
	}
	return out
}

// ClaimSession implements SessionStore.
func (n *MemoryNode) ClaimSession(ctx context.Context, id, node string, epoch uint64) (uint64, error) {
	if err := n.storeUsable(ctx); err != nil {
		return 0, err
	}
	c := n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.logs[id]
	switch {
	case l == nil:
		return 0, ErrSessionLost
	case l.epoch == epoch+1 && l.node == node:
		return l.epoch, nil
	case l.epoch != epoch:
		return 0, ErrFenced
	}
	l.node, l.epoch = node, epoch+1
	return l.epoch, nil
}

// ReleaseSession implements SessionStore.
func (n *MemoryNode) ReleaseSession(ctx context.Context, id string, epoch uint64) error {
	if err := n.storeUsable(ctx); err != nil {
		return err
	}
	c := n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.logs[id]
	switch {
	case l == nil:
		return ErrSessionLost
	case l.epoch != epoch:
		return ErrFenced
	}
	if l.node == n.id {
		l.node = ""
	}
	return nil
}

// DeleteSession implements SessionStore.
func (n *MemoryNode) DeleteSession(ctx context.Context, id string, epoch uint64) error {
	if err := n.storeUsable(ctx); err != nil {
		return err
	}
	c := n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if l := c.logs[id]; l != nil && l.epoch == epoch {
		delete(c.logs, id)
	}
	return nil
}

// NodeSessions implements SessionStore.
func (n *MemoryNode) NodeSessions(ctx context.Context, node string) ([]string, error) {
	if err := n.storeUsable(ctx); err != nil {
		return nil, err
	}
	c := n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []string
	for id, l := range c.logs {
		if l.node == node {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// SessionNodes implements SessionStore.
func (n *MemoryNode) SessionNodes(ctx context.Context) ([]string, error) {
	if err := n.storeUsable(ctx); err != nil {
		return nil, err
	}
	c := n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := map[string]bool{}
	var nodes []string
	for _, l := range c.logs {
		if !seen[l.node] {
			seen[l.node] = true
			nodes = append(nodes, l.node)
		}
	}
	return nodes, nil
}

// Logs returns how many session logs the cluster keeps: those of the
// sessions of handlers with Options.Failover that have not ended.
func (c *MemoryCluster) Logs() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.logs)
}
