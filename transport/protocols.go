package transport

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Bounds of a negotiate request's subprotocol list. The browser's
// WebSocket sets none; these leave room for any list a real library
// offers (STOMP offers three, MQTT two to four) while keeping the
// request, and what a session keeps of it, small.
const (
	MaxProtocols     = 32
	MaxProtocolBytes = 128
)

// ErrInvalidProtocols is wrapped by CheckProtocols' errors.
var ErrInvalidProtocols = errors.New("comet: invalid subprotocol list")

// separators are the characters RFC 2616 section 2.2 excludes from a
// token, besides controls and non-ASCII; RFC 6455 section 4.1 makes a
// subprotocol such a token.
const separators = "()<>@,;:\\\"/[]?={} \t"

// ValidProtocol reports whether p may name a subprotocol: a non-empty
// string of U+0021–U+007E without separators (RFC 6455 section 4.1), at
// most MaxProtocolBytes long.
func ValidProtocol(p string) bool {
	if p == "" || len(p) > MaxProtocolBytes {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x21 || c > 0x7e || strings.IndexByte(separators, c) >= 0 {
			return false
		}
	}
	return true
}

// CheckProtocols checks a client's subprotocol list as the browser's
// WebSocket constructor does (every entry a token, none twice; names are
// case-sensitive) and within MaxProtocols and MaxProtocolBytes. An empty
// list is valid: it asks for no subprotocol.
func CheckProtocols(list []string) error {
	if len(list) > MaxProtocols {
		return fmt.Errorf("%w: %d subprotocols, more than %d", ErrInvalidProtocols, len(list), MaxProtocols)
	}
	for i, p := range list {
		switch {
		case len(p) > MaxProtocolBytes:
			return fmt.Errorf("%w: %.32q… is longer than %d bytes", ErrInvalidProtocols, p, MaxProtocolBytes)
		case !ValidProtocol(p):
			return fmt.Errorf("%w: %q is not a token of RFC 6455 section 4.1", ErrInvalidProtocols, p)
		case slices.Contains(list[:i], p):
			return fmt.Errorf("%w: %q is listed twice", ErrInvalidProtocols, p)
		}
	}
	return nil
}
