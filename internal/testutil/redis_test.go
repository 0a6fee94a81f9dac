package testutil

import (
	"bufio"
	"net"
	"testing"
)

// TestStartRedis starts a server, speaks RESP to it and finds it gone
// once its cleanup has run.
func TestStartRedis(t *testing.T) {
	var addr string
	t.Run("start", func(t *testing.T) {
		r := StartRedis(t)
		addr = r.Addr
		c, err := net.Dial("tcp", r.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("PING\r\n")); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != "+PONG\r\n" {
			t.Fatalf("PING answered %q, %v", line, err)
		}
	})
	if t.Skipped() || addr == "" {
		return
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatalf("redis-server still accepts connections on %s after its test ended", addr)
	}
}
