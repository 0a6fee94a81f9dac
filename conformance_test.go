package comet_test

import (
	"testing"
	"time"

	"github.com/seed-544bbf9f/comet/internal/conformance"
	"github.com/seed-544bbf9f/comet/internal/leakcheck"
	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// TestConformance runs the conformance suite against one handler.
func TestConformance(t *testing.T) { conformance.Run(t, conformance.SingleNode) }

// TestConformanceReleasedPolls runs the conformance suite's long-polling
// tests against one handler that takes every parked poll's connection
// over from net/http at once, rather than after half a second: each poll
// that waits is then answered on a connection of its own, which closes.
func TestConformanceReleasedPolls(t *testing.T) {
	conformance.RunOn(t, func(t *testing.T, opts *session.Options, eo conformance.EnvOptions) *conformance.Server {
		o := *opts
		o.PollRelease = time.Nanosecond
		return conformance.SingleNode(t, &o, eo)
	}, transport.LongPoll)
}

// TestConformanceClusterReleasedPolls is TestConformanceReleasedPolls on
// three nodes: a poll that reaches a node other than its session's is
// taken over there.
func TestConformanceClusterReleasedPolls(t *testing.T) {
	cluster := conformance.Cluster(3, conformance.MemoryBrokers)
	conformance.RunOn(t, func(t *testing.T, opts *session.Options, eo conformance.EnvOptions) *conformance.Server {
		o := *opts
		o.PollRelease = time.Nanosecond
		return cluster(t, &o, eo)
	}, transport.LongPoll)
}

// TestConformanceCluster runs the conformance suite against three nodes
// of a memory cluster behind a round-robin balancer.
func TestConformanceCluster(t *testing.T) {
	conformance.Run(t, conformance.Cluster(3, conformance.MemoryBrokers))
}

// TestConformanceFailover runs the conformance suite against three nodes
// of a memory cluster with failover: durable sessions behave as any.
func TestConformanceFailover(t *testing.T) {
	conformance.Run(t, conformance.FailoverCluster(3, conformance.MemoryBrokers))
}
