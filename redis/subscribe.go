package redis

import (
	"context"
	"errors"
	"net"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// errNoPong is the subscriber's error when its connection answered
// neither a message nor a PING within OpTimeout: a connection that died
// without a reset (a cable, a firewall) looks just like an idle one.
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
		ps := b.client.Subscribe(ctx, b.inbox)
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

// receive reads ps until Close, or until ps must be replaced.
func (b *Broker) receive(ps *goredis.PubSub, log *logLimiter) {
	pinged := false
	fails := 0
	for {
		wait := b.cfg.Refresh // of silence, before a PING
		if pinged {
			wait = b.cfg.OpTimeout
		}
		// b.ctx has no deadline: wait bounds the read, and the dial of
		// a reconnect is bounded by the client's DialTimeout.
		msg, err := ps.ReceiveTimeout(b.ctx, wait)
		if b.ctx.Err() != nil {
			return
		}
		if err != nil {
			if isTimeout(err) {
				if pinged {
					b.subFailed(log, errNoPong)
					return
				}
				ctx, cancel := context.WithTimeout(b.ctx, b.cfg.OpTimeout)
				err = ps.Ping(ctx)
				cancel()
				if err == nil {
					pinged = true
					continue
				}
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
		fails, pinged = 0, false
		switch m := msg.(type) {
		case *goredis.Message:
			b.emit(event{msg: m.Payload})
		case *goredis.Subscription:
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

// subFailed records and logs why the inbox is not subscribed.
func (b *Broker) subFailed(log *logLimiter, err error) {
	b.mu.Lock()
	b.subErr = err
	b.mu.Unlock()
	log.fail(b, err)
}

// isTimeout reports whether err is a read that timed out: the
// connection may be fine and merely idle.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() && !errors.Is(err, context.DeadlineExceeded)
}
