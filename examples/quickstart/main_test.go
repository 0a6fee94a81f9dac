package quickstart_test

import (
	"testing"

	"github.com/seed-544bbf9f/comet/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }
