package client

import (
	"testing"
	"time"
)

func TestTicketPool(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var p ticketPool
	p.add("", t0)
	if _, ok := p.take(t0); ok {
		t.Fatal("an empty token was kept")
	}
	p.add("old", t0)
	if !p.low(t0) {
		t.Fatal("one ticket is low: a POST should ask for more")
	}
	p.add("new", t0.Add(time.Second))
	p.add("newest", t0.Add(2*time.Second))
	if p.low(t0) {
		t.Fatal("three tickets reported low")
	}
	if tok, _ := p.take(t0.Add(3 * time.Second)); tok != "newest" {
		t.Fatalf("take = %q, want the newest, which lives longest", tok)
	}
	// "old" expires first; "new" one second later.
	if tok, ok := p.take(t0.Add(ticketTTL + time.Second/2)); !ok || tok != "new" {
		t.Fatalf("take after old's expiry = %q, %v; want new", tok, ok)
	}
	if _, ok := p.take(t0.Add(ticketTTL + time.Second/2)); ok {
		t.Fatal("an expired ticket was handed out")
	}
}

func TestTicketPoolCap(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var p ticketPool
	for i := range maxTickets + 3 {
		p.add(string(rune('a'+i)), t0)
	}
	if len(p.list) != maxTickets {
		t.Fatalf("pool holds %d tickets, want %d: the server keeps no more", len(p.list), maxTickets)
	}
	if p.list[0].token != "d" {
		t.Fatalf("oldest kept = %q, want d: the oldest are dropped, as the server does", p.list[0].token)
	}
	p.clear()
	if _, ok := p.take(t0); ok {
		t.Fatal("clear left a ticket")
	}
}
