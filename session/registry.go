package session

import "sync"

// registry holds the sessions this node owns, by id: a map guarded by a
// mutex. Sessions owned by other nodes of a cluster are reached through
// Options.Broker, never through it.
type registry struct {
	mu sync.RWMutex
	m  map[string]*Session
}

func newRegistry() *registry {
	return &registry{m: make(map[string]*Session)}
}

func (r *registry) add(s *Session) {
	r.mu.Lock()
	r.m[s.ID()] = s
	r.mu.Unlock()
}

func (r *registry) get(id string) *Session {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.m[id]
}

func (r *registry) remove(id string) {
	r.mu.Lock()
	delete(r.m, id)
	r.mu.Unlock()
}

func (r *registry) len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.m)
}

// snapshot returns the sessions held now.
func (r *registry) snapshot() []*Session {
	r.mu.RLock()
	defer r.mu.RUnlock()
	all := make([]*Session, 0, len(r.m))
	for _, s := range r.m {
		all = append(all, s)
	}
	return all
}

// each calls f on a snapshot, without the lock, so f may close sessions.
func (r *registry) each(f func(*Session) bool) {
	for _, s := range r.snapshot() {
		if !f(s) {
			return
		}
	}
}

// Session returns the session with the id if this node owns it, or nil.
func (h *Handler) Session(id string) *Session { return h.sessions.get(id) }

// Range calls f for each session this node owns, until f returns false.
// It calls f on a snapshot, so f may close sessions.
func (h *Handler) Range(f func(*Session) bool) { h.sessions.each(f) }
