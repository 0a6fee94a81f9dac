// Package chatjson makes the realistic JSON payload of Comet's
// compression benchmarks: chat room events of one to four KiB, with the
// repeated keys, ids, URLs and timestamps of a real application's
// messages and prose from a small vocabulary. The documents are
// deterministic, so every run measures the same bytes.
package chatjson

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// event is one document: a chat room's update, carrying recent messages.
type event struct {
	Type     string    `json:"type"`
	Room     string    `json:"room"`
	Seq      int       `json:"seq"`
	Online   int       `json:"online"`
	Messages []message `json:"messages"`
}

type message struct {
	ID        string     `json:"id"`
	TS        string     `json:"ts"`
	User      user       `json:"user"`
	Text      string     `json:"text"`
	Edited    bool       `json:"edited"`
	Reactions []reaction `json:"reactions"`
	Mentions  []string   `json:"mentions"`
	ReplyTo   *string    `json:"replyTo"`
}

type user struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Avatar string   `json:"avatar"`
	Roles  []string `json:"roles"`
}

type reaction struct {
	Emoji string `json:"emoji"`
	Count int    `json:"count"`
}

var (
	words = strings.Fields(`the a we it is to of and in on for with that this deploy build release
		test fix merge branch review queue latency cache server client session socket proxy
		timeout retry backoff metric alert dashboard on-call incident rollback config flag
		tomorrow today morning lunch coffee meeting standup sprint ticket done thanks please
		looks good ship it agreed maybe later why how what when nice great sorry`)
	names = []string{"Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra", "Barbara Liskov",
		"Ken Thompson", "Radia Perlman", "Donald Knuth", "Frances Allen", "Leslie Lamport"}
	rooms  = []string{"general", "engineering", "random", "incidents"}
	emojis = []string{"+1", "tada", "eyes", "rocket", "heart"}
	epoch  = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
)

// Doc returns document i of the sequence: the same bytes for the same i
// in every run, between about 1 and 4 KiB.
func Doc(i int) []byte {
	r := rand.New(rand.NewPCG(uint64(i), 0x636f6d6574))
	ev := event{Type: "room.update", Room: rooms[r.IntN(len(rooms))], Seq: i, Online: 3 + r.IntN(200)}
	for j := range 3 + r.IntN(5) {
		u := r.IntN(len(names))
		m := message{
			ID:   fmt.Sprintf("msg-%08d-%d", i, j),
			TS:   epoch.Add(time.Duration(i*7+j) * time.Second).Format(time.RFC3339Nano),
			User: user{ID: fmt.Sprintf("u-%04d", u), Name: names[u], Avatar: fmt.Sprintf("https://cdn.example.com/avatars/u-%04d.png", u), Roles: []string{"member"}},
		}
		if u%3 == 0 {
			m.User.Roles = append(m.User.Roles, "moderator")
		}
		text := make([]string, 6+r.IntN(30))
		for k := range text {
			text[k] = words[r.IntN(len(words))]
		}
		m.Text = strings.Join(text, " ")
		m.Edited = r.IntN(5) == 0
		m.Reactions = []reaction{}
		for k := range r.IntN(3) {
			m.Reactions = append(m.Reactions, reaction{Emoji: emojis[(u+k)%len(emojis)], Count: 1 + r.IntN(9)})
		}
		m.Mentions = []string{}
		if r.IntN(3) == 0 {
			m.Mentions = append(m.Mentions, fmt.Sprintf("u-%04d", r.IntN(len(names))))
		}
		if j > 0 && r.IntN(2) == 0 {
			reply := ev.Messages[j-1].ID
			m.ReplyTo = &reply
		}
		ev.Messages = append(ev.Messages, m)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err) // the types above always marshal
	}
	return b
}
