package transport

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestCheckProtocols(t *testing.T) {
	t.Parallel()
	many := make([]string, MaxProtocols+1)
	for i := range many {
		many[i] = "p" + strings.Repeat("x", i)
	}
	tests := []struct {
		name string
		list []string
		ok   bool
	}{
		{"none", nil, true},
		{"empty", []string{}, true},
		{"real names", []string{"graphql-transport-ws", "v12.stomp", "mqtt", "wamp.2.json", "a~b!#$%&'*+^_`|"}, true},
		{"case differs", []string{"Chat", "chat"}, true},
		{"the most", many[:MaxProtocols], true},
		{"the longest", []string{strings.Repeat("x", MaxProtocolBytes)}, true},
		{"one too many", many, false},
		{"one byte too long", []string{strings.Repeat("x", MaxProtocolBytes+1)}, false},
		{"empty name", []string{"a", ""}, false},
		{"twice", []string{"a", "b", "a"}, false},
		{"space", []string{"a b"}, false},
		{"tab", []string{"a\tb"}, false},
		{"DEL", []string{"a\x7f"}, false},
		{"control", []string{"a\x00"}, false},
		{"non-ASCII", []string{"ü"}, false},
	}
	for _, sep := range separators {
		tests = append(tests, struct {
			name string
			list []string
			ok   bool
		}{"separator " + string(sep), []string{"a" + string(sep) + "b"}, false})
	}
	for _, tc := range tests {
		err := CheckProtocols(tc.list)
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrInvalidProtocols) {
			t.Errorf("%s: CheckProtocols(%q) = %v, want ok %v", tc.name, tc.list, err, tc.ok)
		}
	}
}

// TestNegotiateJSON: the new fields travel under their PROTOCOL.md names,
// and only when set, so a request or answer without them is the bytes it
// always was.
func TestNegotiateJSON(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v    any
		want string
	}{
		{NegotiateRequest{}, `{}`},
		{NegotiateRequest{Protocols: []string{"a", "b"}, NoStatus: true}, `{"protocols":["a","b"],"noStatus":true}`},
		{NegotiateResponse{Version: 1}, `{"v":1}`},
		{NegotiateResponse{Version: 1, Protocol: "a", NoStatus: true}, `{"v":1,"protocol":"a","noStatus":true}`},
	} {
		b, err := json.Marshal(tc.v)
		if err != nil || string(b) != tc.want {
			t.Errorf("json.Marshal(%+v) = %s, %v; want %s", tc.v, b, err, tc.want)
		}
	}
}
