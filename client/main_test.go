package client

import (
	"testing"

	"github.com/seed-544bbf9f/comet/internal/leakcheck"
)

// TestMain fails the run if a test leaves a goroutine behind: every Conn
// must stop everything it started.
func TestMain(m *testing.M) { leakcheck.Main(m) }
