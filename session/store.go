package session

import (
	"context"
	"errors"
	"fmt"
)

// SessionStore keeps each session's log outside the process, so that a
// session outlives its node (Options.Failover). A Broker that is also a
// SessionStore offers it; the Redis broker is one, and so is a
// MemoryCluster's node.
//
// A session's log holds what its node would otherwise lose with it: the
// state negotiate made (the secret, the request's information, what was
// agreed), the messages sent and not yet acknowledged by the client (the
// downstream log), the messages the client sent and the application has
// not yet committed (the upstream log), and who owns the session: a node
// and an epoch. Each log's entries are numbered by the session's sequence
// numbers, and a log only grows by its next number.
//
// Every write names the epoch its writer owns; a write under any other
// epoch is refused with ErrFenced, so that a node that was taken for dead
// and comes back can change nothing. Every method is idempotent as a
// retry needs it to be: appending entries a log already holds does
// nothing, and claiming an epoch twice returns the same epoch.
//
// Its methods are safe for concurrent use, and should batch concurrent
// calls: the handler makes one call per session's burst of traffic.
type SessionStore interface {
	// CreateSession records a new session, owned by node at epoch 1,
	// with the handler's encoding of its state.
	CreateSession(ctx context.Context, id, node string, state []byte) error
	// WriteLog applies writes, each to its session under its epoch, and
	// returns one error for each: nil, ErrFenced, ErrSessionLost, or a
	// *LogLostError for a log that lost entries it had kept. Its
	// own error is for the store's: then none of the writes is known to
	// have been applied.
	WriteLog(ctx context.Context, writes []LogWrite) ([]error, error)
	// LoadSession returns the session's log, or ErrSessionLost.
	LoadSession(ctx context.Context, id string) (*SessionLog, error)
	// ClaimSession makes node the session's owner at epoch+1, if epoch is
	// the session's epoch now, and returns the new epoch; if node already
	// claimed epoch+1, it returns epoch+1 again. Otherwise it returns
	// ErrFenced (another node claimed it first) or ErrSessionLost.
	ClaimSession(ctx context.Context, id, node string, epoch uint64) (uint64, error)
	// ReleaseSession leaves the session without an owner, keeping its
	// epoch, for the next node that serves it to claim without waiting
	// for this node's lease to lapse.
	ReleaseSession(ctx context.Context, id string, epoch uint64) error
	// DeleteSession forgets the session: it has ended.
	DeleteSession(ctx context.Context, id string, epoch uint64) error
	// NodeSessions returns the ids of the sessions node owns; for node
	// "", those released and not claimed since.
	NodeSessions(ctx context.Context, node string) ([]string, error)
	// SessionNodes returns the nodes that own sessions, and "" if some
	// sessions are released: a node that starts takes over those of the
	// nodes that are gone, which may have gone before it started (a
	// whole cluster restarted), so that no log outlives its session.
	SessionNodes(ctx context.Context) ([]string, error)
}

// LogWrite is what one session's owner adds to its log at once.
type LogWrite struct {
	Session string
	Epoch   uint64
	// Down and Up are appended to the downstream and upstream logs: each
	// in order, numbered consecutively from the log's next number or
	// below it (entries the log holds are skipped).
	Down, Up []LogEntry
	// Acked drops the downstream entries up to it: the client has them.
	// Committed drops the upstream entries up to it: the application has
	// them. Zero, or less than before, changes nothing.
	Acked, Committed uint64
}

// LogEntry is one message of a session's log: its sequence number and the
// handler's encoding of it, opaque to the store.
type LogEntry struct {
	Seq  uint64
	Data []byte
}

// SessionLog is a session's log as LoadSession returns it.
type SessionLog struct {
	// Node owns the session at Epoch; "" once it released the session.
	Node  string
	Epoch uint64
	// State is what CreateSession recorded.
	State []byte
	// Acked and Down: the downstream entries after Acked, in order.
	// Committed and Up: the upstream entries after Committed, in order.
	Acked, Committed uint64
	Down, Up         []LogEntry
	// DownTop and UpTop are the numbers of the logs' newest entries,
	// which may have been dropped already (then they equal Acked or
	// Committed).
	DownTop, UpTop uint64
}

// LogLostError refuses a write to a log that lost entries it had kept:
// the store went back to an older copy of itself (a Redis restarted from
// a snapshot, or from an AOF that missed its last second). DownTop and
// UpTop are the numbers of the log's newest entries now; the entries the
// writer wrote after them are gone from it.
type LogLostError struct {
	DownTop, UpTop uint64
}

func (e *LogLostError) Error() string {
	return fmt.Sprintf("comet: the session's log lost entries it had kept: it ends at %d downstream, %d upstream",
		e.DownTop, e.UpTop)
}

var (
	// ErrFenced refuses a write, claim or release under an epoch that is
	// no longer the session's: another node has taken it over.
	ErrFenced = errors.New("comet: the session's log belongs to a newer owner")
	// ErrSessionLost says the store has no log of the session: it ended,
	// or the store lost it (a Redis restarted without persistence).
	ErrSessionLost = errors.New("comet: the session's log is gone")
)
