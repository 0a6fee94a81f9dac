package client

import (
	"slices"
	"testing"
	"time"
)

// TestJudge states the keep-alive judgement as a table: each case is a run
// of drops, judged in turn with the same interval and minimum heartbeat.
func TestJudge(t *testing.T) {
	const s = time.Second
	type drop struct {
		life, idle time.Duration
		want       verdict
	}
	tests := []struct {
		name  string
		drops []drop
	}{
		{"one drop proves nothing", []drop{{life: 5 * s, idle: 5 * s}}},
		{"same silence twice is an idle cut", []drop{
			{life: 30 * s, idle: 20 * s},
			{life: 30 * s, idle: 20*s + 500*time.Millisecond, want: verdict{why: whyIdleCut, heartbeat: 10*s + 250*time.Millisecond}},
		}},
		{"different silences are not", []drop{{life: 30 * s, idle: 20 * s}, {life: 30 * s, idle: 12 * s}}},
		{"silences under a second are chance", []drop{
			{life: 30 * s, idle: 500 * time.Millisecond}, {life: 30 * s, idle: 500 * time.Millisecond},
		}},
		{"a heartbeat no shorter than the interval would not help", []drop{{life: 60 * s, idle: 50 * s}, {life: 60 * s, idle: 50 * s}}},
		{"a heartbeat under the server's minimum is not asked", []drop{
			{life: 30 * s, idle: 1500 * time.Millisecond}, {life: 30 * s, idle: 1500 * time.Millisecond},
		}},
		{"three early deaths demote", []drop{
			{life: 100 * time.Millisecond, idle: 100 * time.Millisecond},
			{life: 200 * time.Millisecond, idle: 200 * time.Millisecond},
			{life: 300 * time.Millisecond, idle: 300 * time.Millisecond, want: verdict{why: whyEarlyDeath, demote: true}},
			{life: 100 * time.Millisecond, idle: 100 * time.Millisecond}, // the count starts over
		}},
		{"a long life in between starts the count over", []drop{
			{life: s, idle: s / 2}, {life: 2 * s, idle: s / 3}, {life: 20 * s, idle: 5 * s},
			{life: s, idle: s / 2}, {life: 2 * s, idle: s / 3},
		}},
		{"an idle cut explains early deaths", []drop{
			{life: 3 * s, idle: 3 * s}, {life: 3 * s, idle: 3 * s, want: verdict{why: whyIdleCut, heartbeat: 1500 * time.Millisecond}},
			{life: 3 * s, idle: 3 * s, want: verdict{why: whyIdleCut, heartbeat: 1500 * time.Millisecond}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var j judgement
			for i, d := range tc.drops {
				if got := j.judge(d.life, d.idle, 25*s, time.Second); got != d.want {
					t.Fatalf("drop %d (life %v, idle %v): %+v, want %+v", i, d.life, d.idle, got, d.want)
				}
			}
		})
	}
}

func TestRotateAfter(t *testing.T) {
	order := []string{"websocket", "sse", "streaming", "longpoll"}
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"websocket", []string{"sse", "streaming", "longpoll", "websocket"}},
		{"streaming", []string{"longpoll", "websocket", "sse", "streaming"}},
		{"longpoll", []string{"websocket", "sse", "streaming", "longpoll"}},
	} {
		if got := rotateAfter(order, tc.name); !slices.Equal(got, tc.want) {
			t.Fatalf("rotateAfter(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}
