// Package storetest is the conformance suite of session.SessionStore: one
// set of tests that every store (a MemoryCluster's nodes, the Redis
// broker) passes, so that the handler may rely on the interface's
// contract and on nothing else.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/session"
)

// Node is one node's handle on a store, and the node's id.
type Node struct {
	Store session.SessionStore
	ID    string
}

// Run runs the suite. open returns two nodes' handles on one fresh store,
// each id unique to the call, for a test of its own.
func Run(t *testing.T, open func(t *testing.T) (a, b Node)) {
	for _, tc := range []struct {
		name string
		f    func(t *testing.T, ctx context.Context, a, b Node)
	}{
		{"Create", testCreate},
		{"Append", testAppend},
		{"Gap", testGap},
		{"Fence", testFence},
		{"Release", testRelease},
		{"Delete", testDelete},
		{"Batch", testBatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			a, b := open(t)
			tc.f(t, ctx, a, b)
		})
	}
}

// entries returns the log entries numbered from..to, each holding its
// number with a tag.
func entries(tag string, from, to uint64) []session.LogEntry {
	var es []session.LogEntry
	for seq := from; seq <= to; seq++ {
		es = append(es, session.LogEntry{Seq: seq, Data: fmt.Appendf(nil, "%s%d\x00\xff", tag, seq)})
	}
	return es
}

// write applies one write and returns its result.
func write(t *testing.T, ctx context.Context, n Node, w session.LogWrite) error {
	t.Helper()
	errs, err := n.Store.WriteLog(ctx, []session.LogWrite{w})
	if err != nil {
		t.Fatalf("WriteLog: %v", err)
	}
	if len(errs) != 1 {
		t.Fatalf("WriteLog answered %d results for 1 write", len(errs))
	}
	return errs[0]
}

// load returns the session's log, failing the test on an error.
func load(t *testing.T, ctx context.Context, n Node, id string) *session.SessionLog {
	t.Helper()
	l, err := n.Store.LoadSession(ctx, id)
	if err != nil {
		t.Fatalf("LoadSession(%s): %v", id, err)
	}
	return l
}

// sameEntries fails the test unless got holds want.
func sameEntries(t *testing.T, what string, got, want []session.LogEntry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d entries, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i].Seq != want[i].Seq || string(got[i].Data) != string(want[i].Data) {
			t.Fatalf("%s[%d] = %d %q, want %d %q", what, i, got[i].Seq, got[i].Data, want[i].Seq, want[i].Data)
		}
	}
}

// create records session id owned by n.
func create(t *testing.T, ctx context.Context, n Node, id string, state string) {
	t.Helper()
	if err := n.Store.CreateSession(ctx, id, n.ID, []byte(state)); err != nil {
		t.Fatalf("CreateSession(%s): %v", id, err)
	}
}

func testCreate(t *testing.T, ctx context.Context, a, b Node) {
	id := a.ID + ".create"
	create(t, ctx, a, id, `{"secret":"s"}`)
	l := load(t, ctx, b, id)
	if l.Node != a.ID || l.Epoch != 1 || string(l.State) != `{"secret":"s"}` || l.Acked != 0 || l.Committed != 0 ||
		len(l.Down) != 0 || len(l.Up) != 0 || l.DownTop != 0 || l.UpTop != 0 {
		t.Fatalf("a new log: %+v", l)
	}
	// A retried create changes nothing.
	if err := write(t, ctx, a, session.LogWrite{Session: id, Epoch: 1, Down: entries("d", 1, 1)}); err != nil {
		t.Fatalf("WriteLog: %v", err)
	}
	create(t, ctx, a, id, `{"secret":"other"}`)
	if l := load(t, ctx, a, id); string(l.State) != `{"secret":"s"}` || l.DownTop != 1 {
		t.Fatalf("a create again reset the log: %+v", l)
	}
	if ids, err := a.Store.NodeSessions(ctx, a.ID); err != nil || !slices.Contains(ids, id) {
		t.Fatalf("NodeSessions(%s) = %v, %v; want it to hold %s", a.ID, ids, err, id)
	}
	if _, err := a.Store.LoadSession(ctx, a.ID+".never"); !errors.Is(err, session.ErrSessionLost) {
		t.Fatalf("LoadSession of an unknown session: %v, want ErrSessionLost", err)
	}
}

func testAppend(t *testing.T, ctx context.Context, a, _ Node) {
	id := a.ID + ".append"
	create(t, ctx, a, id, "{}")
	if err := write(t, ctx, a, session.LogWrite{Session: id, Epoch: 1, Down: entries("d", 1, 5), Up: entries("u", 1, 3)}); err != nil {
		t.Fatalf("WriteLog: %v", err)
	}
	// A retry of part of it, and more: the entries held are skipped.
	if err := write(t, ctx, a, session.LogWrite{Session: id, Epoch: 1, Down: entries("d", 4, 7), Up: entries("u", 2, 3)}); err != nil {
		t.Fatalf("WriteLog again: %v", err)
	}
	l := load(t, ctx, a, id)
	sameEntries(t, "down", l.Down, entries("d", 1, 7))
	sameEntries(t, "up", l.Up, entries("u", 1, 3))
	if l.DownTop != 7 || l.UpTop != 3 {
		t.Fatalf("tops %d, %d; want 7, 3", l.DownTop, l.UpTop)
	}
	// Acks and commits trim; one beyond the log, or going back, changes
	// nothing.
	if err := write(t, ctx, a, session.LogWrite{Session: id, Epoch: 1, Acked: 4, Committed: 2}); err != nil {
		t.Fatalf("WriteLog acks: %v", err)
	}
	if err := write(t, ctx, a, session.LogWrite{Session: id, Epoch: 1, Acked: 9, Committed: 1}); err != nil {
		t.Fatalf("WriteLog acks beyond: %v", err)
	}
	l = load(t, ctx, a, id)
	if l.Acked != 4 || l.Committed != 2 {
		t.Fatalf("acked %d, committed %d; want 4, 2", l.Acked, l.Committed)
	}
	sameEntries(t, "down after the ack", l.Down, entries("d", 5, 7))
	sameEntries(t, "up after the commit", l.Up, entries("u", 3, 3))
	// Entries and their ack in one write: all of them go.
	if err := write(t, ctx, a, session.LogWrite{Session: id, Epoch: 1, Down: entries("d", 8, 8), Acked: 8,
		Up: entries("u", 4, 4), Committed: 4}); err != nil {
		t.Fatalf("WriteLog: %v", err)
	}
	l = load(t, ctx, a, id)
	if len(l.Down) != 0 || len(l.Up) != 0 || l.DownTop != 8 || l.UpTop != 4 || l.Acked != 8 || l.Committed != 4 {
		t.Fatalf("everything acknowledged: %+v", l)
	}
}

func testGap(t *testing.T, ctx context.Context, a, _ Node) {
	id := a.ID + ".gap"
	create(t, ctx, a, id, "{}")
	if err := write(t, ctx, a, session.LogWrite{Session: id, Epoch: 1, Down: entries("d", 1, 2), Up: entries("u", 1, 1)}); err != nil {
		t.Fatalf("WriteLog: %v", err)
	}
	for _, w := range []session.LogWrite{
		{Session: id, Epoch: 1, Down: entries("d", 4, 5)},
		{Session: id, Epoch: 1, Up: entries("u", 3, 3)},
	} {
		var lost *session.LogLostError
		if err := write(t, ctx, a, w); !errors.As(err, &lost) || lost.DownTop != 2 || lost.UpTop != 1 {
			t.Fatalf("a write after a gap: %v, want a LogLostError at 2, 1", err)
		}
	}
	l := load(t, ctx, a, id)
	sameEntries(t, "down", l.Down, entries("d", 1, 2))
	sameEntries(t, "up", l.Up, entries("u", 1, 1))
}

func testFence(t *testing.T, ctx context.Context, a, b Node) {
	id := a.ID + ".fence"
	create(t, ctx, a, id, "{}")
	if err := write(t, ctx, a, session.LogWrite{Session: id, Epoch: 1, Down: entries("d", 1, 1)}); err != nil {
		t.Fatalf("WriteLog: %v", err)
	}
	epoch, err := b.Store.ClaimSession(ctx, id, b.ID, 1)
	if err != nil || epoch != 2 {
		t.Fatalf("ClaimSession = %d, %v; want 2", epoch, err)
	}
	// A retried claim gets the same epoch; a claim of the old epoch by
	// another node, none.
	if epoch, err := b.Store.ClaimSession(ctx, id, b.ID, 1); err != nil || epoch != 2 {
		t.Fatalf("ClaimSession again = %d, %v; want 2", epoch, err)
	}
	if _, err := a.Store.ClaimSession(ctx, id, a.ID, 1); !errors.Is(err, session.ErrFenced) {
		t.Fatalf("a claim of an old epoch: %v, want ErrFenced", err)
	}
	if err := write(t, ctx, a, session.LogWrite{Session: id, Epoch: 1, Down: entries("d", 2, 2), Acked: 1}); !errors.Is(err, session.ErrFenced) {
		t.Fatalf("a write of the old owner: %v, want ErrFenced", err)
	}
	if err := a.Store.ReleaseSession(ctx, id, 1); !errors.Is(err, session.ErrFenced) {
		t.Fatalf("a release of the old owner: %v, want ErrFenced", err)
	}
	l := load(t, ctx, a, id)
	if l.Node != b.ID || l.Epoch != 2 || l.DownTop != 1 || l.Acked != 0 {
		t.Fatalf("after the claim: %+v", l)
	}
	if err := write(t, ctx, b, session.LogWrite{Session: id, Epoch: 2, Down: entries("d", 2, 2)}); err != nil {
		t.Fatalf("a write of the new owner: %v", err)
	}
	ida, _ := a.Store.NodeSessions(ctx, a.ID)
	idb, _ := a.Store.NodeSessions(ctx, b.ID)
	if slices.Contains(ida, id) || !slices.Contains(idb, id) {
		t.Fatalf("after the claim, NodeSessions: %s %v, %s %v", a.ID, ida, b.ID, idb)
	}
	if err := write(t, ctx, b, session.LogWrite{Session: b.ID + ".never", Epoch: 1}); !errors.Is(err, session.ErrSessionLost) {
		t.Fatalf("a write to an unknown session: %v, want ErrSessionLost", err)
	}
	if _, err := b.Store.ClaimSession(ctx, b.ID+".never", b.ID, 1); !errors.Is(err, session.ErrSessionLost) {
		t.Fatalf("a claim of an unknown session: %v, want ErrSessionLost", err)
	}
}

func testRelease(t *testing.T, ctx context.Context, a, b Node) {
	id := a.ID + ".release"
	create(t, ctx, a, id, "{}")
	// Another node's release leaves the owner be.
	if err := b.Store.ReleaseSession(ctx, id, 1); err != nil {
		t.Fatalf("ReleaseSession by a non-owner: %v", err)
	}
	if l := load(t, ctx, a, id); l.Node != a.ID {
		t.Fatalf("a non-owner's release took the session from %s: node %q", a.ID, l.Node)
	}
	if err := a.Store.ReleaseSession(ctx, id, 1); err != nil {
		t.Fatalf("ReleaseSession: %v", err)
	}
	l := load(t, ctx, b, id)
	if l.Node != "" || l.Epoch != 1 {
		t.Fatalf("after the release: node %q epoch %d, want none at 1", l.Node, l.Epoch)
	}
	if ids, _ := a.Store.NodeSessions(ctx, a.ID); slices.Contains(ids, id) {
		t.Fatalf("a released session is still listed for its node: %v", ids)
	}
	if ids, err := a.Store.NodeSessions(ctx, ""); err != nil || !slices.Contains(ids, id) {
		t.Fatalf("NodeSessions(\"\") = %v, %v; want the released session", ids, err)
	}
	if nodes, err := a.Store.SessionNodes(ctx); err != nil || !slices.Contains(nodes, "") {
		t.Fatalf("SessionNodes = %q, %v; want \"\" for the released session", nodes, err)
	}
	if err := write(t, ctx, a, session.LogWrite{Session: id, Epoch: 1, Down: entries("d", 1, 1)}); !errors.Is(err, session.ErrFenced) {
		t.Fatalf("a write after the release: %v, want ErrFenced", err)
	}
	if epoch, err := b.Store.ClaimSession(ctx, id, b.ID, 1); err != nil || epoch != 2 {
		t.Fatalf("a claim of a released session = %d, %v; want 2", epoch, err)
	}
	if ids, _ := a.Store.NodeSessions(ctx, ""); slices.Contains(ids, id) {
		t.Fatalf("a session claimed again is still listed as released: %v", ids)
	}
	if ids, _ := a.Store.NodeSessions(ctx, b.ID); !slices.Contains(ids, id) {
		t.Fatalf("a session claimed again is not listed for its node: %v", ids)
	}
	if nodes, err := a.Store.SessionNodes(ctx); err != nil || !slices.Contains(nodes, b.ID) {
		t.Fatalf("SessionNodes = %q, %v; want %s", nodes, err, b.ID)
	}
	// Released, then ended by its next owner: listed nowhere.
	if err := b.Store.ReleaseSession(ctx, id, 2); err != nil {
		t.Fatalf("ReleaseSession: %v", err)
	}
	if err := b.Store.DeleteSession(ctx, id, 2); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	if ids, _ := a.Store.NodeSessions(ctx, ""); slices.Contains(ids, id) {
		t.Fatalf("a session deleted once released is still listed as released: %v", ids)
	}
}

func testDelete(t *testing.T, ctx context.Context, a, b Node) {
	id := a.ID + ".delete"
	create(t, ctx, a, id, "{}")
	if err := write(t, ctx, a, session.LogWrite{Session: id, Epoch: 1, Down: entries("d", 1, 3), Up: entries("u", 1, 2)}); err != nil {
		t.Fatalf("WriteLog: %v", err)
	}
	// A delete under another epoch is a fenced node's: it does nothing.
	if err := a.Store.DeleteSession(ctx, id, 7); err != nil {
		t.Fatalf("DeleteSession of another epoch: %v", err)
	}
	load(t, ctx, b, id)
	if err := a.Store.DeleteSession(ctx, id, 1); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	if _, err := b.Store.LoadSession(ctx, id); !errors.Is(err, session.ErrSessionLost) {
		t.Fatalf("LoadSession after the delete: %v, want ErrSessionLost", err)
	}
	if ids, _ := a.Store.NodeSessions(ctx, a.ID); slices.Contains(ids, id) {
		t.Fatalf("a deleted session is still listed for its node: %v", ids)
	}
	if err := write(t, ctx, a, session.LogWrite{Session: id, Epoch: 1, Down: entries("d", 4, 4)}); !errors.Is(err, session.ErrSessionLost) {
		t.Fatalf("a write after the delete: %v, want ErrSessionLost", err)
	}
	if err := a.Store.DeleteSession(ctx, id, 1); err != nil {
		t.Fatalf("DeleteSession again: %v", err)
	}
}

func testBatch(t *testing.T, ctx context.Context, a, b Node) {
	ids := []string{a.ID + ".b1", a.ID + ".b2", a.ID + ".b3"}
	for _, id := range ids {
		create(t, ctx, a, id, "{}")
	}
	if _, err := b.Store.ClaimSession(ctx, ids[1], b.ID, 1); err != nil {
		t.Fatalf("ClaimSession: %v", err)
	}
	errs, err := a.Store.WriteLog(ctx, []session.LogWrite{
		{Session: ids[0], Epoch: 1, Down: entries("d", 1, 2)},
		{Session: ids[1], Epoch: 1, Down: entries("d", 1, 2)},
		{Session: ids[2], Epoch: 1, Up: entries("u", 2, 2)},
		{Session: a.ID + ".never", Epoch: 1},
		{Session: ids[0], Epoch: 1, Down: entries("d", 3, 3), Acked: 1},
	})
	if err != nil || len(errs) != 5 {
		t.Fatalf("WriteLog = %d results, %v; want 5", len(errs), err)
	}
	var lost *session.LogLostError
	if errs[0] != nil || !errors.Is(errs[1], session.ErrFenced) || !errors.As(errs[2], &lost) ||
		!errors.Is(errs[3], session.ErrSessionLost) || errs[4] != nil {
		t.Fatalf("WriteLog results %v; want nil, ErrFenced, LogLostError, ErrSessionLost, nil", errs)
	}
	l := load(t, ctx, a, ids[0])
	sameEntries(t, "down", l.Down, entries("d", 2, 3))

	// Concurrent calls, as sessions' flushes make them, each get their
	// own results.
	const n = 40
	res := make(chan error, n)
	for i := range n {
		go func() {
			id := fmt.Sprintf("%s.c%d", a.ID, i)
			if err := a.Store.CreateSession(ctx, id, a.ID, []byte("{}")); err != nil {
				res <- err
				return
			}
			errs, err := a.Store.WriteLog(ctx, []session.LogWrite{{Session: id, Epoch: 1, Down: entries(id, 1, 3)}})
			if err == nil {
				err = errors.Join(errs...)
			}
			if err == nil {
				var l *session.SessionLog
				if l, err = a.Store.LoadSession(ctx, id); err == nil && (l.DownTop != 3 || len(l.Down) != 3 ||
					string(l.Down[2].Data) != string(entries(id, 3, 3)[0].Data)) {
					err = fmt.Errorf("session %s: log %+v", id, l)
				}
			}
			res <- err
		}()
	}
	for range n {
		if err := <-res; err != nil {
			t.Fatal(err)
		}
	}
}
