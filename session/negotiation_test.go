package session_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// TestNegotiateHook checks what Options.Negotiate sees of a request and
// that its Decision is what the session keeps, or what the client is told.
func TestNegotiateHook(t *testing.T) {
	t.Parallel()
	seen := make(chan session.Negotiation, 4)
	l := startLive(t, &session.Options{Negotiate: func(n *session.Negotiation) (session.Decision, error) {
		seen <- *n
		switch n.Request.Header.Get("X-Case") {
		case "unauthorized":
			return session.Decision{}, &session.AuthError{Status: http.StatusUnauthorized, Message: "sign in"}
		case "internal":
			return session.Decision{}, errors.New("db down")
		case "redirect":
			return session.Decision{RedirectURL: "https://eu.example/comet", RedirectToken: "tok"}, nil
		}
		// The application may grant another target than asked, or none.
		return session.Decision{Auth: "alice", Target: strings.Replace(n.Target, "redis", "redis-eu", 1)}, nil
	}})

	resp, body := l.do(t, http.MethodPost, prefix+"/negotiate?v=1", http.Header{"X-Case": {"grant"}},
		`{"transports":["longpoll"],"target":"redis.internal:6379"}`)
	n, err := transport.ParseNegotiateResponse(body)
	if resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("status %s, %v; body %s", resp.Status, err, body)
	}
	got := <-seen
	if got.Target != "redis.internal:6379" || !slices.Equal(got.Transports, []string{"longpoll"}) ||
		got.ClientAddr != netip.MustParseAddr("127.0.0.1") || got.Request.Header.Get("X-Case") != "grant" {
		t.Errorf("Negotiation = %+v", got)
	}
	info := l.session(t, n).Request()
	if info.Auth != "alice" || info.Target != "redis-eu.internal:6379" {
		t.Errorf("RequestInfo Auth %v, Target %q; want alice, redis-eu.internal:6379", info.Auth, info.Target)
	}

	resp, body = l.do(t, http.MethodPost, prefix+"/negotiate?v=1", http.Header{"X-Case": {"redirect"}}, "")
	var fields map[string]any
	if err := json.Unmarshal(body, &fields); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("redirect: %s %s", resp.Status, body)
	}
	if fields["url"] != "https://eu.example/comet" || fields["token"] != "tok" || len(fields) != 3 {
		t.Errorf("redirect = %s, want v, url and token", body)
	}
	<-seen

	resp, body = l.do(t, http.MethodPost, prefix+"/negotiate?v=1", http.Header{"X-Case": {"unauthorized"}}, "")
	if e := wantError(t, resp, body, http.StatusUnauthorized, transport.CodeUnauthorized); e.Message != "sign in" {
		t.Errorf("message = %q, want sign in", e.Message)
	}
	<-seen
	resp, body = l.do(t, http.MethodPost, prefix+"/negotiate?v=1", http.Header{"X-Case": {"internal"}}, "")
	if e := wantError(t, resp, body, http.StatusForbidden, transport.CodeForbidden); e.Message != "forbidden" {
		t.Errorf("message = %q: a plain error's text must not reach the client", e.Message)
	}
	<-seen
	if n := l.h.Sessions(); n != 1 {
		t.Errorf("the handler holds %d sessions, want the one admitted", n)
	}
}

// TestNegotiateTarget checks the syntax check of the body's target, and
// that without Negotiate the requested target is what the session gets.
func TestNegotiateTarget(t *testing.T) {
	t.Parallel()
	l := startLive(t, &session.Options{Authorize: func(*http.Request) (any, error) { return "bob", nil }})
	valid := []string{"", "redis:6379", "Irc.Example.ORG:6667", "10.0.0.1:1", "[2001:db8::1]:65535", "[::ffff:127.0.0.1]:80",
		"a_b.example:8080", strings.Repeat("a", 63) + ".example:80"}
	for _, target := range valid {
		b, _ := json.Marshal(transport.NegotiateRequest{Target: target})
		resp, body := l.do(t, http.MethodPost, prefix+"/negotiate?v=1", nil, string(b))
		n, err := transport.ParseNegotiateResponse(body)
		if resp.StatusCode != http.StatusOK || err != nil {
			t.Errorf("target %q: status %s, %v; body %s", target, resp.Status, err, body)
			continue
		}
		if info := l.session(t, n).Request(); info.Target != target || info.Auth != "bob" {
			t.Errorf("target %q: RequestInfo Target %q, Auth %v", target, info.Target, info.Auth)
		}
	}
	invalid := []string{"redis", "redis:", ":6379", "redis:0", "redis:65536", "redis:+80", "redis:080", "redis:6379 ",
		"::1:80", "[::1]", "[1.2.3.4]:80", "[fe80::1%eth0]:80", "2001:db8::1:80", "a b:80", "-a.example:80",
		"a..b:80", "a.example.:80", "127.1:80", "2130706433:80", "0x7f.1:80", "host/path:80", "user@host:80",
		strings.Repeat("a", 64) + ".example:80", strings.Repeat("a.", 130) + "com:80", "\u00e9.example:80"}
	for _, target := range invalid {
		b, _ := json.Marshal(transport.NegotiateRequest{Target: target})
		resp, body := l.do(t, http.MethodPost, prefix+"/negotiate?v=1", nil, string(b))
		if e := wantError(t, resp, body, http.StatusBadRequest, transport.CodeBadRequest); !strings.Contains(e.Message, "target") {
			t.Errorf("target %q: message %q does not name the target", target, e.Message)
		}
	}
	if got, want := l.h.Sessions(), len(valid); got != want {
		t.Errorf("the handler holds %d sessions, want %d", got, want)
	}
}

// TestNegotiateHookExclusive checks that NewHandler refuses a Negotiate
// hook beside the shorthands it replaces.
func TestNegotiateHookExclusive(t *testing.T) {
	t.Parallel()
	hook := func(*session.Negotiation) (session.Decision, error) { return session.Decision{}, nil }
	for name, o := range map[string]*session.Options{
		"Authorize": {Negotiate: hook, Authorize: func(*http.Request) (any, error) { return nil, nil }},
		"Redirect":  {Negotiate: hook, Redirect: func(*http.Request) (string, string) { return "", "" }},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				p := recover()
				if msg, _ := p.(string); !strings.Contains(msg, "Negotiate") {
					t.Errorf("NewHandler panicked with %v, want a message naming Negotiate", p)
				}
			}()
			session.NewHandler(o)
		})
	}
}
