package comet_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/client"
)

// quiet keeps the examples' output to what they print.
var quiet = slog.New(slog.DiscardHandler)

// An echo server, and a Go client talking to it.
func ExampleNewHandler() {
	h := comet.NewHandler(&comet.Options{
		Serve: func(s *comet.Session) {
			ctx := s.Context() // ends when the session does
			for {
				typ, p, err := s.Recv(ctx)
				if err != nil {
					return // a *comet.CloseError once closed
				}
				if err := s.Send(ctx, typ, p); err != nil {
					return
				}
			}
		},
	})
	mux := http.NewServeMux()
	mux.Handle("/comet/", h)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer h.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, srv.URL+"/comet", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(comet.CloseNormal, "done")
	c.Send(ctx, comet.Text, []byte("hello"))
	_, p, _ := c.Recv(ctx)
	fmt.Println(string(p), "over", c.Transport())
	// Output: hello over websocket
}

// Shutting down: the handler first, with a bounded ctx, since
// http.Server.Shutdown does not wait for WebSockets and streams; then the
// server. Every session is closed with 3001, and the client is told.
func ExampleHandler_Shutdown() {
	h := comet.NewHandler(&comet.Options{
		Serve:  func(s *comet.Session) { <-s.Context().Done() },
		Logger: quiet,
	})
	mux := http.NewServeMux()
	mux.Handle("/comet/", h)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	// The handler cannot bound a slow client's headers, nor an idle
	// keep-alive connection: the server must (README, "In production").
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "http://"+ln.Addr().String()+"/comet", nil)
	if err != nil {
		fmt.Println(err)
		return
	}

	fmt.Println("handler:", h.Shutdown(ctx))
	fmt.Println("server:", srv.Shutdown(ctx), errors.Is(<-served, http.ErrServerClosed))
	_, _, err = c.Recv(ctx)
	fmt.Println("client:", comet.CloseStatus(err))
	<-c.Done()
	// Output:
	// handler: <nil>
	// server: <nil> true
	// client: 3001 (server shutdown)
}

// A message fanned out to every session is encoded once.
func ExampleHandler_Broadcast() {
	h := comet.NewHandler(&comet.Options{
		Serve:  func(s *comet.Session) { <-s.Context().Done() },
		Logger: quiet,
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var clients []*client.Conn
	for range 3 {
		c, err := client.Dial(ctx, srv.URL+"/comet", nil)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer c.Close(comet.CloseNormal, "")
		clients = append(clients, c)
	}

	m, err := h.NewPreparedMessage(comet.Text, []byte("market open"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("delivered to", h.Broadcast(m), "sessions")
	for i, c := range clients {
		_, p, err := c.Recv(ctx)
		fmt.Printf("client %d: %s %v\n", i, p, err)
	}
	// Output:
	// delivered to 3 sessions
	// client 0: market open <nil>
	// client 1: market open <nil>
	// client 2: market open <nil>
}

// Sessions subscribed to a topic get what is published to it, in order,
// on whichever node of a cluster they live; on one node, as here, the
// topic lives in the handler's memory. A client that keeps its positions
// resumes the topic in a fresh session (client.Options.Topics).
func ExampleSession_Subscribe() {
	subscribed := make(chan struct{})
	h := comet.NewHandler(&comet.Options{
		Serve: func(s *comet.Session) {
			if _, err := s.Subscribe(s.Context(), "prices"); err != nil {
				return
			}
			subscribed <- struct{}{}
			<-s.Context().Done()
		},
		Logger: quiet,
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, srv.URL+"/comet", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(comet.CloseNormal, "")
	<-subscribed

	for _, p := range []string{"EUR 1.08", "EUR 1.09"} {
		if _, err := h.Publish(ctx, "prices", comet.Text, []byte(p)); err != nil {
			fmt.Println(err)
			return
		}
	}
	for range 2 {
		m, err := c.RecvMessage(ctx)
		fmt.Printf("%s: %s %v\n", m.Topic, m.Data, err)
	}
	fmt.Println("position:", c.Positions()["prices"].Offset)
	// Output:
	// prices: EUR 1.08 <nil>
	// prices: EUR 1.09 <nil>
	// position: 2
}

// Authorize runs at negotiate; what it returns stays with the session, and
// a refusal reaches the client as a status it can act on.
func ExampleOptions_authorize() {
	h := comet.NewHandler(&comet.Options{
		Authorize: func(r *http.Request) (any, error) {
			// Check a real credential here: a signed token, a session cookie.
			user, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok {
				return nil, &comet.AuthError{Status: http.StatusUnauthorized, Message: "sign in first"}
			}
			return user, nil
		},
		Serve: func(s *comet.Session) {
			s.Send(s.Context(), comet.Text, fmt.Appendf(nil, "hello, %v", s.Request().Auth))
			<-s.Context().Done()
		},
		Logger: quiet,
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	_, err := client.Dial(ctx, srv.URL+"/comet", nil)
	var refused *client.HTTPError
	if errors.As(err, &refused) {
		fmt.Println("anonymous:", refused.Status, refused.Body.Message)
	}

	c, err := client.Dial(ctx, srv.URL+"/comet", &client.Options{
		Header: http.Header{"Authorization": {"Bearer alice"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(comet.CloseNormal, "")
	_, p, _ := c.Recv(ctx)
	fmt.Println("alice:", string(p))
	// Output:
	// anonymous: 401 sign in first
	// alice: hello, alice
}

// Negotiate is the one hook that decides a negotiate: it sees the request,
// the client's address and the relay target asked for, and refuses,
// redirects, or admits with what the session keeps.
func ExampleOptions_negotiate() {
	h := comet.NewHandler(&comet.Options{
		Negotiate: func(n *comet.Negotiation) (comet.Decision, error) {
			user, ok := strings.CutPrefix(n.Request.Header.Get("Authorization"), "Bearer ")
			if !ok {
				return comet.Decision{}, &comet.AuthError{Status: http.StatusUnauthorized, Message: "sign in first"}
			}
			if n.Target != "chat.internal:6667" {
				return comet.Decision{}, &comet.AuthError{Status: http.StatusForbidden, Message: "no such back-end"}
			}
			return comet.Decision{Auth: user, Target: n.Target}, nil
		},
		Serve: func(s *comet.Session) {
			r := s.Request()
			s.Send(s.Context(), comet.Text, fmt.Appendf(nil, "%v may reach %s", r.Auth, r.Target))
			<-s.Context().Done()
		},
		Logger: quiet,
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	alice := http.Header{"Authorization": {"Bearer alice"}}

	_, err := client.Dial(ctx, srv.URL+"/comet", &client.Options{Header: alice, Target: "db.internal:5432"})
	var refused *client.HTTPError
	if errors.As(err, &refused) {
		fmt.Println("db:", refused.Status, refused.Body.Message)
	}

	c, err := client.Dial(ctx, srv.URL+"/comet", &client.Options{Header: alice, Target: "chat.internal:6667"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(comet.CloseNormal, "")
	_, p, _ := c.Recv(ctx)
	fmt.Println("chat:", string(p))
	// Output:
	// db: 403 no such back-end
	// chat: alice may reach chat.internal:6667
}

// Subprotocols: the server lists those it supports, the client offers its
// own, best first, as with new WebSocket(url, protocols); the server takes
// the first of the client's list that it supports, and both ends report
// it, on every transport.
func ExampleOptions_protocols() {
	h := comet.NewHandler(&comet.Options{
		Protocols: []string{"v12.stomp", "v11.stomp"},
		Serve: func(s *comet.Session) {
			s.Send(s.Context(), comet.Text, []byte("server speaks "+s.Protocol()))
			<-s.Context().Done()
		},
		Logger: quiet,
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, srv.URL+"/comet", &client.Options{Protocols: []string{"v10.stomp", "v11.stomp", "v12.stomp"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(comet.CloseNormal, "done")
	_, p, _ := c.Recv(ctx)
	fmt.Println("client speaks", c.Protocol())
	fmt.Println(string(p))

	_, err = client.Dial(ctx, srv.URL+"/comet", &client.Options{Protocols: []string{"mqtt"}})
	fmt.Println(errors.Is(err, client.ErrNoProtocol))
	// Output:
	// client speaks v11.stomp
	// server speaks v11.stomp
	// true
}

// Compression on WebSocket: the server offers permessage-deflate, the Go
// client asks for it (browsers always do), and large messages travel
// compressed. Either end alone leaves the connection uncompressed.
func ExampleOptions_compression() {
	h := comet.NewHandler(&comet.Options{
		Compression: &comet.Compression{}, // the default level, 1
		Serve: func(s *comet.Session) {
			for {
				typ, p, err := s.Recv(s.Context())
				if err != nil || s.Send(s.Context(), typ, p) != nil {
					return
				}
			}
		},
		Logger: quiet,
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, srv.URL+"/comet", &client.Options{Compression: &comet.Compression{}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(comet.CloseNormal, "done")
	doc := []byte(`{"type":"room.update","messages":[` + strings.Repeat(`{"user":"ada","text":"hello"},`, 40) + `{}]}`)
	c.Send(ctx, comet.Text, doc)
	_, p, _ := c.Recv(ctx)
	fmt.Printf("%d bytes echoed over %s\n", len(p), c.Transport())
	// Output:
	// 1238 bytes echoed over websocket
}
