package session

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"
)

// openTestCarrier opens a carrier of polls on h, as a client's first GET.
func openTestCarrier(t *testing.T, h *Handler) *carrier {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, h.opts.Prefix+"/share?v=1", nil))
	var hello []any
	if err := json.Unmarshal(rec.Body.Bytes(), &hello); rec.Code != http.StatusOK || err != nil {
		t.Fatalf("open: %d %q", rec.Code, rec.Body)
	}
	ca := h.shares.get(hello[1].(string))
	if ca == nil {
		t.Fatal("the handler holds no carrier of the hello's id")
	}
	return ca
}

// testPoll polls ca with ack n and returns the answer's body.
func testPoll(h *Handler, ca *carrier, n string) string {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, h.opts.Prefix+"/share?v=1&c="+ca.id+"&n="+n, nil))
	return rec.Body.String()
}

// TestCarrierIdle checks that a carrier nobody polls ends, with its
// sub-requests, after Hold and Grace, and that every poll puts that off.
func TestCarrierIdle(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newTestHandler(t, &Options{Hold: time.Second, Grace: time.Second})
		defer h.cancelAll()
		ca := openTestCarrier(t, h)
		time.Sleep(1500 * time.Millisecond)
		if got := testPoll(h, ca, "0"); got != "" { // parked for Hold, then empty
			t.Errorf("an idle poll answered %q", got)
		}
		time.Sleep(1900 * time.Millisecond)
		if h.shares.get(ca.id) == nil {
			t.Fatal("the carrier ended within Hold+Grace of its last poll")
		}
		time.Sleep(200 * time.Millisecond)
		if h.shares.get(ca.id) != nil || ca.ctx.Err() == nil {
			t.Fatal("the carrier outlived Hold+Grace without a poll")
		}
		if n := h.Stats().CarriersOpen["polls"]; n != 0 {
			t.Errorf("%d carriers counted open after the last ended", n)
		}
	})
}

// TestCarrierBackpressure checks that a full carrier holds a writer back
// until its client acknowledges, and that nothing is dropped.
func TestCarrierBackpressure(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newTestHandler(t, nil)
		defer h.cancelAll()
		ca := openTestCarrier(t, h)
		big := strings.Repeat("x", shareMaxQueued-20) // its frame leaves less room than 20 bytes
		if err := ca.add(t.Context(), func(n uint64) []byte { return partFrame(n, 1, big) }); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			done <- ca.add(t.Context(), func(n uint64) []byte { return partFrame(n, 1, "second") })
		}()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("a frame past the bound was queued (%v)", err)
		default:
		}
		if got := testPoll(h, ca, "0"); !strings.HasPrefix(got, `[1,1,"d","xxx`) {
			t.Fatalf("first poll = %.40q…, want frame 1", got)
		}
		// Acknowledging frame 1 frees the room the second waits for, and
		// the poll that acknowledged it delivers it.
		if got := testPoll(h, ca, "1"); got != `[2,1,"d","second"]`+"\n" {
			t.Fatalf("second poll = %q", got)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		// A writer waiting when its context ends gives up.
		ca.mu.Lock()
		ca.ackLocked(2)
		ca.mu.Unlock()
		ca.add(t.Context(), func(n uint64) []byte { return partFrame(n, 1, big) })
		ctx, cancel := context.WithCancel(t.Context())
		go func() { done <- ca.add(ctx, func(n uint64) []byte { return partFrame(n, 1, big) }) }()
		synctest.Wait()
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("add after its context ended: %v", err)
		}
	})
}

// TestSubWriterParts checks that a sub-request's body is cut into parts
// at characters' boundaries only, and that its parts add up to it.
func TestSubWriterParts(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newTestHandler(t, nil)
		defer h.cancelAll()
		ca := openTestCarrier(t, h)
		w := &subWriter{ca: ca, sub: 7, ctx: t.Context(), header: make(http.Header)}
		body := strings.Repeat("aé€😀", sharePart/3)
		raw := []byte(body)
		for i := 0; i < len(raw); i += 5 {
			w.Write(raw[i:min(i+5, len(raw))])
			if i%35 == 0 {
				w.Flush()
			}
		}
		if err := w.finish(); err != nil {
			t.Fatal(err)
		}
		var got strings.Builder
		status, end := 0, false
		for line := range strings.Lines(testPoll(h, ca, "0")) {
			var f []any
			if err := json.Unmarshal([]byte(line), &f); err != nil || f[1] != 7.0 {
				t.Fatalf("frame %q: %v", line, err)
			}
			switch f[2] {
			case "h":
				status = int(f[3].(float64))
			case "d":
				if !utf8.ValidString(f[3].(string)) || strings.ContainsRune(f[3].(string), utf8.RuneError) {
					t.Fatalf("part %q is cut inside a character", f[3])
				}
				got.WriteString(f[3].(string))
			case "e":
				end = true
			}
		}
		if status != http.StatusOK || !end || got.String() != body {
			t.Errorf("status %d, end %v, body intact %v", status, end, got.String() == body)
		}
	})
}

func TestWholeRunes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"", 0}, {"abc", 3}, {"a\xc3", 1}, {"aé", 3}, {"a\xe2\x82", 1}, {"a€", 4},
		{"\xf0\x9f\x98", 0}, {"😀", 4}, {"a\xff", 2}, {"\x80\x80\x80\x80", 4},
	} {
		if got := wholeRunes([]byte(tc.in)); got != tc.want {
			t.Errorf("wholeRunes(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// FuzzParseShareOps checks that the parser of a carrier's ops never
// panics, and that what it accepts survives encoding and parsing again.
func FuzzParseShareOps(f *testing.F) {
	for _, s := range []string{
		`[]`, `[[0,"p"]]`, `[[1,"GET","/comet/sse?v=1&s=x"]]`, `[[2,"POST","/comet/send?v=1","[\"k\",\"s\",0]\n"]]`,
		`[[3,"x"]]`, `[[1,"GET"]]`, `[[9007199254740992,"x"]]`, `[[1,"p"]]`, `[[0,"GET","/"]]`, `null`, `[null]`,
		`[[1,"GET",null]]`, `[[-1,"x"]]`, `[[1e2,"x"]]`, `[[1,"x"]] x`, `[{"a":1}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ops, err := parseShareOps(body)
		if err != nil {
			return
		}
		again := []any{}
		for _, op := range ops {
			switch op.kind {
			case shareOpPing:
				again = append(again, []any{0, "p"})
			case shareOpAbort:
				again = append(again, []any{op.sub, "x"})
			default:
				if op.method == http.MethodPost {
					again = append(again, []any{op.sub, op.method, op.target, op.body})
				} else {
					again = append(again, []any{op.sub, op.method, op.target})
				}
			}
		}
		b, _ := json.Marshal(again)
		ops2, err := parseShareOps(b)
		if err != nil || !reflect.DeepEqual(ops, ops2) {
			t.Fatalf("%q parsed as %+v; encoded again %s: %+v, %v", body, ops, b, ops2, err)
		}
	})
}
