package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// testLog routes the server's logs to t.Logf until the test ends.
type testLog struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.t.Logf("server: %s", strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

// startChat serves the example (with -debug's cutter when debug) on an
// httptest server until the test ends, and returns its URL.
func startChat(t *testing.T, debug bool) string {
	t.Helper()
	l := &testLog{t: t}
	s := newServer(debug, slog.New(slog.NewTextHandler(l, nil)))
	srv := httptest.NewUnstartedServer(s.mux)
	if s.cut != nil {
		srv.Listener = s.cut.install(srv.Config, srv.Listener)
	}
	srv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.comet.Shutdown(ctx)
		srv.Close()
		l.mu.Lock()
		l.done = true
		l.mu.Unlock()
	})
	return srv.URL
}

// peer is a chat client: a Go client session speaking the page's JSON.
type peer struct {
	t   *testing.T
	ctx context.Context
	c   *client.Conn
}

// event is any message of the chat to a page.
type event struct {
	Type    string   `json:"type"`
	Session string   `json:"session"`
	Debug   bool     `json:"debug"`
	Room    string   `json:"room"`
	Nick    string   `json:"nick"`
	Text    string   `json:"text"`
	ID      uint64   `json:"id"`
	History int      `json:"history"`
	Online  []string `json:"online"`
	Joined  string   `json:"joined"`
	Left    string   `json:"left"`
	Code    string   `json:"code"`
	Error   string   `json:"error"`
}

// dial opens a session on transport name (all if "") and reads its hello.
func dial(t *testing.T, base, name string) *peer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	o := &client.Options{}
	if name != "" {
		o.Transports = []string{name}
	}
	c, err := client.Dial(ctx, base+"/comet", o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	p := &peer{t: t, ctx: ctx, c: c}
	p.expect("hello")
	return p
}

func (p *peer) sendRaw(s string) {
	p.t.Helper()
	if err := p.c.Send(p.ctx, comet.Text, []byte(s)); err != nil {
		p.t.Fatal(err)
	}
}

func (p *peer) send(v any) {
	p.t.Helper()
	b, _ := json.Marshal(v)
	p.sendRaw(string(b))
}

// expect reads the next event and checks its type.
func (p *peer) expect(typ string) event {
	p.t.Helper()
	_, b, err := p.c.Recv(p.ctx)
	if err != nil {
		p.t.Fatalf("waiting for %s: %v", typ, err)
	}
	var e event
	if err := json.Unmarshal(b, &e); err != nil || e.Type != typ {
		p.t.Fatalf("got %s, want a %s event", b, typ)
	}
	return e
}

// join joins room as nick and returns the joined event and the history
// that follows it, after the presence event announcing the join.
func (p *peer) join(room, nick string) (event, []event) {
	p.t.Helper()
	p.send(request{Type: "join", Room: room, Nick: nick})
	j := p.expect("joined")
	var history []event
	for range j.History {
		history = append(history, p.expect("message"))
	}
	if e := p.expect("presence"); e.Joined != j.Nick {
		p.t.Fatalf("presence after joining: %+v", e)
	}
	return j, history
}

func (p *peer) say(text string) {
	p.t.Helper()
	p.send(request{Type: "say", Text: text})
}

// expectSaid reads the next event: nick saying text.
func (p *peer) expectSaid(nick, text string) {
	p.t.Helper()
	if e := p.expect("message"); e.Nick != nick || e.Text != text {
		p.t.Fatalf("got %s saying %q, want %s saying %q", e.Nick, e.Text, nick, text)
	}
}

// TestRooms: what is said in a room reaches its members only, on every
// transport.
func TestRooms(t *testing.T) {
	base := startChat(t, false)
	for _, name := range []string{comet.WebSocket, comet.SSE, comet.Streaming, comet.LongPoll} {
		t.Run(name, func(t *testing.T) {
			room := "room-" + name
			ada, bob, cy := dial(t, base, name), dial(t, base, name), dial(t, base, name)
			ada.join(room, "Ada")
			bob.join(room, "Bob")
			ada.expect("presence")
			cy.join("elsewhere-"+name, "Cy")

			ada.say("hello, Bob")
			ada.expectSaid("Ada", "hello, Bob")
			bob.expectSaid("Ada", "hello, Bob")
			bob.say("hi Ada 👋")
			ada.expectSaid("Bob", "hi Ada 👋")
			bob.expectSaid("Bob", "hi Ada 👋")
			// Cy's next event is its own line: nothing of the other room came.
			cy.say("anyone?")
			cy.expectSaid("Cy", "anyone?")
		})
	}
}

// TestHistory: a room keeps its last 50 messages for those who join.
func TestHistory(t *testing.T) {
	base := startChat(t, false)
	ada := dial(t, base, comet.WebSocket)
	ada.join("lobby", "Ada")
	for i := 1; i <= 60; i++ {
		ada.say(fmt.Sprint("line ", i))
		ada.expectSaid("Ada", fmt.Sprint("line ", i))
	}
	bob := dial(t, base, comet.LongPoll)
	j, history := bob.join("lobby", "Bob")
	if j.History != historySize || len(history) != historySize {
		t.Fatalf("joined with %d messages of history, want %d", len(history), historySize)
	}
	for i, m := range history {
		if want := fmt.Sprint("line ", 11+i); m.Text != want || m.ID != uint64(11+i) || m.Nick != "Ada" {
			t.Fatalf("history[%d] = %+v, want %q, id %d", i, m, want, 11+i)
		}
	}
	if !reflect.DeepEqual(j.Online, []string{"Ada", "Bob"}) {
		t.Fatalf("online %v", j.Online)
	}
}

// TestPresence: members learn who joins and leaves, by changing room or
// by closing; a nickname is unique within a room.
func TestPresence(t *testing.T) {
	base := startChat(t, false)
	ada, bob, cy := dial(t, base, ""), dial(t, base, ""), dial(t, base, "")
	ada.join("lobby", "Ada")

	checkPresence := func(e event, joined, left string, online ...string) {
		t.Helper()
		if e.Joined != joined || e.Left != left || !reflect.DeepEqual(e.Online, online) {
			t.Fatalf("presence %+v, want joined %q left %q online %v", e, joined, left, online)
		}
	}
	bob.join("lobby", "Bob")
	checkPresence(ada.expect("presence"), "Bob", "", "Ada", "Bob")

	cy.send(request{Type: "join", Room: "lobby", Nick: "Ada"})
	if e := cy.expect("error"); e.Code != "nick_taken" {
		t.Fatalf("joining as a nickname in use: %+v", e)
	}

	bob.join("kitchen", "Bob")
	checkPresence(ada.expect("presence"), "", "Bob", "Ada")

	cy.join("lobby", "Cy")
	checkPresence(ada.expect("presence"), "Cy", "", "Ada", "Cy")
	if err := cy.c.Close(comet.CloseNormal, "bye"); err != nil {
		t.Fatal(err)
	}
	checkPresence(ada.expect("presence"), "", "Cy", "Ada")
}

// TestTyping: the others in the room hear that someone types, at most once
// a second per member.
func TestTyping(t *testing.T) {
	base := startChat(t, false)
	ada, bob := dial(t, base, ""), dial(t, base, "")
	ada.join("lobby", "Ada")
	bob.join("lobby", "Bob")
	ada.expect("presence")
	bob.send(request{Type: "typing"})
	bob.send(request{Type: "typing"}) // within the second: not passed on
	if e := ada.expect("typing"); e.Nick != "Bob" || e.Room != "lobby" {
		t.Fatalf("typing %+v", e)
	}
	bob.say("done typing")
	ada.expectSaid("Bob", "done typing")
	bob.expectSaid("Bob", "done typing") // and Bob never heard his own typing
}

// TestBadInput: every kind of bad input is answered with an error event
// naming it, and the session goes on.
func TestBadInput(t *testing.T) {
	base := startChat(t, false)
	p := dial(t, base, comet.WebSocket)
	long := strings.Repeat("é", maxText+1)
	for _, tc := range []struct{ name, input, code string }{
		{"not JSON", `hello`, "bad_message"},
		{"an array", `[1,2]`, "bad_message"},
		{"two objects", `{"type":"typing"}{"type":"typing"}`, "bad_message"},
		{"an unknown field", `{"type":"join","room":"a","nick":"x","admin":true}`, "bad_message"},
		{"no type", `{}`, "bad_type"},
		{"an unknown type", `{"type":"dance"}`, "bad_type"},
		{"say before join", `{"type":"say","text":"hi"}`, "not_joined"},
		{"typing before join", `{"type":"typing"}`, "not_joined"},
		{"a room with capitals", `{"type":"join","room":"Lobby","nick":"x"}`, "bad_room"},
		{"a room with a slash", `{"type":"join","room":"a/b","nick":"x"}`, "bad_room"},
		{"an empty room", `{"type":"join","room":"","nick":"x"}`, "bad_room"},
		{"a room too long", `{"type":"join","room":"` + strings.Repeat("a", 25) + `","nick":"x"}`, "bad_room"},
		{"an empty nickname", `{"type":"join","room":"a","nick":"   "}`, "bad_nick"},
		{"markup in a nickname", `{"type":"join","room":"a","nick":"<b>x</b>"}`, "bad_nick"},
		{"a nickname too long", `{"type":"join","room":"a","nick":"` + strings.Repeat("n", 25) + `"}`, "bad_nick"},
		{"an empty text", `{"type":"say","text":" \n "}`, "bad_text"},
		{"a text too long", `{"type":"say","text":"` + long + `"}`, "bad_text"},
		{"a control character", `{"type":"say","text":"ring \u0007"}`, "bad_text"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &peer{t: t, ctx: p.ctx, c: p.c}
			p.sendRaw(tc.input)
			if e := p.expect("error"); e.Code != tc.code || e.Error == "" {
				t.Fatalf("answer %+v, want code %s and a message", e, tc.code)
			}
		})
	}
	if err := p.c.Send(p.ctx, comet.Binary, []byte{1, 2}); err != nil {
		t.Fatal(err)
	}
	if e := p.expect("error"); e.Code != "bad_message" {
		t.Fatalf("a binary message: %+v", e)
	}
	p.join("lobby", "  Ada  ")
	p.say("still here")
	p.expectSaid("Ada", "still here")
}

// TestDebugCut: with -debug, POST /debug/cut closes a session's
// connections and the client resumes it without losing a message; without
// -debug there is no such endpoint.
func TestDebugCut(t *testing.T) {
	base := startChat(t, true)
	p := dial(t, base, comet.WebSocket)
	p.join("lobby", "Ada")
	resp, err := http.Post(base+"/debug/cut?s="+p.c.SessionID(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Cut int }
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || got.Cut < 1 {
		t.Fatalf("cut answered %+v, %v; want at least one connection cut", got, err)
	}
	p.say("after the cut")
	p.expectSaid("Ada", "after the cut")

	plain := startChat(t, false)
	resp, err = http.Post(plain+"/debug/cut?s=x", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatal("/debug/cut answered 200 without -debug")
	}
}

// TestPage: the page is served, and loads the shim from the handler.
func TestPage(t *testing.T) {
	base := startChat(t, false)
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `<script src="/comet/comet.js">`) ||
		!strings.Contains(string(body), "Transport inspector") {
		t.Fatalf("page: %d %.200q", resp.StatusCode, body)
	}
}
