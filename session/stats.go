package session

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// Stats is a snapshot of a handler's counters, made by Handler.Stats. The
// handler keeps them itself, as atomics, whether or not anyone reads them;
// a snapshot reads each one once, so two values of one snapshot may be a
// few events apart under load. Counters (every field but SessionsOpen)
// only grow for the life of the handler.
//
// Maps keyed by transport hold every transport the handler offers (zero
// or not), "" for sessions not attached yet where that applies, and
// "other" for an adapter whose name is not one of this module's. Keys
// that come from clients are mapped onto a fixed set, so no map grows
// past a bound a client could choose.
type Stats struct {
	// SessionsOpen is the number of sessions held now, by the transport
	// delivering to each or, while detached, the last one that did; ""
	// counts the sessions whose client has not attached yet.
	SessionsOpen map[string]int64 `json:"sessions_open"`
	// SessionsOpened counts the sessions negotiate has made.
	SessionsOpened uint64 `json:"sessions_opened"`
	// SessionsClosed counts the sessions finished and forgotten, by the
	// code of the close that ended them (sent by either side, or 3000 for
	// an expired one); 0 counts a code outside 1000–1015, 3000–3099 and
	// 4000–4999.
	SessionsClosed map[transport.CloseCode]uint64 `json:"sessions_closed"`
	// TransportChanges counts the times a session's delivery moved to a
	// different transport (not its first attach), by the client's reason
	// for leaving the previous one (PROTOCOL.md's why: "" when it gave
	// none, ws_refused, ws_hung, ws_silent, stream_buffered, idle_cut,
	// early_death, upgraded, or "other" for any other).
	TransportChanges map[string]uint64 `json:"transport_changes"`
	// MessagesIn counts the application messages received, by the
	// transport that carried them: for a POST, the session's delivering
	// transport, which the POST serves, or "" for a POST that came before
	// the first attach delivered.
	MessagesIn map[string]uint64 `json:"messages_in"`
	// MessagesOut counts the application messages written to a transport,
	// resends after a transport change included.
	MessagesOut map[string]uint64 `json:"messages_out"`
	// BytesIn counts the encoded upstream bytes received: WebSocket
	// messages and POST bodies, before decoding.
	BytesIn map[string]uint64 `json:"bytes_in"`
	// BytesOut counts the encoded frame bytes written to a transport,
	// before its own framing (WebSocket headers, SSE's "data:" lines,
	// HTTP chunks).
	BytesOut map[string]uint64 `json:"bytes_out"`
	// SendWaits counts the calls of Send and SendPrepared that found the
	// outbound window full and waited for the client's acknowledgements.
	SendWaits uint64 `json:"send_waits"`
	// SendsSkipped counts the calls of TrySend and TrySendPrepared, and the
	// sessions a Broadcast skipped, that found the window full
	// (ErrWouldBlock).
	SendsSkipped uint64 `json:"sends_skipped"`
	// SlowConsumerCloses counts the sessions closed with 3002 because
	// their window was full (Options.CloseSlowConsumers).
	SlowConsumerCloses uint64 `json:"slow_consumer_closes"`
	// BroadcastsDropped counts broadcasts that reached this node's
	// sessions but not the other nodes of its cluster: the queue to the
	// broker was full, or the broker failed.
	BroadcastsDropped uint64 `json:"broadcasts_dropped"`
	// AttachLatency is the time from a session's negotiate to the first
	// attach that delivered to it.
	AttachLatency Histogram `json:"attach_latency"`
	// NegotiateRefusals counts the negotiates refused, by the error code
	// of the answer: rate_limited, overloaded, shutting_down,
	// unauthorized, forbidden, origin_refused, unsupported_version,
	// bad_request, no_protocol, or "other". Only codes that occurred are
	// present.
	NegotiateRefusals map[string]uint64 `json:"negotiate_refusals"`
	// RateLimited counts the times a per-address limit refused a negotiate
	// (Options.NegotiateRate or MaxSessionsPerAddress, answered 429
	// rate_limited) and the messages over Options.InboundRate, each of
	// which closed its session with 3007.
	RateLimited uint64 `json:"rate_limited"`
	// CarriersOpen is the number of shared carriers held now (PROTOCOL.md
	// section 16), by kind: "stream", and "polls" for those of pages
	// behind a proxy that holds streams back (and for a page's first
	// moments, before its stream is proven). Absent with Options.NoSharing.
	CarriersOpen map[string]int64 `json:"carriers_open,omitempty"`
	// SubRequests counts the sub-requests carriers have started: each a
	// session's attach or POST, carried for a page's tab.
	SubRequests uint64 `json:"sub_requests"`
}

// Histogram is a snapshot of a histogram of durations.
type Histogram struct {
	// Count is the number of observations.
	Count uint64 `json:"count"`
	// Sum is their total; in JSON, in nanoseconds.
	Sum time.Duration `json:"sum"`
	// Buckets are cumulative, by increasing UpperBound; the observations
	// above the last bound are Count minus the last bucket's.
	Buckets []Bucket `json:"buckets"`
}

// Bucket is one bucket of a Histogram.
type Bucket struct {
	// UpperBound is the bucket's inclusive bound; in JSON, in nanoseconds.
	UpperBound time.Duration `json:"le"`
	// Count is the number of observations at or below UpperBound.
	Count uint64 `json:"count"`
}

// Stats returns a snapshot of the handler's counters. It allocates the
// snapshot's maps; the counting itself costs an atomic add per event and
// nothing per read.
func (h *Handler) Stats() Stats {
	c := &h.counters
	st := Stats{
		SessionsOpen:       make(map[string]int64),
		SessionsOpened:     c.opened.Load(),
		SessionsClosed:     c.closed.snapshot(),
		TransportChanges:   make(map[string]uint64),
		MessagesIn:         make(map[string]uint64),
		MessagesOut:        make(map[string]uint64),
		BytesIn:            make(map[string]uint64),
		BytesOut:           make(map[string]uint64),
		SendWaits:          c.sendWaits.Load(),
		SendsSkipped:       c.sendsSkipped.Load(),
		SlowConsumerCloses: c.slowCloses.Load(),
		BroadcastsDropped:  c.broadcastsDropped.Load(),
		AttachLatency:      c.attach.snapshot(),
		NegotiateRefusals:  make(map[string]uint64),
		RateLimited:        c.rateLimited.Load(),
		SubRequests:        c.subRequests.Load(),
	}
	if !h.opts.NoSharing {
		st.CarriersOpen = map[string]int64{"polls": c.carriers[0].Load(), "stream": c.carriers[1].Load()}
	}
	for i := range numTransports {
		name := transportNames[i]
		open := c.open[i].Load()
		in, out, bin, bout := c.traffic.sum(i)
		offered := i == tNone || h.offers(name)
		if offered || open != 0 {
			st.SessionsOpen[name] = open
		}
		if i == tNone && in == 0 && bin == 0 {
			// Only a POST before the first attach is counted here.
			continue
		}
		if offered || in|out|bin|bout != 0 {
			st.MessagesIn[name], st.MessagesOut[name] = in, out
			st.BytesIn[name], st.BytesOut[name] = bin, bout
		}
	}
	for i, r := range reasons {
		if n := c.changes[i].Load(); n > 0 {
			st.TransportChanges[r] = n
		}
	}
	for i, r := range refusals {
		if n := c.refusals[i].Load(); n > 0 {
			st.NegotiateRefusals[r] = n
		}
	}
	return st
}

// offers reports whether the handler offers the transport of index name
// ("other" stands for every adapter of another name).
func (h *Handler) offers(name string) bool {
	for _, o := range h.offered {
		if transportNames[transportIndex(o)] == name {
			return true
		}
	}
	return false
}

// ServeStats answers any request with Stats as JSON, for a server without
// Prometheus. It is not part of ServeHTTP: mount it where only operators
// reach it, as the counters describe the whole server. For expvar, publish
// a function (this package does not import expvar, whose import alone
// adds /debug/vars to http.DefaultServeMux):
//
//	expvar.Publish("comet", expvar.Func(func() any { return h.Stats() }))
func (h *Handler) ServeStats(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(h.Stats())
}
