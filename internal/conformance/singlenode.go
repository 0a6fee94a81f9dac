package conformance

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/seed-544bbf9f/comet/session"
)

// SingleNode is the Factory of one handler on an httptest server on
// loopback, mounted at the default prefix. It honours every EnvOptions.
func SingleNode(t *testing.T, opts *session.Options, eo EnvOptions) *Server {
	t.Helper()
	h := NewHandler(opts, eo)
	var handler http.Handler = h
	if eo.Wrap != nil {
		handler = eo.Wrap(handler)
	}
	srv := httptest.NewUnstartedServer(handler)
	if eo.Listener != nil {
		srv.Listener = eo.Listener(srv.Listener)
	}
	s := &Server{Handlers: []*session.Handler{h}}
	if eo.HTTP2 {
		srv.EnableHTTP2 = true
		srv.StartTLS()
		s.Client = srv.Client()
	} else {
		srv.Start()
	}
	s.URL = srv.URL + h.Options().Prefix
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return s
}
