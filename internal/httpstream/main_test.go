package httpstream_test

import (
	"testing"

	"github.com/seed-544bbf9f/comet/internal/leakcheck"
)

// TestMain fails the package if a test leaves goroutines running: a
// response nobody unblocks, or a request the helper forgot, is a leak.
func TestMain(m *testing.M) { leakcheck.Main(m) }
