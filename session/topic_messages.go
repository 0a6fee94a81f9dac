package session

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/seed-544bbf9f/comet/internal/window"
	"github.com/seed-544bbf9f/comet/transport"
)

// topicMessage is a publication encoded once for every local subscriber:
// as a plain message, and with its position for clients that agreed.
type topicMessage struct {
	plain, positioned window.Entry
}

// encodePublication is a publication's Data: the frame type, then the
// payload's bytes.
func encodePublication(typ transport.MessageType, p []byte) []byte {
	return append([]byte{byte(typ.FrameType())}, p...)
}

func decodePublication(topic string, p Publication) (*topicMessage, error) {
	plain, err := decodeMessage(p.Data)
	if err != nil {
		return nil, err
	}
	positioned := plain
	positioned.Suffix = transport.AppendPosition(nil, topic, p.Position.Epoch, p.Position.Offset)
	return &topicMessage{plain: plain, positioned: positioned}, nil
}

// decodeMessage is the window entry of a publication's Data, without a
// position.
func decodeMessage(data []byte) (window.Entry, error) {
	if len(data) == 0 {
		return window.Entry{}, errors.New("comet: empty publication")
	}
	typ, payload := transport.Type(data[0]), data[1:]
	if typ != transport.TypeText && typ != transport.TypeBinary {
		return window.Entry{}, fmt.Errorf("comet: publication of frame type %q", typ)
	}
	return window.Entry{Type: typ, Payload: transport.EncodePayload(typ, payload), Size: len(payload)}, nil
}

// pushTopic queues a topic's message for the session, or closes a session
// whose window has no room: a topic skips nothing.
func (s *Session) pushTopic(m *topicMessage) {
	e := m.plain
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.positions {
		e = m.positioned
	}
	if s.closeErr != nil {
		return
	}
	if !s.out.HasRoom(e.Size) {
		s.closeLocked(transport.CloseSlowConsumer, "too slow for a topic's messages", 0)
		s.h.counters.slowCloses.Add(1)
		return
	}
	s.pushLocked(e)
}

// pushLocked queues e and wakes the delivering attachment.
func (s *Session) pushLocked(e window.Entry) {
	s.pushOut(e)
	s.h.buffered.Add(s.stripe, int64(e.Size))
	s.replyReady.Wake()
	if a := s.deliverer; a != nil {
		a.wake()
	}
}

// pushSubscribed queues where a subscription starts (for a client that
// agreed to positions) and the history it recovered. The history goes
// whatever the window's room: it is bounded by the topic's.
func (s *Session) pushSubscribed(t *topic, at transport.TopicPosition, recovered bool, pubs []Publication) error {
	topic := t.name
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closeErr != nil {
		return s.closeErr
	}
	if s.subs[topic] != t {
		return errFinished // finished, or unsubscribed, while subscribing
	}
	if s.positions {
		y := transport.AppendPosition(nil, topic, at.Epoch, at.Offset)[1:]
		if recovered {
			y = append(y, ",1"...)
		} else {
			y = append(y, ",0"...)
		}
		s.pushLocked(window.Entry{Type: transport.TypeSubscribed, Payload: y})
	}
	for _, p := range pubs {
		m, err := decodePublication(topic, p)
		if err != nil {
			continue
		}
		if s.positions {
			s.pushLocked(m.positioned)
		} else {
			s.pushLocked(m.plain)
		}
	}
	return nil
}

// Publish sends a message to every session subscribed to topic, on every
// node of the cluster, and keeps it in the topic's history: subscribers
// get the topic's messages once each, in the one order they were
// published in, whichever nodes published them. It returns the message's
// position. Publish does not wait for the subscribers: a subscriber that
// cannot keep up is closed (see Session.Subscribe). ctx bounds the
// broker's call.
func (h *Handler) Publish(ctx context.Context, topic string, typ transport.MessageType, p []byte) (transport.TopicPosition, error) {
	if err := checkTopic(topic); err != nil {
		return transport.TopicPosition{}, err
	}
	if err := window.Check(typ, p, h.opts.MaxMessage); err != nil {
		return transport.TopicPosition{}, err
	}
	return h.topics.store.Publish(ctx, topic, encodePublication(typ, p), h.topics.limits)
}

// Publish publishes to topic through b from a process that holds no
// sessions (a worker): the nodes of b's cluster deliver it as
// Handler.Publish does. limits bound the topic's history as the nodes'
// Options.TopicHistory and TopicHistoryAge do; give the same values.
func Publish(ctx context.Context, b Broker, topic string, typ transport.MessageType, p []byte, limits HistoryLimits) (
	transport.TopicPosition, error) {
	if err := checkTopic(topic); err != nil {
		return transport.TopicPosition{}, err
	}
	if err := window.Check(typ, p, math.MaxInt); err != nil {
		return transport.TopicPosition{}, err
	}
	return b.Publish(ctx, topic, encodePublication(typ, p), limits)
}
