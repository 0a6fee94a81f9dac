package session

import "sync"

// Registry holds a handler's sessions and routes requests to them by id.
// It is the seam for running several server nodes: an implementation may
// keep sessions elsewhere and forward frames. Implementations must be safe
// for concurrent use.
type Registry interface {
	// Add stores a new session.
	Add(s *Session)
	// Get returns the session with the id, or nil.
	Get(id string) *Session
	// Remove forgets the session with the id, if present.
	Remove(id string)
	// Len returns the number of sessions held.
	Len() int
	// Range calls f for each session until f returns false.
	Range(f func(*Session) bool)
}

// MemoryRegistry is the default Registry: a map guarded by a mutex.
type MemoryRegistry struct {
	mu sync.RWMutex
	m  map[string]*Session
}

// NewMemoryRegistry returns an empty in-memory registry.
func NewMemoryRegistry() *MemoryRegistry {
	return &MemoryRegistry{m: make(map[string]*Session)}
}

// Add implements Registry.
func (r *MemoryRegistry) Add(s *Session) {
	r.mu.Lock()
	r.m[s.ID()] = s
	r.mu.Unlock()
}

// Get implements Registry.
func (r *MemoryRegistry) Get(id string) *Session {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.m[id]
}

// Remove implements Registry.
func (r *MemoryRegistry) Remove(id string) {
	r.mu.Lock()
	delete(r.m, id)
	r.mu.Unlock()
}

// Len implements Registry.
func (r *MemoryRegistry) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.m)
}

// Range implements Registry. It calls f on a snapshot, without the lock,
// so f may close sessions.
func (r *MemoryRegistry) Range(f func(*Session) bool) {
	r.mu.RLock()
	all := make([]*Session, 0, len(r.m))
	for _, s := range r.m {
		all = append(all, s)
	}
	r.mu.RUnlock()
	for _, s := range all {
		if !f(s) {
			return
		}
	}
}
