package client

import (
	"context"
	"errors"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// Ticket limits. The server honours a ticket for 60 s and keeps at most 8
// unused ones per session, dropping the oldest (PROTOCOL.md section 5).
// The client trusts a ticket for less, so that one taken just before its
// expiry still arrives in time.
const (
	ticketTTL  = 50 * time.Second
	maxTickets = 8
)

var errNoTicket = errors.New("comet: the server sent no ticket")

// ticketPool holds the unused attach tickets, oldest first. It is guarded
// by the Conn's mutex.
type ticketPool struct {
	list []heldTicket
}

type heldTicket struct {
	token string
	at    time.Time // when it was received
}

// add keeps a ticket received at now, dropping the oldest beyond
// maxTickets as the server does.
func (p *ticketPool) add(token string, now time.Time) {
	if token == "" {
		return
	}
	p.list = append(p.list, heldTicket{token, now})
	if len(p.list) > maxTickets {
		p.list = p.list[len(p.list)-maxTickets:]
	}
}

// take removes and returns the newest ticket still fresh at now; expired
// ones are dropped.
func (p *ticketPool) take(now time.Time) (string, bool) {
	p.prune(now)
	if len(p.list) == 0 {
		return "", false
	}
	t := p.list[len(p.list)-1]
	p.list = p.list[:len(p.list)-1]
	return t.token, true
}

// low reports whether fewer than two fresh tickets are left: a POST then
// asks for one, so that an attach rarely needs a POST of its own.
func (p *ticketPool) low(now time.Time) bool {
	p.prune(now)
	return len(p.list) < 2
}

// clear drops every ticket, after the server refused one of them.
func (p *ticketPool) clear() { p.list = nil }

func (p *ticketPool) prune(now time.Time) {
	i := 0
	for i < len(p.list) && now.Sub(p.list[i].at) >= ticketTTL {
		i++
	}
	p.list = p.list[i:]
}

// ticket returns an unused attach ticket: one from the pool, or, when none
// is left, one from a key-only POST with wantTicket set.
func (c *Conn) ticket(ctx context.Context) (string, error) {
	c.mu.Lock()
	tok, ok := c.tickets.take(time.Now())
	c.mu.Unlock()
	if ok {
		return tok, nil
	}
	var b transport.Batch
	c.mu.Lock()
	ack := c.appendKeyLocked(&b, true)
	c.mu.Unlock()
	if _, err := c.post(ctx, b.Bytes, ack); err != nil {
		return "", err
	}
	c.mu.Lock()
	tok, ok = c.tickets.take(time.Now())
	c.mu.Unlock()
	if !ok {
		return "", errNoTicket
	}
	return tok, nil
}
