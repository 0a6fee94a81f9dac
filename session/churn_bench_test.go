package session

import (
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/seed-544bbf9f/comet/transport"
)

// BenchmarkChurn opens sessions, pushes 64 KiB into each, ends them
// (expiry, then the application's return) and reports the heap they still
// hold once ended, per session, beside what they held while open: an
// ended session's memory must go at once, not a grace period later.
func BenchmarkChurn(b *testing.B) {
	const batch, perSession = 200, 64 << 10
	h := newBenchHandler()
	payload := []byte(strings.Repeat("c", 16<<10))
	heap := func() float64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return float64(m.HeapAlloc)
	}
	var open, ended float64
	sessions := make([]*Session, batch)
	for b.Loop() {
		b.StopTimer()
		before := heap()
		b.StartTimer()
		for i := range sessions {
			s := newSession(h, "churn", "secret", RequestInfo{})
			for range perSession / len(payload) {
				if err := s.Send(context.Background(), transport.Text, payload); err != nil {
					b.Fatal(err)
				}
			}
			sessions[i] = s
		}
		b.StopTimer()
		open += heap() - before
		b.StartTimer()
		for _, s := range sessions {
			s.expire()
			s.closeInternal(transport.CloseNormal, "")
		}
		b.StopTimer()
		ended += heap() - before
		runtime.KeepAlive(sessions) // the application may hold its sessions
		b.StartTimer()
	}
	n := float64(b.N * batch)
	b.ReportMetric(open/n, "open-B/session")
	b.ReportMetric(max(ended, 0)/n, "ended-B/session")
}
