// Package prometheus exports a Comet handler's counters to Prometheus.
//
// NewCollector returns a collector that reads Handler.Stats when it is
// scraped and reports it as constant metrics: the handler keeps its
// counters whether or not anyone reads them, so registering a collector
// adds nothing to the paths that send and receive messages.
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(cometprom.NewCollector(h, nil))
//	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// The metrics, with Options.Namespace "comet" (the default):
//
//	comet_sessions_open{transport}                 gauge: sessions held, by the transport delivering to each ("none" before the first attach)
//	comet_sessions_opened_total                    sessions negotiated
//	comet_sessions_closed_total{code}              sessions finished, by close code ("0" for a code outside the ranges kept)
//	comet_transport_changes_total{reason}          moves to another transport, by the client's why ("none" when it gave none, "other" for an unknown one)
//	comet_messages_total{transport,direction}      application messages, direction "in" or "out" (resends included)
//	comet_bytes_total{transport,direction}         encoded frame bytes, before the transport's own framing
//	comet_send_waits_total                         Sends that found the outbound window full and waited
//	comet_sends_skipped_total                      TrySends and Broadcast offers refused by a full window
//	comet_slow_consumer_closes_total               sessions closed with 3002
//	comet_broadcasts_dropped_total                 broadcasts not carried to a cluster's other nodes
//	comet_attach_seconds                           histogram: negotiate to first delivering attach
//	comet_negotiate_refusals_total{code}           negotiates refused, by error code (rate_limited, overloaded, …)
//	comet_rate_limited_total                       negotiates refused by a per-address limit and messages over the inbound rate
//	comet_carriers_open{kind}                      gauge: carriers shared by a page's tabs, by kind (stream or polls)
//	comet_sub_requests_total                       attaches and POSTs started by carriers for a page's tabs
//
// comet.Stats (session.Stats) documents each quantity exactly. The
// collector is safe for concurrent use, as Prometheus requires.
package prometheus
