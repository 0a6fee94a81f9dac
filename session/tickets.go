package session

import (
	"crypto/rand"
	"encoding/base64"
	"slices"
	"time"
)

// Ticket limits, from PROTOCOL.md section 5.
const (
	ticketTTL  = 60 * time.Second
	maxTickets = 8
)

// tickets are a session's unused, single-use attach tickets. Guarded by the
// session's mutex. A session holds two or three at a time, so a short
// slice searched in order serves, in a third of the memory a map takes.
type tickets struct {
	list []ticket
}

type ticket struct {
	tok string
	exp time.Time
}

// randomToken returns 128 random bits, base64url without padding.
func randomToken() string {
	var b [16]byte
	rand.Read(b[:]) // never fails; see crypto/rand.Read
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// mint makes a fresh ticket, dropping expired ones and, beyond
// maxTickets, the one closest to expiry.
func (t *tickets) mint() string {
	now := time.Now()
	t.list = slices.DeleteFunc(t.list, func(k ticket) bool { return now.After(k.exp) })
	if len(t.list) >= maxTickets {
		// Minted in order with one TTL: the first expires first.
		t.list = slices.Delete(t.list, 0, 1)
	}
	tok := randomToken()
	t.list = append(t.list, ticket{tok, now.Add(ticketTTL)})
	return tok
}

// use consumes a ticket, reporting whether it was valid.
func (t *tickets) use(tok string) bool {
	i := slices.IndexFunc(t.list, func(k ticket) bool { return k.tok == tok })
	if i < 0 {
		return false
	}
	exp := t.list[i].exp
	t.list = slices.Delete(t.list, i, i+1)
	return time.Now().Before(exp)
}
