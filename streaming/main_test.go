package streaming_test

import (
	"testing"

	"github.com/seed-544bbf9f/comet/internal/leakcheck"
)

// TestMain fails the package if its tests leave goroutines running: a
// stream that outlives its client, its budget or its session is a leak.
func TestMain(m *testing.M) { leakcheck.Main(m) }
