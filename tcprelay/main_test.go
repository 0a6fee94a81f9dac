package tcprelay

import (
	"testing"

	"github.com/seed-544bbf9f/comet/internal/leakcheck"
)

// TestMain fails the run if a test leaves a goroutine behind: every relay
// must stop both its directions and its timers' work.
func TestMain(m *testing.M) { leakcheck.Main(m) }
