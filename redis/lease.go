package redis

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// leaseScript renews the lease of node ARGV[1] for ARGV[2] ms in the
// sorted set KEYS[1], drops the lapsed leases, and returns the store's
// generation (KEYS[2], set to ARGV[3] if missing: a generation that
// changes says that Redis lost its data), then the live nodes, each
// followed by the ms its lease has left.
// Scores are expiries by Redis's clock (TIME), so the nodes' clocks never
// matter. Running it twice, as a retry would, does no harm.
var leaseScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
local gen = redis.call('GET', KEYS[2])
if not gen then
	redis.call('SET', KEYS[2], ARGV[3])
	gen = ARGV[3]
end
local out = {gen}
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, now)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '(' .. -(now - ttl), '(0')
local all = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #all, 2 do
	out[#out + 1] = all[i]
	local score = tonumber(all[i + 1])
	if score < 0 then
		out[#out + 1] = -1
	else
		out[#out + 1] = score - now
	end
end
return out
`)

// withdrawScript marks node ARGV[1] withdrawn in KEYS[1]: a score of
// minus the time, by Redis's clock, which the lease script reports as
// withdrawn (-1) for a lease's length, then drops. A node missing from
// the set, unlike a withdrawn one, may be one Redis lost in a restart.
var withdrawScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], -now, ARGV[1])
return 1
`)

// lease is what a node knows of a peer's lease.
type lease struct {
	expiry time.Time // when it lapses, by our clock
	// carried is set for a lease missing from the set, which Redis may
	// have lost (a restart without persistence): it is kept,
	// unconfirmed, until the peer renews it or it lapses by our clock.
	carried bool
}

// leaseLoop refreshes the lease every Refresh, from the first confirmed
// subscription of the inbox until Close.
func (b *Broker) leaseLoop() {
	defer b.loops.Done()
	select {
	case <-b.subscribed:
	case <-b.ctx.Done():
		return
	}
	log := logLimiter{what: "lease refresh"}
	tick := time.NewTicker(b.cfg.Refresh)
	defer tick.Stop()
	for {
		if !b.paused.Load() {
			if err := b.refresh(); err != nil {
				log.fail(b, err)
			} else {
				log.ok(b)
			}
		}
		select {
		case <-tick.C:
		case <-b.ctx.Done():
			return
		}
	}
}

// refresh runs leaseScript once, updates the live set and reports the
// nodes that left it to the Receiver.
//
// A node marked withdrawn (its Close) is gone at once. A node missing
// from the set has lapsed by Redis's clock — or Redis lost it, in a
// restart without persistence, and it renews its lease within a Refresh
// of Redis's return: so it is carried over until its lease lapses by our
// clock, and gone only then. Reporting a live node gone would have its
// sessions answered 404.
func (b *Broker) refresh() error {
	ctx, cancel := context.WithTimeout(b.ctx, b.cfg.OpTimeout)
	defer cancel()
	sent := time.Now()
	res, err := leaseScript.Run(ctx, b.cfg.leaseClient, []string{b.nodesKey, b.genKey}, b.cfg.Node,
		b.cfg.LeaseTTL.Milliseconds(), newEpoch()).Slice()
	if err == nil && len(res)%2 != 1 {
		err = fmt.Errorf("lease script returned %d values", len(res))
	}
	if err != nil {
		b.mu.Lock()
		b.leaseErr = err
		b.mu.Unlock()
		return err
	}
	// A lease lapses, by our clock, its time left after we sent the
	// script: a little early, never late.
	live := make(map[string]lease, len(res)/2)
	withdrawn := make(map[string]bool)
	for i := 1; i < len(res); i += 2 {
		node, _ := res[i].(string)
		left, _ := res[i+1].(int64)
		if left < 0 {
			withdrawn[node] = true
			continue
		}
		live[node] = lease{expiry: sent.Add(time.Duration(left) * time.Millisecond)}
	}
	var gone []string
	now := time.Now()
	b.mu.Lock()
	for node, l := range b.live {
		if _, ok := live[node]; ok || node == b.cfg.Node {
			continue
		}
		if !withdrawn[node] && now.Before(l.expiry) {
			live[node] = lease{expiry: l.expiry, carried: true}
			continue
		}
		gone = append(gone, node)
	}
	b.live = live
	b.lastOK = now
	// A generation other than the one seen before: Redis lost its data.
	gen, _ := res[0].(string)
	storeLost := b.gen != "" && gen != b.gen
	b.gen = gen
	b.leaseErr = nil
	// A renewal sent after our lease lapsed comes too late: the other
	// nodes have taken us for gone meanwhile.
	lapsed := !b.leaseUntil.IsZero() && sent.After(b.leaseUntil)
	b.leaseUntil = sent.Add(b.cfg.LeaseTTL)
	b.mu.Unlock()
	if lapsed {
		b.emit(event{lapsed: true})
	}
	if storeLost {
		b.emit(event{storeLost: true})
	}
	// Alive already says false when the Receiver hears of it.
	for _, node := range gone {
		b.emit(event{gone: node})
	}
	b.refreshes.Add(1)
	return nil
}
