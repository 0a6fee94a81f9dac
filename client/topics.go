package client

import (
	"fmt"
	"maps"

	"github.com/seed-544bbf9f/comet/transport"
)

// Message is a message from the server, as RecvMessage returns it.
type Message struct {
	Type transport.MessageType
	Data []byte
	// Topic is the topic the server published the message to, or "" for
	// a message the server's application sent to this session alone.
	Topic string
}

// TopicGapError is what Recv returns, once, where a topic's messages are
// missing: the server could not recover them from the position the Conn
// presented (its history had dropped them, or had begun again), or lost
// them while the session was subscribed. The messages after it are the
// topic's from Position on; whatever state the application built from the
// topic's earlier messages may be stale.
type TopicGapError struct {
	Topic    string
	Position transport.TopicPosition
}

func (e *TopicGapError) Error() string {
	return fmt.Sprintf("comet: messages of topic %q before offset %d (epoch %s) could not be recovered",
		e.Topic, e.Position.Offset+1, e.Position.Epoch)
}

// Positions returns the position of each topic the Conn has received
// messages of: the last offset received, in its epoch. A fresh session
// made with Options.Reconnect presents them, and so resumes each topic
// where it stopped (PROTOCOL.md section 15); an application that keeps
// them across restarts gives them back in Options.Topics.
func (c *Conn) Positions() map[string]transport.TopicPosition {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.positionsLocked()
}

func (c *Conn) positionsLocked() map[string]transport.TopicPosition {
	if len(c.positions) == 0 {
		return nil
	}
	return maps.Clone(c.positions)
}

// subscribedLocked applies a subscribed frame: the topic's position, and
// a TopicGapError for Recv when its messages could not be recovered.
func (c *Conn) subscribedLocked(f *transport.Frame) {
	pos := transport.TopicPosition{Epoch: f.Epoch, Offset: f.Offset}
	c.positions[f.Topic] = pos
	if !f.Recovered && !c.in.discard {
		c.in.queue = append(c.in.queue, inMsg{err: &TopicGapError{Topic: f.Topic, Position: pos}})
	}
}
