package prometheus

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seed-544bbf9f/comet"
)

// Options configures a collector. nil means the defaults.
type Options struct {
	// Namespace prefixes every metric name. Default "comet".
	Namespace string
	// ConstLabels are added to every metric, to tell the handlers of one
	// process apart (e.g. {"handler": "chat"}). Default none.
	ConstLabels prometheus.Labels
}

// collector reads a handler's Stats at each scrape.
type collector struct {
	h *comet.Handler

	sessionsOpen, sessionsOpened, sessionsClosed *prometheus.Desc
	transportChanges                             *prometheus.Desc
	messages, bytes                              *prometheus.Desc
	sendWaits, sendsSkipped, slowCloses          *prometheus.Desc
	broadcastsDropped                            *prometheus.Desc
	attach                                       *prometheus.Desc
	refusals, rateLimited                        *prometheus.Desc
	carriersOpen, subRequests                    *prometheus.Desc
}

// NewCollector returns a collector of h's counters; register it on a
// prometheus.Registerer. opts may be nil. It reads h.Stats once per
// scrape and keeps nothing between scrapes.
func NewCollector(h *comet.Handler, opts *Options) prometheus.Collector {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Namespace == "" {
		o.Namespace = "comet"
	}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(o.Namespace, "", name), help, labels, o.ConstLabels)
	}
	return &collector{
		h:                h,
		sessionsOpen:     desc("sessions_open", "Sessions held now, by the transport delivering to each (none: not attached yet).", "transport"),
		sessionsOpened:   desc("sessions_opened_total", "Sessions negotiated."),
		sessionsClosed:   desc("sessions_closed_total", "Sessions finished, by close code.", "code"),
		transportChanges: desc("transport_changes_total", "Moves of a session's delivery to another transport, by the client's reason.", "reason"),
		messages:         desc("messages_total", "Application messages received (in) and written (out, resends included).", "transport", "direction"),
		bytes:            desc("bytes_total", "Encoded frame bytes received (in) and written (out), before the transport's own framing.", "transport", "direction"),
		sendWaits:        desc("send_waits_total", "Sends that found the outbound window full and waited."),
		sendsSkipped:     desc("sends_skipped_total", "TrySends and Broadcast offers refused by a full outbound window."),
		slowCloses:       desc("slow_consumer_closes_total", "Sessions closed with 3002 because their outbound window was full."),
		broadcastsDropped: desc("broadcasts_dropped_total",
			"Broadcasts that reached this node's sessions but not the other nodes of its cluster."),
		attach:       desc("attach_seconds", "Time from a session's negotiate to its first delivering attach."),
		refusals:     desc("negotiate_refusals_total", "Negotiates refused, by error code.", "code"),
		rateLimited:  desc("rate_limited_total", "Negotiates refused by a per-address limit and messages over the inbound rate."),
		carriersOpen: desc("carriers_open", "Carriers of the sessions of a page's tabs held now, by kind (stream or polls).", "kind"),
		subRequests:  desc("sub_requests_total", "Attaches and POSTs of sessions started by carriers for a page's tabs."),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.sessionsOpen, c.sessionsOpened, c.sessionsClosed, c.transportChanges,
		c.messages, c.bytes, c.sendWaits, c.sendsSkipped, c.slowCloses, c.broadcastsDropped, c.attach, c.refusals, c.rateLimited,
		c.carriersOpen, c.subRequests} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.h.Stats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for t, n := range st.SessionsOpen {
		gauge(c.sessionsOpen, float64(n), orNone(t))
	}
	counter(c.sessionsOpened, st.SessionsOpened)
	for code, n := range st.SessionsClosed {
		counter(c.sessionsClosed, n, strconv.Itoa(int(code)))
	}
	for reason, n := range st.TransportChanges {
		counter(c.transportChanges, n, orNone(reason))
	}
	for _, dir := range []struct {
		name            string
		messages, bytes map[string]uint64
	}{
		{"in", st.MessagesIn, st.BytesIn},
		{"out", st.MessagesOut, st.BytesOut},
	} {
		for t, n := range dir.messages {
			counter(c.messages, n, orNone(t), dir.name)
		}
		for t, n := range dir.bytes {
			counter(c.bytes, n, orNone(t), dir.name)
		}
	}
	counter(c.sendWaits, st.SendWaits)
	counter(c.sendsSkipped, st.SendsSkipped)
	counter(c.slowCloses, st.SlowConsumerCloses)
	counter(c.broadcastsDropped, st.BroadcastsDropped)
	buckets := make(map[float64]uint64, len(st.AttachLatency.Buckets))
	for _, b := range st.AttachLatency.Buckets {
		buckets[b.UpperBound.Seconds()] = b.Count
	}
	ch <- prometheus.MustNewConstHistogram(c.attach, st.AttachLatency.Count, st.AttachLatency.Sum.Seconds(), buckets)
	for code, n := range st.NegotiateRefusals {
		counter(c.refusals, n, code)
	}
	counter(c.rateLimited, st.RateLimited)
	for kind, n := range st.CarriersOpen {
		gauge(c.carriersOpen, float64(n), kind)
	}
	counter(c.subRequests, st.SubRequests)
}

// orNone names the empty transport or reason of Stats: a label with an
// empty value reads, in PromQL, as no label at all.
func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
