package leakcheck

import "testing"

func TestParseGoroutine(t *testing.T) {
	tests := []struct {
		name        string
		record      string
		wantID      uint64
		wantStart   string
		wantIgnored bool
	}{
		{
			name: "user goroutine",
			record: `goroutine 7 [chan receive]:
example.com/pkg.worker(0xc000010000)
	/src/pkg/worker.go:12 +0x2c
created by example.com/pkg.Start in goroutine 6
	/src/pkg/worker.go:9 +0x5a`,
			wantID:    7,
			wantStart: "example.com/pkg.worker",
		},
		{
			name: "generic method started by a go statement wrapper",
			record: `goroutine 12 [select, 2 minutes]:
example.com/pkg.(*Pool[...]).serve(0xc0000a4000, {0x7e1a40, 0xc0000b2000})
	/src/pkg/pool.go:40 +0x11b
example.com/pkg.(*Pool[...]).Start.gowrap1()
	/src/pkg/pool.go:31 +0x25
created by example.com/pkg.(*Pool[...]).Start in goroutine 1
	/src/pkg/pool.go:31 +0x9a`,
			wantID:    12,
			wantStart: "example.com/pkg.(*Pool[...]).Start.gowrap1",
		},
		{
			name: "idle keep-alive connection",
			record: `goroutine 35 [select]:
net/http.(*persistConn).readLoop(0xc0001b2000)
	/usr/local/go/src/net/http/transport.go:2398 +0xc25
created by net/http.(*Transport).dialConn in goroutine 34
	/usr/local/go/src/net/http/transport.go:1947 +0x174f`,
			wantID:    35,
			wantStart: "net/http.(*persistConn).readLoop",
		},
		{
			name: "test still running",
			record: `goroutine 6 [chan receive]:
testing.(*T).Run(0xc000003880, {0x6a1b2c, 0x9}, 0x6b2c10)
	/usr/local/go/src/testing/testing.go:2005 +0x485
example.com/pkg.TestServe(0xc000003500)
	/src/pkg/serve_test.go:20 +0x4e
testing.tRunner(0xc000003500, 0x6b2c08)
	/usr/local/go/src/testing/testing.go:1934 +0xea
created by testing.(*T).Run in goroutine 1
	/usr/local/go/src/testing/testing.go:1997 +0x465`,
			wantID:      6,
			wantStart:   "testing.tRunner",
			wantIgnored: true,
		},
		{
			name: "signal.Notify loop",
			record: `goroutine 8 [syscall]:
os/signal.signal_recv()
	/usr/local/go/src/runtime/sigqueue.go:152 +0x98
os/signal.loop()
	/usr/local/go/src/os/signal/signal_unix.go:23 +0x13
created by os/signal.Notify.func1.1 in goroutine 1
	/usr/local/go/src/os/signal/signal.go:152 +0x1f`,
			wantID:      8,
			wantStart:   "os/signal.loop",
			wantIgnored: true,
		},
		{
			name: "system goroutine, GOTRACEBACK=system",
			record: `goroutine 2 gp=0xc000006c40 m=nil [force gc (idle)]:
runtime.gopark(0x0?, 0x0?, 0x0?, 0x0?, 0x0?)
	/usr/local/go/src/runtime/proc.go:435 +0xce fp=0xc000060fa8 sp=0xc000060f88 pc=0x46f6ae
runtime.forcegchelper()
	/usr/local/go/src/runtime/proc.go:348 +0xb3 fp=0xc000060fe0 sp=0xc000060fa8 pc=0x43c173
runtime.goexit({})
	/usr/local/go/src/runtime/asm_amd64.s:1700 +0x1 fp=0xc000060fe8 sp=0xc000060fe0 pc=0x476c81
created by runtime.init.7 in goroutine 1
	/usr/local/go/src/runtime/proc.go:336 +0x1a`,
			wantID:      2,
			wantStart:   "runtime.forcegchelper",
			wantIgnored: true,
		},
		{
			name: "elided frames",
			record: `goroutine 40 [chan send]:
example.com/pkg.recurse(0x3e8)
	/src/pkg/deep.go:5 +0x3c
...1900 frames elided...
example.com/pkg.recurse(0x0)
	/src/pkg/deep.go:7 +0x58
created by example.com/pkg.Deep in goroutine 1
	/src/pkg/deep.go:11 +0x2b`,
			wantID:    40,
			wantStart: "example.com/pkg.recurse",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, ok := parseGoroutine(tc.record)
			if !ok {
				t.Fatal("not parsed")
			}
			if g.id != tc.wantID || g.start != tc.wantStart {
				t.Errorf("id, start = %d, %q; want %d, %q", g.id, g.start, tc.wantID, tc.wantStart)
			}
			if got := g.ignored(); got != tc.wantIgnored {
				t.Errorf("ignored = %v, want %v", got, tc.wantIgnored)
			}
			if g.stack != tc.record {
				t.Errorf("stack = %q, want the whole record", g.stack)
			}
		})
	}
}

func TestParseStacks(t *testing.T) {
	dump := "goroutine 1 [running]:\nmain.main()\n\t/src/main.go:9 +0x1d\n\n" +
		"goroutine 5 [sleep]:\ntime.Sleep(0x3b9aca00)\n\t/usr/local/go/src/runtime/time.go:363 +0x165\n" +
		"main.tick()\n\t/src/main.go:14 +0x1a\ncreated by main.main in goroutine 1\n\t/src/main.go:8 +0x1c\n"
	gs := parseStacks(dump)
	if len(gs) != 2 || gs[0].id != 1 || gs[1].id != 5 || gs[1].start != "main.tick" {
		t.Fatalf("parseStacks = %+v, want goroutines 1 (main.main) and 5 (main.tick)", gs)
	}
	if _, ok := parseGoroutine("not a goroutine"); ok {
		t.Error("parsed a record without a goroutine header")
	}
}

func TestCurrentID(t *testing.T) {
	ids := make(chan uint64, 2)
	ids <- currentID()
	go func() { ids <- currentID() }()
	a, b := <-ids, <-ids
	if a == 0 || b == 0 || a == b {
		t.Errorf("currentID = %d here and %d in another goroutine, want two different IDs", a, b)
	}
}
