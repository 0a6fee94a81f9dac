package main

import (
	"slices"
	"sync"
	"time"

	"github.com/seed-544bbf9f/comet"
)

// typingEvery is how often one member's typing is passed on at most.
const typingEvery = time.Second

// chat holds the rooms, in this process only. One mutex guards them all:
// the work done under it is a few appends and sends that never wait
// (TrySend), so no page can hold up another. Sending under the lock is
// what keeps every member's view in the order of the room's history.
type chat struct {
	h     *comet.Handler // for prepared messages
	debug bool           // tell each page its session ID, for the cut button
	now   func() time.Time

	mu    sync.Mutex
	rooms map[string]*room
}

type room struct {
	name    string
	members []*member
	history []*message // the last historySize, oldest first
	lastID  uint64
	active  time.Time // when someone last joined or spoke
}

// member is one session's place in the chat; its fields are guarded by
// chat.mu.
type member struct {
	s        *comet.Session
	room     *room // nil before the first join
	nick     string
	typingAt time.Time
}

func newChat(debug bool) *chat {
	return &chat{debug: debug, now: time.Now, rooms: map[string]*room{}}
}

// serve runs one session: hello, then each request in turn, until the
// session ends. Bad input is answered with an error event and the session
// goes on.
func (c *chat) serve(s *comet.Session) {
	m := &member{s: s}
	defer c.leave(m)
	h := hello{Type: "hello"}
	if c.debug {
		h.Session, h.Debug = s.ID(), true
	}
	m.send(encode(h))
	ctx := s.Context()
	for {
		typ, p, err := s.Recv(ctx)
		if err != nil {
			return
		}
		if err := c.handle(m, typ, p); err != nil {
			c.mu.Lock()
			m.send(encode(err))
			c.mu.Unlock()
		}
	}
}

// handle applies one message from m's page.
func (c *chat) handle(m *member, typ comet.MessageType, p []byte) *chatError {
	if typ != comet.Text {
		return errBinary
	}
	r, err := parseRequest(p)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch r.Type {
	case "join":
		return c.joinLocked(m, r.Room, r.Nick)
	case "say":
		return c.sayLocked(m, r.Text)
	default: // typing
		return c.typingLocked(m)
	}
}

// joinLocked moves m to room name as nick: presence for the room it left
// and the room it joined, and for m the room's state and its history.
func (c *chat) joinLocked(m *member, name, nick string) *chatError {
	rm := c.rooms[name]
	if rm == nil {
		if !c.makeRoomLocked() {
			return errTooManyRms
		}
		rm = &room{name: name}
		c.rooms[name] = rm
	}
	for _, o := range rm.members {
		if o != m && o.nick == nick {
			return errNickTaken
		}
	}
	c.leaveLocked(m)
	m.room, m.nick = rm, nick
	rm.members = append(rm.members, m)
	rm.active = c.now()
	m.send(encode(joined{Type: "joined", Room: rm.name, Nick: nick, History: len(rm.history), Online: rm.online()}))
	for _, msg := range rm.history {
		m.send(encode(msg))
	}
	c.broadcastLocked(rm, presence{Type: "presence", Room: rm.name, Online: rm.online(), Joined: nick})
	return nil
}

// makeRoomLocked makes space for one more room if the chat is full, by
// forgetting the empty room idle longest. It reports whether there is
// space.
func (c *chat) makeRoomLocked() bool {
	if len(c.rooms) < maxRooms {
		return true
	}
	var idle *room
	for _, rm := range c.rooms {
		if len(rm.members) == 0 && (idle == nil || rm.active.Before(idle.active)) {
			idle = rm
		}
	}
	if idle == nil {
		return false
	}
	delete(c.rooms, idle.name)
	return true
}

func (c *chat) sayLocked(m *member, text string) *chatError {
	rm := m.room
	if rm == nil {
		return errNotInRoom
	}
	rm.lastID++
	now := c.now()
	msg := &message{Type: "message", Room: rm.name, ID: rm.lastID, Nick: m.nick, Text: text, Time: now.UnixMilli()}
	rm.history = append(rm.history, msg)
	if len(rm.history) > historySize {
		rm.history = slices.Delete(rm.history, 0, len(rm.history)-historySize)
	}
	rm.active = now
	m.typingAt = time.Time{} // whoever speaks has stopped typing
	c.broadcastLocked(rm, msg)
	return nil
}

func (c *chat) typingLocked(m *member) *chatError {
	rm := m.room
	if rm == nil {
		return errNotInRoom
	}
	now := c.now()
	if now.Sub(m.typingAt) < typingEvery {
		return nil
	}
	m.typingAt = now
	t := encode(typing{Type: "typing", Room: rm.name, Nick: m.nick})
	for _, o := range rm.members {
		if o != m {
			o.send(t)
		}
	}
	return nil
}

// leave takes m out of its room when its session ends.
func (c *chat) leave(m *member) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leaveLocked(m)
}

func (c *chat) leaveLocked(m *member) {
	rm := m.room
	if rm == nil {
		return
	}
	rm.members = slices.DeleteFunc(rm.members, func(o *member) bool { return o == m })
	m.room = nil
	c.broadcastLocked(rm, presence{Type: "presence", Room: rm.name, Online: rm.online(), Left: m.nick})
}

// broadcastLocked sends v to every member of rm, encoded once. A member
// whose outbound window is full is closed with 3002 (the handler's
// CloseSlowConsumers) rather than left with a hole in its conversation.
func (c *chat) broadcastLocked(rm *room, v any) {
	pm, err := c.h.NewPreparedMessage(comet.Text, encode(v))
	if err != nil { // cannot happen: every message is far below MaxMessage
		return
	}
	sessions := make([]*comet.Session, len(rm.members))
	for i, o := range rm.members {
		sessions[i] = o.s
	}
	comet.Broadcast(sessions, pm)
}

// online lists the nicknames in rm, sorted.
func (rm *room) online() []string {
	nicks := make([]string, len(rm.members))
	for i, o := range rm.members {
		nicks[i] = o.nick
	}
	slices.Sort(nicks)
	return nicks
}

// send gives p to m's session without waiting (see broadcastLocked).
func (m *member) send(p []byte) {
	m.s.TrySend(comet.Text, p)
}
