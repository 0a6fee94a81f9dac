package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// A topic is two keys and a channel:
//
//	<prefix>:t:{<topic>}:meta  hash: epoch, last (the last offset given)
//	<prefix>:t:{<topic>}:h     stream: the history, entry IDs <offset>-0,
//	                           fields d (the data) and t (Redis's ms clock)
//	<prefix>:t:<topic>         channel: each publication, "<epoch>:<offset>:<data>"
//
// One script numbers a publication, appends it to the history, trims the
// history to its count and PUBLISHes it, so live delivery and the history
// never disagree on order. The history expires when the topic has been
// quiet for its age; the meta hash a day after, so that a position in an
// idle topic stays recoverable while its history could hold it.

// metaTTL is how long a quiet topic keeps its epoch and offset.
const metaTTL = 24 * 60 * 60 * 1000 // ms

// publishScript: KEYS meta, history; ARGV data, max count, age ms,
// channel, a fresh epoch in case the topic has none. It returns the
// epoch and the offset.
var publishScript = goredis.NewScript(`
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
	epoch = ARGV[5]
	redis.call('HSET', KEYS[1], 'epoch', epoch, 'last', 0)
end
local off = redis.call('HINCRBY', KEYS[1], 'last', 1)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], off .. '-0', 'd', ARGV[1], 't', now)
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.max(tonumber(ARGV[3]), ` + strconv.Itoa(metaTTL) + `))
redis.call('PUBLISH', ARGV[4], epoch .. ':' .. off .. ':' .. ARGV[1])
return {epoch, off}
`)

// historyScript: KEYS meta, history; ARGV after's epoch and offset, max
// count, age ms, a fresh epoch in case the topic has none. It returns the
// epoch, the last offset, then offset and data of each publication after
// the offset that is younger than the age, at most count, when the epoch
// is after's.
var historyScript = goredis.NewScript(`
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
	epoch = ARGV[5]
	redis.call('HSET', KEYS[1], 'epoch', epoch, 'last', 0)
	redis.call('PEXPIRE', KEYS[1], math.max(tonumber(ARGV[4]), ` + strconv.Itoa(metaTTL) + `))
end
local last = tonumber(redis.call('HGET', KEYS[1], 'last'))
local out = {epoch, last}
local after = tonumber(ARGV[2])
if ARGV[1] ~= epoch or after >= last then
	return out
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local entries = redis.call('XRANGE', KEYS[2], '(' .. after .. '-0', '+', 'COUNT', ARGV[3])
for _, e in ipairs(entries) do
	local f = e[2]
	local data, at
	for i = 1, #f, 2 do
		if f[i] == 'd' then data = f[i + 1] elseif f[i] == 't' then at = tonumber(f[i + 1]) end
	end
	if data and at and now - at <= tonumber(ARGV[4]) then
		out[#out + 1] = tonumber(string.match(e[1], '^(%d+)'))
		out[#out + 1] = data
	end
end
return out
`)

func (b *Broker) topicKeys(topic string) []string {
	base := b.cfg.Prefix + ":t:{" + topic + "}"
	return []string{base + ":meta", base + ":h"}
}

func (b *Broker) topicChannel(topic string) string { return b.cfg.Prefix + ":t:" + topic }

func newEpoch() string {
	var p [6]byte
	rand.Read(p[:])
	return hex.EncodeToString(p[:])
}

// Publish implements session.Broker.
func (b *Broker) Publish(ctx context.Context, topic string, data []byte, limits session.HistoryLimits) (transport.TopicPosition, error) {
	if b.closed.Load() {
		return transport.TopicPosition{}, errClosed
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.OpTimeout)
	defer cancel()
	res, err := publishScript.Run(ctx, b.client, b.topicKeys(topic), data, max(limits.Size, 1),
		max(limits.Age.Milliseconds(), 1), b.topicChannel(topic), newEpoch()).Slice()
	if err != nil {
		return transport.TopicPosition{}, fmt.Errorf("%w: publish to %q: %w", session.ErrBrokerUnavailable, topic, err)
	}
	if len(res) != 2 {
		return transport.TopicPosition{}, fmt.Errorf("comet/redis: publish answered %v", res)
	}
	epoch, _ := res[0].(string)
	off, _ := res[1].(int64)
	return transport.TopicPosition{Epoch: epoch, Offset: uint64(off)}, nil
}

// History implements session.Broker.
func (b *Broker) History(ctx context.Context, topic string, after transport.TopicPosition, limits session.HistoryLimits) (
	[]session.Publication, transport.TopicPosition, bool, error) {
	var top transport.TopicPosition
	if b.closed.Load() {
		return nil, top, false, errClosed
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.OpTimeout)
	defer cancel()
	res, err := historyScript.Run(ctx, b.client, b.topicKeys(topic), after.Epoch, after.Offset, max(limits.Size, 1),
		max(limits.Age.Milliseconds(), 1), newEpoch()).Slice()
	if err != nil {
		return nil, top, false, fmt.Errorf("%w: history of %q: %w", session.ErrBrokerUnavailable, topic, err)
	}
	if len(res) < 2 || len(res)%2 != 0 {
		return nil, top, false, fmt.Errorf("comet/redis: history answered %d values", len(res))
	}
	top.Epoch, _ = res[0].(string)
	last, _ := res[1].(int64)
	top.Offset = uint64(last)
	var pubs []session.Publication
	for i := 2; i < len(res); i += 2 {
		off, _ := res[i].(int64)
		data, _ := res[i+1].(string)
		pubs = append(pubs, session.Publication{Position: transport.TopicPosition{Epoch: top.Epoch, Offset: uint64(off)},
			Data: []byte(data)})
	}
	complete := after.Epoch == top.Epoch && after.Offset <= top.Offset
	if complete && after.Offset < top.Offset {
		// Every publication after after, none missing.
		complete = len(pubs) > 0 && pubs[0].Position.Offset == after.Offset+1 &&
			pubs[len(pubs)-1].Position.Offset == top.Offset &&
			uint64(len(pubs)) == top.Offset-after.Offset
	}
	return pubs, top, complete, nil
}

// Subscribe implements session.Broker: the inbox's subscriber connection
// subscribes to the topic's channel too, and Subscribe waits for Redis to
// confirm it.
func (b *Broker) Subscribe(ctx context.Context, topic string) error {
	if b.closed.Load() {
		return errClosed
	}
	ch := b.topicChannel(topic)
	ctx, cancel := context.WithTimeout(ctx, b.cfg.OpTimeout)
	defer cancel()
	b.mu.Lock()
	if b.topics == nil {
		b.topics = make(map[string]chan struct{})
	}
	confirmed, ok := b.topics[ch]
	if !ok {
		confirmed = make(chan struct{})
		b.topics[ch] = confirmed
	}
	ps := b.pubsub
	b.mu.Unlock()
	if !ok && ps != nil {
		if err := ps.Subscribe(ctx, ch); err != nil {
			return fmt.Errorf("%w: subscribe to %q: %w", session.ErrBrokerUnavailable, topic, err)
		}
	}
	select {
	case <-confirmed:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: subscribe to %q: %w", session.ErrBrokerUnavailable, topic, ctx.Err())
	}
}

// Unsubscribe implements session.Broker.
func (b *Broker) Unsubscribe(ctx context.Context, topic string) error {
	if b.closed.Load() {
		return nil
	}
	ch := b.topicChannel(topic)
	b.mu.Lock()
	_, ok := b.topics[ch]
	delete(b.topics, ch)
	ps := b.pubsub
	b.mu.Unlock()
	if !ok || ps == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.OpTimeout)
	defer cancel()
	return ps.Unsubscribe(ctx, ch)
}

// subscribedChannels returns the channels a fresh subscriber connection
// subscribes to: the inbox and every topic's, whose confirmations are
// awaited again.
func (b *Broker) subscribedChannels() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	chs := []string{b.inbox}
	for ch := range b.topics {
		chs = append(chs, ch)
	}
	return chs
}

// confirmTopic marks a topic's channel subscribed.
func (b *Broker) confirmTopic(ch string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, ok := b.topics[ch]; ok {
		select {
		case <-c:
		default:
			close(c)
		}
	}
}

var errPublication = errors.New("comet/redis: malformed publication")

// parsePublication reads a topic channel's message.
func parsePublication(payload string) (session.Publication, error) {
	epoch, rest, ok := strings.Cut(payload, ":")
	if !ok {
		return session.Publication{}, errPublication
	}
	off, data, ok := strings.Cut(rest, ":")
	n, err := strconv.ParseUint(off, 10, 64)
	if !ok || err != nil {
		return session.Publication{}, errPublication
	}
	return session.Publication{Position: transport.TopicPosition{Epoch: epoch, Offset: n}, Data: []byte(data)}, nil
}
