package main

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The chat's messages are JSON objects with a "type", one per Comet
// message.
//
// From the page:
//
//	{"type":"join","room":"lobby","nick":"Ada"}  join a room (leaving the one before)
//	{"type":"say","text":"hello"}                 say something in the room
//	{"type":"typing"}                             the user is typing
//
// To the page:
//
//	{"type":"hello","session":"…","debug":true}   first; session and debug only with -debug
//	{"type":"joined","room":…,"nick":…,"history":3,"online":[nick…]}, then the room's last messages (history of them)
//	{"type":"message","room":…,"id":7,"nick":…,"text":…,"time":unix ms}
//	{"type":"presence","room":…,"online":[nick…],"joined":nick} (or "left":nick)
//	{"type":"typing","room":…,"nick":…}
//	{"type":"error","code":"bad_nick","error":"a sentence for the user"}

// Limits on what a page may send.
const (
	maxNick     = 24  // characters
	maxText     = 500 // characters
	maxMessage  = 4096
	historySize = 50 // messages a room keeps for those who join
	maxRooms    = 100
)

// roomName is what a room may be called: lower-case letters, digits, '-'
// and '_', starting with a letter or digit, at most 24 bytes.
var roomName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,23}$`)

// request is a message from a page.
type request struct {
	Type string `json:"type"`
	Room string `json:"room,omitempty"`
	Nick string `json:"nick,omitempty"`
	Text string `json:"text,omitempty"`
}

// message is one line said in a room, as sent and kept in its history.
type message struct {
	Type string `json:"type"` // "message"
	Room string `json:"room"`
	ID   uint64 `json:"id"`
	Nick string `json:"nick"`
	Text string `json:"text"`
	Time int64  `json:"time"` // Unix milliseconds
}

type hello struct {
	Type    string `json:"type"` // "hello"
	Session string `json:"session,omitempty"`
	Debug   bool   `json:"debug,omitempty"`
}

type joined struct {
	Type    string   `json:"type"` // "joined"
	Room    string   `json:"room"`
	Nick    string   `json:"nick"`
	History int      `json:"history"` // how many messages of the room's history follow
	Online  []string `json:"online"`
}

type presence struct {
	Type   string   `json:"type"` // "presence"
	Room   string   `json:"room"`
	Online []string `json:"online"`
	Joined string   `json:"joined,omitempty"`
	Left   string   `json:"left,omitempty"`
}

type typing struct {
	Type string `json:"type"` // "typing"
	Room string `json:"room"`
	Nick string `json:"nick"`
}

// chatError is the answer to input the chat refuses: Code for programs,
// Message for people. It is also the error the checks return.
type chatError struct {
	Type    string `json:"type"` // "error"
	Code    string `json:"code"`
	Message string `json:"error"`
}

func (e *chatError) Error() string { return e.Message }

func refusal(code, msg string) *chatError { return &chatError{Type: "error", Code: code, Message: msg} }

// The refusals, one per way input can be wrong.
var (
	errNotJSON    = refusal("bad_message", `a message is a JSON object with a "type", e.g. {"type":"say","text":"hi"}`)
	errBinary     = refusal("bad_message", "messages are JSON text, not binary")
	errType       = refusal("bad_type", `"type" is one of join, say and typing`)
	errRoom       = refusal("bad_room", "a room name is 1 to 24 lower-case letters, digits, '-' or '_', starting with a letter or digit")
	errNick       = refusal("bad_nick", "a nickname is 1 to 24 letters, digits, spaces or . _ - '")
	errNickTaken  = refusal("nick_taken", "someone in that room already uses that nickname")
	errText       = refusal("bad_text", "a message is 1 to 500 characters, with no control characters but newlines and tabs")
	errNotInRoom  = refusal("not_joined", "join a room first")
	errTooManyRms = refusal("too_many_rooms", "the server holds as many rooms as it can; join an existing one")
)

// parseRequest decodes and checks a page's message: a known type with the
// fields it needs, each valid; text and nick come back trimmed.
func parseRequest(p []byte) (request, *chatError) {
	var r request
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil || dec.More() {
		return r, errNotJSON
	}
	switch r.Type {
	case "join":
		if !roomName.MatchString(r.Room) {
			return r, errRoom
		}
		r.Nick = strings.TrimSpace(r.Nick)
		if !validNick(r.Nick) {
			return r, errNick
		}
	case "say":
		r.Text = strings.TrimSpace(r.Text)
		if !validText(r.Text) {
			return r, errText
		}
	case "typing":
	default:
		return r, errType
	}
	return r, nil
}

func validNick(s string) bool {
	n := utf8.RuneCountInString(s)
	if n < 1 || n > maxNick {
		return false
	}
	for _, c := range s {
		if !unicode.IsLetter(c) && !unicode.IsDigit(c) && !strings.ContainsRune(" ._-'", c) {
			return false
		}
	}
	return true
}

func validText(s string) bool {
	n := utf8.RuneCountInString(s)
	if n < 1 || n > maxText || !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if unicode.IsControl(c) && c != '\n' && c != '\t' {
			return false
		}
	}
	return true
}

// encode marshals one of the chat's messages: structs of strings,
// numbers and slices of them, which always marshal.
func encode(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
