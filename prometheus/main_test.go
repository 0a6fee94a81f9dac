package prometheus_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves a goroutine behind: a session's
// application, an attachment or a client still running.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
