package comet_test

import (
	"testing"

	"github.com/seed-544bbf9f/comet/internal/conformance"
	"github.com/seed-544bbf9f/comet/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// TestConformance runs the conformance suite against one handler.
func TestConformance(t *testing.T) { conformance.Run(t, conformance.SingleNode) }

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
