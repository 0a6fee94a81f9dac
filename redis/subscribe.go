package redis

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// errNoPong is the subscriber's error when a self-ping did not come back
// in time: the subscription is replaced.
var errNoPong = errors.New("no reply to PING on the subscriber connection")

// subscribeLoop keeps the inbox subscribed until Close. go-redis
// reconnects and subscribes again after a connection error; a silent
// connection, found by a PING, is replaced with a new PubSub.
func (b *Broker) subscribeLoop() {
	defer b.loops.Done()
	log := logLimiter{what: "inbox subscription"}
	for {
		// Subscribe ignores a failure to connect: the PubSub keeps the
		// channel, and its next read connects and subscribes.
		ctx, cancel := context.WithTimeout(b.ctx, b.cfg.OpTimeout)
		ps := b.client.Subscribe(ctx, b.subscribedChannels()...)
		cancel()
		b.mu.Lock()
		if b.ctx.Err() != nil {
			b.mu.Unlock()
			ps.Close()
			return
		}
		b.pubsub = ps
		b.mu.Unlock()
		b.receive(ps, &log)
		ps.Close()
		if b.ctx.Err() != nil {
			return
		}
	}
}

// pingMark opens the payload of a self-ping: a message the subscriber
// publishes to its own inbox to prove the subscription alive. The
// handler's messages never start with a zero byte.
const pingMark = "\x00ping:"

// receive reads ps until Close, or until ps must be replaced.
//
// A read has no deadline: a deadline that passes in the middle of a large
// message leaves go-redis's reader inside it, and every later read
// garbled ("invalid reply"). Instead a watch publishes a self-ping every
// Refresh, on the lease's connection, and closes ps, ending the read, when
// one has not come back within LeaseTTL: a connection that died without a
// reset (a cable, a firewall) looks just like an idle one.
func (b *Broker) receive(ps *goredis.PubSub, log *logLimiter) {
	var pongs atomic.Int64 // the last self-ping received
	watchDone := make(chan struct{})
	defer close(watchDone)
	go b.watchSubscription(ps, &pongs, watchDone, log)
	fails := 0
	for {
		msg, err := ps.Receive(b.ctx)
		if b.ctx.Err() != nil {
			return
		}
		if err != nil {
			if errors.Is(err, goredis.ErrClosed) {
				return // the watch closed it: subscribe again
			}
			b.subFailed(log, err)
			fails++
			// The first retry is at once: go-redis has reconnected
			// already when it could. Then back off, up to Refresh.
			if fails > 1 {
				select {
				case <-time.After(min(b.cfg.Refresh, 10*time.Millisecond<<min(fails, 10))):
				case <-b.ctx.Done():
					return
				}
			}
			continue
		}
		fails = 0
		switch m := msg.(type) {
		case *goredis.Message:
			if n, ok := strings.CutPrefix(m.Payload, pingMark); ok {
				if v, err := strconv.ParseInt(n, 10, 64); err == nil {
					pongs.Store(v)
				}
				continue
			}
			if m.Channel != b.inbox {
				topic, ok := strings.CutPrefix(m.Channel, b.cfg.Prefix+":t:")
				p, err := parsePublication(m.Payload)
				if ok && err == nil {
					b.emit(event{topic: topic, pub: p})
				}
				continue
			}
			b.emit(event{msg: m.Payload})
		case *goredis.Subscription:
			if m.Kind == "subscribe" && m.Channel != b.inbox {
				b.confirmTopic(m.Channel)
			}
			if m.Kind == "subscribe" && m.Channel == b.inbox {
				b.mu.Lock()
				b.subErr = nil
				b.mu.Unlock()
				log.ok(b)
				b.subOnce.Do(func() { close(b.subscribed) })
			}
		}
	}
}

// watchSubscription self-pings ps every Refresh until done, and closes it
// when a ping is not back by the next one plus OpTimeout.
func (b *Broker) watchSubscription(ps *goredis.PubSub, pongs *atomic.Int64, done <-chan struct{}, log *logLimiter) {
	tick := time.NewTicker(b.cfg.Refresh)
	defer tick.Stop()
	var sent int64
	var sentAt time.Time
	for {
		select {
		case <-done:
			return
		case <-b.ctx.Done():
			return
		case <-tick.C:
		}
		// A busy node reads its inbox late; only a ping lost for a lease
		// says the subscription is dead (a cut the lease's own
		// connection shows within OpTimeout anyway).
		if sent > 0 && pongs.Load() < sent && time.Since(sentAt) > b.cfg.LeaseTTL {
			b.subFailed(log, errNoPong)
			ps.Close()
			return
		}
		if pongs.Load() < sent {
			continue // the last one is still on its way
		}
		sent++
		sentAt = time.Now()
		ctx, cancel := context.WithTimeout(b.ctx, b.cfg.OpTimeout)
		// A failed publish is the lease's to report; the ping is late then,
		// and the watch replaces the subscription if it stays late.
		b.cfg.leaseClient.Publish(ctx, b.inbox, pingMark+strconv.FormatInt(sent, 10))
		cancel()
	}
}

// subFailed records and logs why the inbox is not subscribed.
func (b *Broker) subFailed(log *logLimiter, err error) {
	b.mu.Lock()
	b.subErr = err
	b.mu.Unlock()
	log.fail(b, err)
}
