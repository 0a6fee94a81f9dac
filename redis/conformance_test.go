package redis

import (
	"fmt"
	"testing"

	"github.com/seed-544bbf9f/comet/internal/conformance"
	"github.com/seed-544bbf9f/comet/internal/testutil"
	"github.com/seed-544bbf9f/comet/session"
)

// TestConformanceCluster runs the conformance suite against three nodes on
// one real redis-server, behind a round-robin balancer: every request of
// a session may land on any node.
func TestConformanceCluster(t *testing.T) {
	conformance.Run(t, conformance.Cluster(3, redisBrokers(startRedis(t))))
}

// TestConformanceFailover runs the conformance suite against three nodes
// with failover, their sessions' logs in one real redis-server.
func TestConformanceFailover(t *testing.T) {
	conformance.Run(t, conformance.FailoverCluster(3, redisBrokers(startRedis(t))))
}

// redisBrokers makes each cluster's brokers on r.
func redisBrokers(r *testutil.Redis) conformance.Brokers {
	return func(t *testing.T, nodes int) []session.Broker {
		bs := make([]session.Broker, nodes)
		for i := range nodes {
			b, err := New(&Options{URL: redisURL(r), Node: fmt.Sprintf("%s-n%d", shortName(t), i+1),
				LeaseTTL: clusterTTL, Refresh: clusterRefresh, OpTimeout: clusterOpTimeout})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			bs[i] = b
		}
		return bs
	}
}

// shortName is a node id prefix unique to the test: the tests share one
// Redis, and node ids must be unique among live nodes.
func shortName(t *testing.T) string {
	return fmt.Sprintf("t%x", uint32(hash(t.Name())))
}

func hash(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
