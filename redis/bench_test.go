package redis

import (
	"context"
	"testing"
)

// BenchmarkSendDeliver measures one message's trip from one broker to
// another through Redis: PUBLISH, the subscriber's read, and the hand-off
// to the delivery goroutine. Messages go one at a time, so ns/op is the
// latency, not the throughput.
func BenchmarkSendDeliver(b *testing.B) {
	bs, recs := startN(b, startRedis(b), 2, Options{})
	msg := []byte("a message of about the size of a session frame: {\"t\":\"m\",\"s\":42}")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := bs[0].Send(ctx, bs[1].Node(), msg); err != nil {
			b.Fatal(err)
		}
		<-recs[1].msgs
	}
}
