package session

import (
	"crypto/rand"
	"encoding/base64"
	"time"
)

// Ticket limits, from PROTOCOL.md section 5.
const (
	ticketTTL  = 60 * time.Second
	maxTickets = 8
)

// tickets are a session's unused, single-use attach tickets. Guarded by the
// session's mutex.
type tickets struct {
	m map[string]time.Time // ticket → expiry
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
	if t.m == nil {
		t.m = make(map[string]time.Time, maxTickets)
	}
	oldest, oldestAt := "", time.Time{}
	for k, exp := range t.m {
		if now.After(exp) {
			delete(t.m, k)
			continue
		}
		if oldest == "" || exp.Before(oldestAt) {
			oldest, oldestAt = k, exp
		}
	}
	if len(t.m) >= maxTickets {
		delete(t.m, oldest)
	}
	tok := randomToken()
	t.m[tok] = now.Add(ticketTTL)
	return tok
}

// use consumes a ticket, reporting whether it was valid.
func (t *tickets) use(tok string) bool {
	exp, ok := t.m[tok]
	if !ok {
		return false
	}
	delete(t.m, tok)
	return time.Now().Before(exp)
}
