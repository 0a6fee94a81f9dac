package redis

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// leaseScript renews the lease of node ARGV[1] for ARGV[2] ms in the
// sorted set KEYS[1], drops the lapsed leases, and returns 1 if the set
// did not exist (Redis restarted empty, or every lease had lapsed), else
// 0, then the live nodes, each followed by the ms its lease has left.
// Scores are expiries by Redis's clock (TIME), so the nodes' clocks never
// matter. Running it twice, as a retry would, does no harm.
var leaseScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {1 - redis.call('EXISTS', KEYS[1])}
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local all = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #all, 2 do
	out[#out + 1] = all[i]
	out[#out + 1] = tonumber(all[i + 1]) - now
end
return out
`)

// lease is what a node knows of a peer's lease.
type lease struct {
	expiry time.Time // when it lapses, by our clock
	// carried is set for a lease that Redis has lost with the whole
	// set (a restart without persistence): it is kept, unconfirmed,
	// until the peer renews it or it lapses.
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
// A node missing from the set Redis returns has withdrawn (Close) or
// lapsed by Redis's clock: it is gone. Unless the set itself was lost:
// then the nodes it held are carried over until their leases lapse, for
// they renew them within a Refresh of Redis's return, and reporting them
// gone would have the handler take over sessions of live nodes.
func (b *Broker) refresh() error {
	ctx, cancel := context.WithTimeout(b.ctx, b.cfg.OpTimeout)
	defer cancel()
	sent := time.Now()
	res, err := leaseScript.Run(ctx, b.cfg.leaseClient, []string{b.nodesKey}, b.cfg.Node, b.cfg.LeaseTTL.Milliseconds()).Slice()
	if err == nil && len(res)%2 != 1 {
		err = fmt.Errorf("lease script returned %d values", len(res))
	}
	if err != nil {
		b.mu.Lock()
		b.leaseErr = err
		b.mu.Unlock()
		return err
	}
	fresh := res[0] == int64(1)
	// A lease lapses, by our clock, its time left after we sent the
	// script: a little early, never late.
	live := make(map[string]lease, len(res)/2)
	for i := 1; i < len(res); i += 2 {
		node, _ := res[i].(string)
		left, _ := res[i+1].(int64)
		live[node] = lease{expiry: sent.Add(time.Duration(left) * time.Millisecond)}
	}
	var gone []string
	now := time.Now()
	b.mu.Lock()
	for node, l := range b.live {
		if _, ok := live[node]; ok || node == b.cfg.Node {
			continue
		}
		if (fresh || l.carried) && now.Before(l.expiry) {
			live[node] = lease{expiry: l.expiry, carried: true}
			continue
		}
		gone = append(gone, node)
	}
	b.live = live
	b.lastOK = now
	b.leaseErr = nil
	b.mu.Unlock()
	// Alive already says false when the Receiver hears of it.
	for _, node := range gone {
		b.emit(event{gone: node})
	}
	b.refreshes.Add(1)
	return nil
}
