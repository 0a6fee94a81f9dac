package echocheck_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/internal/echocheck"
	"github.com/seed-544bbf9f/comet/internal/leakcheck"
	"github.com/seed-544bbf9f/comet/internal/testutil"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// serve runs a handler whose Serve echoes each message, but skip, and
// returns a client dialed to it.
func serve(t *testing.T, skip string) *client.Conn {
	t.Helper()
	h := comet.NewHandler(&comet.Options{Serve: func(s *comet.Session) {
		for {
			typ, p, err := s.Recv(s.Context())
			if err != nil {
				return
			}
			if string(p) == skip {
				continue
			}
			if s.Send(s.Context(), typ, p) != nil {
				return
			}
		}
	}})
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
		defer cancel()
		h.Shutdown(ctx)
		srv.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
	defer cancel()
	c, err := client.Dial(ctx, srv.URL+"/comet", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func TestRun(t *testing.T) {
	c := serve(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
	defer cancel()
	var seen []int
	dups, err := echocheck.Run(ctx, c, 3*echocheck.Lead, func(k int) { seen = append(seen, k) })
	if err != nil || dups != 0 {
		t.Fatalf("Run = %d, %v; want 0, nil", dups, err)
	}
	if len(seen) != 3*echocheck.Lead || seen[0] != 1 || seen[len(seen)-1] != 3*echocheck.Lead {
		t.Fatalf("at was called %d times, from %v", len(seen), seen[:min(3, len(seen))])
	}
}

func TestRunLoss(t *testing.T) {
	c := serve(t, "m5")
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
	defer cancel()
	_, err := echocheck.Run(ctx, c, 20, func(int) {})
	if err == nil || !strings.Contains(err.Error(), "echo of m6 before m5") {
		t.Fatalf("Run with m5 never echoed: %v, want the loss named", err)
	}
}
