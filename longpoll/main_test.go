package longpoll_test

import (
	"testing"

	"github.com/seed-544bbf9f/comet/internal/leakcheck"
)

// TestMain fails the package if its tests leave goroutines running: a poll
// that stays parked after its client has gone is a leak.
func TestMain(m *testing.M) { leakcheck.Main(m) }
