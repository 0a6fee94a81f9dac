package redis

import (
	"errors"
	"strings"
	"testing"

	"github.com/seed-544bbf9f/comet/session"
)

// TestACL runs Redis with the default user off and one user, alice: a
// URL with her name and password works, a wrong password shows in Err.
func TestACL(t *testing.T) {
	t.Parallel()
	r := startRedis(t, "--user", "default", "off", "--user", "alice", "on", ">s3cret", "~*", "&*", "+@all")
	url := func(userinfo string) string { return "redis://" + userinfo + "@" + r.Addr + "/0" }
	t.Run("password", func(t *testing.T) {
		b, rec := start(t, Options{URL: url("alice:s3cret")})
		waitUntil(t, "Err nil", func() bool { return b.Err() == nil })
		if !b.Alive(b.Node()) {
			t.Error("not Alive itself")
		}
		flows(t, b, b, rec)
	})
	for _, userinfo := range []string{"alice:wrong", "bob:s3cret", "default:"} {
		t.Run(userinfo, func(t *testing.T) {
			b, _ := start(t, Options{URL: url(userinfo)})
			waitUntil(t, "Err names the refusal", func() bool {
				err := b.Err()
				return err != nil && (strings.Contains(err.Error(), "WRONGPASS") || strings.Contains(err.Error(), "NOAUTH"))
			})
			if err := b.Err(); !errors.Is(err, session.ErrBrokerUnavailable) {
				t.Errorf("Err = %v, not ErrBrokerUnavailable", err)
			}
		})
	}
}
