package comet_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/session"
)

// switchBroker is a one-node Broker whose availability the test sets.
type switchBroker struct{ down atomic.Bool }

func (b *switchBroker) Node() string                               { return "n1" }
func (b *switchBroker) Start(session.Receiver)                     {}
func (b *switchBroker) Send(context.Context, string, []byte) error { return nil }
func (b *switchBroker) Alive(string) bool                          { return true }
func (b *switchBroker) Publish(context.Context, string, []byte, session.HistoryLimits) (comet.TopicPosition, error) {
	return comet.TopicPosition{}, nil
}
func (b *switchBroker) Subscribe(context.Context, string) error   { return nil }
func (b *switchBroker) Unsubscribe(context.Context, string) error { return nil }
func (b *switchBroker) History(context.Context, string, comet.TopicPosition, session.HistoryLimits) (
	[]session.Publication, comet.TopicPosition, bool, error) {
	return nil, comet.TopicPosition{}, true, nil
}
func (b *switchBroker) Err() error {
	if b.down.Load() {
		return session.ErrBrokerUnavailable
	}
	return nil
}

// TestClusterWatchBlip has a node's broker unavailable for a moment that
// one look of the handler's watch (every second) happens to see, then
// available, then unavailable for good from just before the next look:
// the sessions must close with 3008 no sooner than BrokerTimeout after
// the outage began. A watch that looked only every second took two looks
// that found the broker unavailable for one outage since the first, and
// closed them up to a second early (found by TestClusterNodeCutOff in the
// redis module, on a loaded machine whose refresh ran late once just
// before the cut); the watch now looks ten times per BrokerTimeout.
func TestClusterWatchBlip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 3 * time.Second
		b := &switchBroker{}
		closed := make(chan time.Time, 1)
		h := comet.NewHandler(&comet.Options{Broker: b, BrokerTimeout: timeout, AttachTimeout: time.Minute,
			Serve: func(s *comet.Session) {
				<-s.Context().Done()
				closed <- time.Now()
			}})
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			h.Shutdown(ctx)
		}()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/comet/negotiate?v=1", strings.NewReader(`{"codes":[3008]}`)))
		if rec.Code != http.StatusOK {
			t.Fatalf("negotiate: %d %s", rec.Code, rec.Body)
		}
		// The watch looks every 300 ms after NewHandler: at 0.9 s, 1.2 s, …
		time.Sleep(900 * time.Millisecond)
		b.down.Store(true) // a blip, seen by the look at 1 s
		time.Sleep(200 * time.Millisecond)
		b.down.Store(false)
		time.Sleep(800 * time.Millisecond)
		b.down.Store(true) // the outage, from 1.9 s
		outage := time.Now()
		if d := (<-closed).Sub(outage); d < timeout {
			t.Errorf("session closed %v after the outage began, before BrokerTimeout %v", d, timeout)
		}
	})
}
