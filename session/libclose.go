package session

import (
	"github.com/seed-544bbf9f/comet/internal/libclose"
	"github.com/seed-544bbf9f/comet/transport"
)

func init() {
	libclose.Close = func(s any, code transport.CloseCode, reason string) {
		s.(*Session).closeInternal(code, transport.TruncateReason(reason))
	}
}
