package session

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/seed-544bbf9f/comet/transport"
)

// The owner's side of the cluster: the calls a front makes for a session
// this node owns, and the links it serves through fronts.

func (c *cluster) ownedLink(node string, link uint64) *ownerLink {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.owned[linkKey{node, link}]
}

// held returns the session id for a request a front forwarded here, or
// the answer to give instead. With failover, a session the store says
// this node owns and that it does not hold (it gave it up when its lease
// lapsed, and no other node claimed it) is claimed again; one that moved
// to another node meanwhile is answered 503, for the client to try again
// and reach that node; only a session the store does not know is 404.
func (c *cluster) held(id string) (*Session, *envelope) {
	if s := c.h.sessions.get(id); s != nil {
		return s, nil
	}
	if c.store == nil {
		return nil, refusal(http.StatusNotFound, notFound)
	}
	if c.h.closing.Load() {
		return nil, refusal(http.StatusServiceUnavailable,
			errorBody(transport.CodeBrokerUnavailable, "the session's node is handing it over; try again"))
	}
	ctx, cancel := context.WithTimeout(c.h.baseCtx, c.h.opts.BrokerTimeout)
	defer cancel()
	s, _, err := c.adopt(ctx, id)
	switch {
	case s != nil:
		return s, nil
	case errors.Is(err, ErrSessionLost):
		return nil, refusal(http.StatusNotFound, notFound)
	}
	return nil, refusal(http.StatusServiceUnavailable,
		errorBody(transport.CodeBrokerUnavailable, "the session moved to another node; try again"))
}

// refusal is a reply that answers a forwarded request with an HTTP error.
func refusal(status int, body transport.ErrorBody) *envelope {
	p, _ := json.Marshal(body)
	return &envelope{num: uint64(status), data: p}
}

var notFound = errorBody(transport.CodeSessionNotFound, "no such session (expired, closed or never made)")

// open makes the owner's side of a link: the attachment, checked as a
// local attach is, not yet started.
func (c *cluster) open(e *envelope) *envelope {
	s, refused := c.held(e.a)
	if s == nil {
		return refused
	}
	q, err := url.ParseQuery(string(e.data))
	if err != nil {
		return refusal(http.StatusBadRequest, errorBody(transport.CodeBadRequest, "%v", err))
	}
	params, err := transport.ParseAttach(q)
	if err != nil {
		return refusal(http.StatusBadRequest, errorBody(transport.CodeBadRequest, "%v", err))
	}
	if status, body, ok := s.useTicket(params.Ticket); !ok {
		return refusal(status, body)
	}
	ol := &ownerLink{c: c, key: linkKey{e.from, e.link}, a: s.newAttachment(e.b, params)}
	// A front that never serves the link (its upgrade failed, and its end
	// was lost) must not hold it for ever.
	ol.expiry = time.AfterFunc(c.h.opts.BrokerTimeout, func() {
		if !ol.isServed() {
			ol.end(errors.New("comet: link never served"))
		}
	})
	c.mu.Lock()
	c.owned[ol.key] = ol
	c.mu.Unlock()
	if e.num&serveNow != 0 {
		if r := c.startLink(ol, e.num); r.num != replyOK {
			// The session finished between the lookup and the start.
			return refusal(http.StatusNotFound, notFound)
		}
	}
	return &envelope{}
}

// serve starts the owner's side of a link with a downstream that writes
// through the front.
func (c *cluster) serve(e *envelope) *envelope {
	ol := c.ownedLink(e.from, e.link)
	if ol == nil {
		return &envelope{num: replyError, a: errNoLink.Error()}
	}
	ol.mu.Lock()
	if ol.ended {
		ol.mu.Unlock()
		return &envelope{num: replyError, a: errNoLink.Error()}
	}
	ol.served = true
	ol.mu.Unlock()
	return c.startLink(ol, e.num)
}

// startLink starts a link's attachment on a downstream that writes
// through its front, with the delivery and raw flag of num.
func (c *cluster) startLink(ol *ownerLink, num uint64) *envelope {
	ol.mu.Lock()
	ol.served = true
	ol.mu.Unlock()
	ol.expiry.Stop()
	// From here the attachment's end closes ds, which forgets the link.
	ds := &remoteDownstream{ol: ol, raw: num&2 != 0}
	if err := ol.a.Start(ds, transport.Delivery(num&1)); err != nil {
		return &envelope{num: replyError, a: errorString(err)}
	}
	return &envelope{}
}

// forget drops an ended link and tells its front, once.
func (ol *ownerLink) forget() {
	ol.once.Do(func() {
		c := ol.c
		c.mu.Lock()
		delete(c.owned, ol.key)
		c.mu.Unlock()
		ol.expiry.Stop()
		s := ol.a.s
		s.mu.Lock()
		err := ol.a.err
		s.mu.Unlock()
		go c.send(ol.key.node, &envelope{kind: kindEndDown, link: ol.key.link, a: errorString(err)})
	})
}

// end ends the link's attachment. One never served has no downstream to
// close, which would forget the link: end forgets it then.
func (ol *ownerLink) end(err error) {
	ol.mu.Lock()
	ol.ended = true
	served := ol.served
	ol.mu.Unlock()
	ol.a.End(err)
	if !served {
		ol.forget()
	}
}

func (ol *ownerLink) isServed() bool {
	ol.mu.Lock()
	defer ol.mu.Unlock()
	return ol.served
}

// recv feeds what the front's client sent on a link to its attachment.
func (c *cluster) recv(e *envelope) *envelope {
	ol := c.ownedLink(e.from, e.link)
	if ol == nil {
		return &envelope{num: replyError, a: errNoLink.Error()}
	}
	var err error
	if e.num == 1 {
		err = ol.a.ReceiveBinary(e.data)
	} else {
		err = ol.a.Receive(e.data)
	}
	if err != nil {
		return &envelope{num: replyError, a: errorString(err)}
	}
	return &envelope{}
}

// post applies a POST's body forwarded by a front.
func (c *cluster) post(e *envelope) *envelope {
	s, refused := c.held(e.a)
	if s == nil {
		return refused
	}
	status, body, reply := c.h.applyPost(s, e.data, e.num)
	if status != http.StatusOK {
		return refusal(status, body)
	}
	return &envelope{num: http.StatusOK, data: reply}
}

// ownerLink is the owner's side of a link.
type ownerLink struct {
	c      *cluster
	key    linkKey
	a      *attachment
	expiry *time.Timer

	once sync.Once // forget

	mu     sync.Mutex
	served bool // Start was called: closing its downstream forgets the link
	ended  bool
}

// remoteDownstream is the downstream of a link's attachment on the owner:
// each batch is a call to the front, which writes it to its client.
type remoteDownstream struct {
	ol  *ownerLink
	raw bool

	mu     sync.Mutex
	cancel context.CancelFunc // ends the write in flight
	closed bool
}

// WriteBatch implements transport.Downstream. It waits for the front's
// write, or Close, or WriteTimeout plus the broker's delay.
func (d *remoteDownstream) WriteBatch(b *transport.Batch) error {
	c := d.ol.c
	ctx, cancel := context.WithTimeout(context.Background(), c.h.opts.WriteTimeout+c.h.opts.BrokerTimeout)
	defer cancel()
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return net.ErrClosed
	}
	d.cancel = cancel
	d.mu.Unlock()
	raw := uint64(0)
	if b.Raw {
		raw = 1
	}
	r, err := c.call(ctx, d.ol.key.node, &envelope{kind: kindBatch, link: d.ol.key.link, num: raw, data: b.Bytes, spans: b.Frames})
	switch {
	case err != nil:
		return err
	case r.num == replyDone:
		return transport.ErrDone
	case r.num == replyError:
		return errors.New(r.a)
	}
	return nil
}

// WritesRaw implements transport.RawDownstream: whether the front's
// downstream does.
func (d *remoteDownstream) WritesRaw() bool { return d.raw }

// Close implements transport.Downstream: it ends a write in flight and
// forgets the link.
func (d *remoteDownstream) Close() error {
	d.mu.Lock()
	d.closed = true
	if d.cancel != nil {
		d.cancel()
	}
	d.mu.Unlock()
	d.ol.forget()
	return nil
}
