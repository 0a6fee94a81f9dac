package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/seed-544bbf9f/comet/session"
)

// The Broker is a session.SessionStore too (Options.Failover). A session's
// log is three keys and a set membership:
//
//	<prefix>:s:{<id>}    hash: n (the owner node, "" once released),
//	                     e (the epoch), st (the state), a and c (the
//	                     downstream ack and the upstream commit), dt and ut
//	                     (the numbers of the newest entries)
//	<prefix>:s:{<id>}:d  list: the downstream entries after a, in order
//	<prefix>:s:{<id>}:u  list: the upstream entries after c, in order
//	<prefix>:ns:<node>   set: the ids of the sessions node owns
//	<prefix>:ns:         set: the ids of the sessions released, unclaimed
//
// The hash tag keeps a session's keys in one slot. Every change is one
// script, which checks the epoch first: a node fenced off changes nothing.
// Each script is idempotent, as go-redis's retries need: entries the log
// holds are skipped, a claim already made is answered again.

// storeResult names what a script answers besides "ok".
const (
	resultLost   = "lost"
	resultFenced = "fenced"
	resultMoved  = "moved"
	resultGap    = "gap"
)

// createScript: KEYS meta, the node's set; ARGV node, state, id.
var createScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 'ok' end
redis.call('HSET', KEYS[1], 'n', ARGV[1], 'e', 1, 'st', ARGV[2], 'a', 0, 'c', 0, 'dt', 0, 'ut', 0)
redis.call('SADD', KEYS[2], ARGV[3])
return 'ok'
`)

// writeScript: KEYS meta, down, up; ARGV epoch, acked, committed, the
// number of downstream entries, the first downstream and upstream
// numbers, then the downstream entries and the upstream ones. It answers
// ok, lost, fenced, or gap with the log's newest numbers when an entry
// comes after one the log lacks: the log lost entries it had kept.
var writeScript = goredis.NewScript(`
local m = redis.call('HMGET', KEYS[1], 'n', 'e', 'a', 'c', 'dt', 'ut')
if not m[2] then return 'lost' end
if m[2] ~= ARGV[1] or m[1] == '' then return 'fenced' end
local a, c, dt, ut = tonumber(m[3]), tonumber(m[4]), tonumber(m[5]), tonumber(m[6])
local nd = tonumber(ARGV[4])
local seq = tonumber(ARGV[5])
for i = 7, 6 + nd do
	if seq > dt + 1 then return {'gap', dt, ut} end
	if seq == dt + 1 then
		redis.call('RPUSH', KEYS[2], ARGV[i])
		dt = seq
	end
	seq = seq + 1
end
seq = tonumber(ARGV[6])
for i = 7 + nd, #ARGV do
	if seq > ut + 1 then return {'gap', dt, ut} end
	if seq == ut + 1 then
		redis.call('RPUSH', KEYS[3], ARGV[i])
		ut = seq
	end
	seq = seq + 1
end
local acked = tonumber(ARGV[2])
if acked > a and acked <= dt then
	redis.call('LTRIM', KEYS[2], acked - a, -1)
	a = acked
end
local committed = tonumber(ARGV[3])
if committed > c and committed <= ut then
	redis.call('LTRIM', KEYS[3], committed - c, -1)
	c = committed
end
redis.call('HSET', KEYS[1], 'a', a, 'c', c, 'dt', dt, 'ut', ut)
return 'ok'
`)

// loadScript: KEYS meta, down, up. It answers nil for a session the store
// does not have, else n, e, st, a, c, dt, ut, the number of downstream
// entries, the downstream entries and the upstream ones.
var loadScript = goredis.NewScript(`
local m = redis.call('HMGET', KEYS[1], 'n', 'e', 'st', 'a', 'c', 'dt', 'ut')
if not m[2] then return false end
local d = redis.call('LRANGE', KEYS[2], 0, -1)
local u = redis.call('LRANGE', KEYS[3], 0, -1)
local out = {m[1], m[2], m[3], m[4], m[5], m[6], m[7], #d}
for _, v in ipairs(d) do out[#out + 1] = v end
for _, v in ipairs(u) do out[#out + 1] = v end
return out
`)

// claimScript: KEYS meta, the old owner's set (the released set if it
// has none), the new owner's; ARGV the
// old owner as the claimer read it, the new owner, the epoch, id. It
// answers ok, lost, fenced (the epoch moved on), or moved (the owner
// changed since the claimer read it: read it again).
var claimScript = goredis.NewScript(`
local m = redis.call('HMGET', KEYS[1], 'n', 'e')
if not m[2] then return 'lost' end
local e, want = tonumber(m[2]), tonumber(ARGV[3])
if e == want + 1 and m[1] == ARGV[2] then return 'ok' end
if e ~= want then return 'fenced' end
if m[1] ~= ARGV[1] then return 'moved' end
redis.call('HSET', KEYS[1], 'n', ARGV[2], 'e', e + 1)
redis.call('SREM', KEYS[2], ARGV[4])
redis.call('SADD', KEYS[3], ARGV[4])
return 'ok'
`)

// releaseScript: KEYS meta, the node's set, the released set; ARGV
// epoch, node, id.
var releaseScript = goredis.NewScript(`
local m = redis.call('HMGET', KEYS[1], 'n', 'e')
if not m[2] then return 'lost' end
if m[2] ~= ARGV[1] then return 'fenced' end
if m[1] == ARGV[2] then
	redis.call('HSET', KEYS[1], 'n', '')
	redis.call('SREM', KEYS[2], ARGV[3])
	redis.call('SADD', KEYS[3], ARGV[3])
end
return 'ok'
`)

// deleteScript: KEYS meta, down, up, the node's set, the released set;
// ARGV epoch, node, id.
var deleteScript = goredis.NewScript(`
local m = redis.call('HMGET', KEYS[1], 'n', 'e')
if not m[2] or m[2] ~= ARGV[1] then return 'ok' end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
if m[1] == ARGV[2] then
	redis.call('SREM', KEYS[4], ARGV[3])
elseif m[1] == '' then
	redis.call('SREM', KEYS[5], ARGV[3])
end
return 'ok'
`)

var _ session.SessionStore = (*Broker)(nil)

// sessionKeys returns the keys of session id's log: meta, down, up.
func (b *Broker) sessionKeys(id string) (meta, down, up string) {
	meta = b.cfg.Prefix + ":s:{" + id + "}"
	return meta, meta + ":d", meta + ":u"
}

// nodeSetKey returns the key of the set of node's sessions.
func (b *Broker) nodeSetKey(node string) string { return b.cfg.Prefix + ":ns:" + node }

// storeErr wraps a Redis error as the handler's ErrBrokerUnavailable.
func storeErr(what string, err error) error {
	return fmt.Errorf("%w: %s: %w", session.ErrBrokerUnavailable, what, err)
}

// scriptResult maps a script's answer to the SessionStore's errors.
func scriptResult(res any) error {
	switch res {
	case "ok":
		return nil
	case resultLost:
		return session.ErrSessionLost
	case resultFenced:
		return session.ErrFenced
	}
	return fmt.Errorf("comet/redis: unexpected script answer %v", res)
}

// CreateSession implements session.SessionStore.
func (b *Broker) CreateSession(ctx context.Context, id, node string, state []byte) error {
	if b.closed.Load() {
		return errClosed
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.OpTimeout)
	defer cancel()
	meta, _, _ := b.sessionKeys(id)
	if err := createScript.Run(ctx, b.client, []string{meta, b.nodeSetKey(node)}, node, state, id).Err(); err != nil {
		return storeErr("create session log", err)
	}
	return nil
}

// WriteLog implements session.SessionStore. Concurrent calls are batched:
// the writes that queue while one batch is in flight go together in the
// next, as one pipeline.
func (b *Broker) WriteLog(ctx context.Context, writes []session.LogWrite) ([]error, error) {
	if b.closed.Load() {
		return nil, errClosed
	}
	call := &logCall{writes: writes, done: make(chan struct{})}
	b.logMu.Lock()
	b.logQueue = append(b.logQueue, call)
	lead := !b.logBusy
	b.logBusy = true
	b.logMu.Unlock()
	if lead {
		b.writeBatch()
	}
	select {
	case <-call.done:
		return call.errs, call.err
	case <-ctx.Done():
		return nil, storeErr("write session logs", ctx.Err())
	}
}

// logCall is one WriteLog call waiting for its batch.
type logCall struct {
	writes []session.LogWrite
	errs   []error
	err    error
	done   chan struct{}
}

// maxLogBatch bounds the writes of one pipeline.
const maxLogBatch = 512

// writeBatch writes the queued calls, up to maxLogBatch writes, as one
// pipeline, and then hands the queue to another goroutine if more came
// meanwhile, so that no caller writes for others for long.
func (b *Broker) writeBatch() {
	b.logMu.Lock()
	var calls []*logCall
	n := 0
	for len(b.logQueue) > 0 && (n == 0 || n+len(b.logQueue[0].writes) <= maxLogBatch) {
		c := b.logQueue[0]
		b.logQueue[0] = nil
		b.logQueue = b.logQueue[1:]
		calls = append(calls, c)
		n += len(c.writes)
	}
	if len(b.logQueue) == 0 {
		b.logQueue = nil
	}
	b.logMu.Unlock()

	writes := make([]*session.LogWrite, 0, n)
	for _, c := range calls {
		for i := range c.writes {
			writes = append(writes, &c.writes[i])
		}
	}
	ctx, cancel := context.WithTimeout(b.ctx, b.cfg.OpTimeout)
	errs, err := b.pipeWrites(ctx, writes)
	cancel()
	k := 0
	for _, c := range calls {
		if err != nil {
			c.err = storeErr("write session logs", err)
		} else {
			c.errs = errs[k : k+len(c.writes) : k+len(c.writes)]
		}
		k += len(c.writes)
		close(c.done)
	}

	b.logMu.Lock()
	more := len(b.logQueue) > 0
	b.logBusy = more
	b.logMu.Unlock()
	if more {
		go b.writeBatch()
	}
}

// pipeWrites runs writeScript for each write in one pipeline, loading the
// script first if Redis lacks it (a restart).
func (b *Broker) pipeWrites(ctx context.Context, writes []*session.LogWrite) ([]error, error) {
	for try := 0; ; try++ {
		pipe := b.client.Pipeline()
		cmds := make([]*goredis.Cmd, len(writes))
		for i, w := range writes {
			meta, down, up := b.sessionKeys(w.Session)
			args := make([]any, 0, 6+len(w.Down)+len(w.Up))
			args = append(args, w.Epoch, w.Acked, w.Committed, len(w.Down), firstSeq(w.Down), firstSeq(w.Up))
			for _, e := range w.Down {
				args = append(args, e.Data)
			}
			for _, e := range w.Up {
				args = append(args, e.Data)
			}
			cmds[i] = writeScript.EvalSha(ctx, pipe, []string{meta, down, up}, args...)
		}
		_, err := pipe.Exec(ctx)
		if err != nil && try == 0 && goredis.HasErrorPrefix(err, "NOSCRIPT") {
			if err := writeScript.Load(ctx, b.client).Err(); err != nil {
				return nil, err
			}
			continue // every write is idempotent: run them all again
		}
		errs := make([]error, len(writes))
		for i, cmd := range cmds {
			res, cerr := cmd.Result()
			switch {
			case cerr != nil && isNetworkErr(cerr):
				return nil, cerr
			case cerr != nil:
				errs[i] = fmt.Errorf("comet/redis: session log write: %w", cerr)
			default:
				errs[i] = writeResult(res)
			}
		}
		return errs, nil
	}
}

// isNetworkErr tells a failure to reach Redis from an error Redis
// answered.
func isNetworkErr(err error) bool {
	var re goredis.Error
	return !errors.As(err, &re)
}

// firstSeq returns the number of the first entry, or 0.
func firstSeq(entries []session.LogEntry) uint64 {
	if len(entries) == 0 {
		return 0
	}
	return entries[0].Seq
}

// writeResult maps writeScript's answer to an error.
func writeResult(res any) error {
	if gap, ok := res.([]any); ok && len(gap) == 3 && gap[0] == resultGap {
		down, _ := gap[1].(int64)
		up, _ := gap[2].(int64)
		return &session.LogLostError{DownTop: uint64(down), UpTop: uint64(up)}
	}
	return scriptResult(res)
}

// LoadSession implements session.SessionStore.
func (b *Broker) LoadSession(ctx context.Context, id string) (*session.SessionLog, error) {
	if b.closed.Load() {
		return nil, errClosed
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.OpTimeout)
	defer cancel()
	meta, down, up := b.sessionKeys(id)
	res, err := loadScript.Run(ctx, b.client, []string{meta, down, up}).Slice()
	if errors.Is(err, goredis.Nil) {
		return nil, session.ErrSessionLost
	}
	if err != nil {
		return nil, storeErr("load session log", err)
	}
	l, err := parseLog(res)
	if err != nil {
		return nil, fmt.Errorf("comet/redis: session log of %s: %w", id, err)
	}
	return l, nil
}

// parseLog reads loadScript's answer.
func parseLog(res []any) (*session.SessionLog, error) {
	if len(res) < 8 {
		return nil, fmt.Errorf("%d values", len(res))
	}
	str := func(i int) string { s, _ := res[i].(string); return s }
	var nums [5]uint64
	for k, i := range []int{1, 3, 4, 5, 6} {
		v, err := strconv.ParseUint(str(i), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("field %d: %w", i, err)
		}
		nums[k] = v
	}
	nd, _ := res[7].(int64)
	entries := res[8:]
	if nd < 0 || int(nd) > len(entries) {
		return nil, fmt.Errorf("%d downstream entries of %d", nd, len(entries))
	}
	l := &session.SessionLog{Node: str(0), Epoch: nums[0], State: []byte(str(2)),
		Acked: nums[1], Committed: nums[2], DownTop: nums[3], UpTop: nums[4]}
	for i, v := range entries {
		s, _ := v.(string)
		if i < int(nd) {
			l.Down = append(l.Down, session.LogEntry{Seq: l.Acked + uint64(i) + 1, Data: []byte(s)})
		} else {
			l.Up = append(l.Up, session.LogEntry{Seq: l.Committed + uint64(i-int(nd)) + 1, Data: []byte(s)})
		}
	}
	return l, nil
}

// ClaimSession implements session.SessionStore.
func (b *Broker) ClaimSession(ctx context.Context, id, node string, epoch uint64) (uint64, error) {
	if b.closed.Load() {
		return 0, errClosed
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.OpTimeout)
	defer cancel()
	meta, _, _ := b.sessionKeys(id)
	const tries = 3
	for range tries {
		old, err := b.client.HGet(ctx, meta, "n").Result()
		if errors.Is(err, goredis.Nil) {
			return 0, session.ErrSessionLost
		}
		if err != nil {
			return 0, storeErr("claim session", err)
		}
		res, err := claimScript.Run(ctx, b.client, []string{meta, b.nodeSetKey(old), b.nodeSetKey(node)},
			old, node, epoch, id).Result()
		if err != nil {
			return 0, storeErr("claim session", err)
		}
		if res == resultMoved {
			continue
		}
		if err := scriptResult(res); err != nil {
			return 0, err
		}
		return epoch + 1, nil
	}
	return 0, session.ErrFenced
}

// ReleaseSession implements session.SessionStore.
func (b *Broker) ReleaseSession(ctx context.Context, id string, epoch uint64) error {
	if b.closed.Load() {
		return errClosed
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.OpTimeout)
	defer cancel()
	meta, _, _ := b.sessionKeys(id)
	res, err := releaseScript.Run(ctx, b.client, []string{meta, b.nodeSetKey(b.cfg.Node), b.nodeSetKey("")},
		epoch, b.cfg.Node, id).Result()
	if err != nil {
		return storeErr("release session", err)
	}
	return scriptResult(res)
}

// DeleteSession implements session.SessionStore.
func (b *Broker) DeleteSession(ctx context.Context, id string, epoch uint64) error {
	if b.closed.Load() {
		return errClosed
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.OpTimeout)
	defer cancel()
	meta, down, up := b.sessionKeys(id)
	err := deleteScript.Run(ctx, b.client, []string{meta, down, up, b.nodeSetKey(b.cfg.Node), b.nodeSetKey("")},
		epoch, b.cfg.Node, id).Err()
	if err != nil {
		return storeErr("delete session log", err)
	}
	return nil
}

// NodeSessions implements session.SessionStore.
func (b *Broker) NodeSessions(ctx context.Context, node string) ([]string, error) {
	if b.closed.Load() {
		return nil, errClosed
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.OpTimeout)
	defer cancel()
	ids, err := b.client.SMembers(ctx, b.nodeSetKey(node)).Result()
	if err != nil {
		return nil, storeErr("list a node's sessions", err)
	}
	return ids, nil
}

// SessionNodes implements session.SessionStore. It SCANs the node sets,
// which a node does once, when it starts.
func (b *Broker) SessionNodes(ctx context.Context) ([]string, error) {
	if b.closed.Load() {
		return nil, errClosed
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.OpTimeout)
	defer cancel()
	prefix := b.nodeSetKey("")
	var nodes []string
	iter := b.client.Scan(ctx, 0, globQuote(prefix)+"*", 1000).Iterator()
	for iter.Next(ctx) {
		nodes = append(nodes, strings.TrimPrefix(iter.Val(), prefix))
	}
	if err := iter.Err(); err != nil {
		return nil, storeErr("list the nodes with sessions", err)
	}
	return nodes, nil
}

// globQuote escapes the characters of s that a SCAN pattern reads as its
// own.
func globQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\^`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
