package session

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/seed-544bbf9f/comet/transport"
)

// In a cluster a carrier lives on the node its opening request reached,
// and its id starts with that node's: "node.random". The client's later
// requests, polls and ops, may reach any node (no sticky sessions): one
// that does not hold the carrier forwards them to the node that does,
// through the Broker, and answers with what that node answered. A
// carrier stream needs no forwarding: it is the opening request.

// carrierNode returns the node that holds carrier id, if it is another
// node of this cluster; "" otherwise.
func (h *Handler) carrierNode(id string) string {
	if h.cluster == nil {
		return ""
	}
	node, _, ok := strings.Cut(id, ".")
	if !ok || node == h.cluster.node || !ValidNode(node) {
		return ""
	}
	return node
}

// forwardPoll answers a poll of a carrier that node holds with node's
// answer.
func (c *cluster) forwardPoll(w http.ResponseWriter, r *http.Request, node, id string, ack uint64) {
	ctx, cancel := context.WithTimeout(r.Context(), c.h.opts.Hold+c.h.opts.BrokerTimeout)
	defer cancel()
	rep, err := c.call(ctx, node, &envelope{kind: kindSharePoll, a: id, num: ack})
	c.answer(w, rep, err)
}

// forwardOps carries out a POST's ops on the carrier that node holds.
func (c *cluster) forwardOps(w http.ResponseWriter, r *http.Request, node, id string, body []byte) {
	ctx, cancel := context.WithTimeout(r.Context(), c.h.opts.BrokerTimeout)
	defer cancel()
	rep, err := c.call(ctx, node, &envelope{kind: kindShareOps, a: id, data: body})
	c.answer(w, rep, err)
}

// answer writes the answer to a forwarded carrier request: the carrier
// node's, or 404 share_not_found when that node is gone (its carriers
// with it), or 503 when the broker failed.
func (c *cluster) answer(w http.ResponseWriter, rep *envelope, err error) {
	switch {
	case errors.Is(err, errNodeGone):
		writeError(w, http.StatusNotFound, errorBody(transport.CodeShareNotFound, "the carrier's node is gone: open another"))
	case err != nil:
		transport.WriteError(w, http.StatusServiceUnavailable,
			errorBody(transport.CodeBrokerUnavailable, "the carrier's node could not be reached: %v", err), 0)
	case rep.num != http.StatusOK:
		writeReply(w, rep)
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store, no-transform")
		w.Write(rep.data)
	}
}

// sharePoll serves a poll another node forwarded.
func (c *cluster) sharePoll(e *envelope) *envelope {
	ca := c.h.shares.get(e.a)
	if ca == nil || ca.stream {
		return refusal(http.StatusNotFound, errorBody(transport.CodeShareNotFound, "no carrier %q here polls: open another", e.a))
	}
	// The front waits Hold and the broker's timeout; this answers within
	// Hold, or at once when the carrier ends.
	body, ok := ca.await(ca.ctx, e.num)
	if !ok {
		return refusal(http.StatusNotFound, errorBody(transport.CodeShareNotFound, "carrier %q has ended: open another", e.a))
	}
	return &envelope{num: http.StatusOK, data: body}
}

// shareOps serves ops another node forwarded.
func (c *cluster) shareOps(e *envelope) *envelope {
	ca := c.h.shares.get(e.a)
	if ca == nil {
		return refusal(http.StatusNotFound, errorBody(transport.CodeShareNotFound, "no carrier %q here: open another", e.a))
	}
	ctx, cancel := context.WithTimeout(ca.ctx, c.h.opts.BrokerTimeout)
	defer cancel()
	if status, eb := ca.applyBody(ctx, e.data); status != http.StatusOK {
		return refusal(status, eb)
	}
	return &envelope{num: http.StatusOK, data: []byte("{}")}
}
