package session

import (
	"bytes"
	"context"
	"time"
)

// Handler.Broadcast in a cluster: each node subscribes to a reserved
// topic no application can name, and a node's broadcasts are published
// to it, from one goroutine, so that the other nodes get them in the
// order the node made them. A node offers what it receives there to its
// own sessions, as Broadcast does, skipping its own broadcasts, which its
// Broadcast has offered already.

// broadcastTopic is the reserved topic: checkTopic refuses a name that
// starts with a NUL byte.
const broadcastTopic = "\x00broadcast"

// broadcastQueue bounds the broadcasts waiting for the broker. Past it a
// broadcast reaches this node's sessions only, and is counted, as a
// session whose window is full is skipped.
const broadcastQueue = 256

// broadcastHistory keeps the reserved topic's history minimal: nobody
// resumes it.
var broadcastHistory = HistoryLimits{Size: 1, Age: time.Second}

// broadcast queues a broadcast's publication for the other nodes.
func (c *cluster) broadcast(publication []byte) {
	select {
	case c.bcast <- publication:
	default:
		c.h.counters.broadcastsDropped.Add(1)
	}
}

// publishBroadcasts joins the reserved topic, then publishes this node's
// broadcasts until the handler shuts down. Each carries the node's id
// first, so that the node can tell its own.
func (c *cluster) publishBroadcasts() {
	ctx := c.h.baseCtx
	for {
		jctx, cancel := context.WithTimeout(ctx, c.h.opts.BrokerTimeout)
		err := c.b.Subscribe(jctx, broadcastTopic)
		cancel()
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-c.bcast:
			data := append(append([]byte(c.node), '\n'), p...)
			pctx, cancel := context.WithTimeout(ctx, c.h.opts.BrokerTimeout)
			if _, err := c.b.Publish(pctx, broadcastTopic, data, broadcastHistory); err != nil {
				c.h.counters.broadcastsDropped.Add(1)
				c.h.logger.Debug("comet: broadcast not published", "err", err)
			}
			cancel()
		}
	}
}

// received offers another node's broadcast to this node's sessions.
func (c *cluster) received(p Publication) {
	origin, data, ok := bytes.Cut(p.Data, []byte{'\n'})
	if !ok || string(origin) == c.node {
		return
	}
	e, err := decodeMessage(data)
	if err != nil {
		return
	}
	c.h.broadcastLocal(&PreparedMessage{encoded: e})
}
