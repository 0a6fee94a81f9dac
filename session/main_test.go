package session

import (
	"testing"

	"github.com/seed-544bbf9f/comet/internal/leakcheck"
)

// TestMain fails the run if a test leaves a goroutine behind: an
// attachment still served, a Send or Receive still waiting.
func TestMain(m *testing.M) { leakcheck.Main(m) }
