package session_test

import (
	"testing"

	"github.com/seed-544bbf9f/comet/internal/storetest"
	"github.com/seed-544bbf9f/comet/session"
)

// TestMemoryStore runs the SessionStore suite on a MemoryCluster's nodes.
func TestMemoryStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (a, b storetest.Node) {
		c := session.NewMemoryCluster()
		na, nb := c.Node("a"), c.Node("b")
		t.Cleanup(func() { na.Close(); nb.Close() })
		return storetest.Node{Store: na, ID: "a"}, storetest.Node{Store: nb, ID: "b"}
	})
}
