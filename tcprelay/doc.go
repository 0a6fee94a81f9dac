// Package tcprelay relays Comet sessions to TCP back-ends: a page speaks
// Redis, IRC or STOMP to a server it could not reach from a browser, over
// whichever transport gets through (PROTOCOL.md section 13; the browser
// side is the served script comet-tcp.js, whose global is CometTCP).
//
//	relay := tcprelay.New(&tcprelay.Options{Allow: []string{"redis.internal:6379"}})
//	h := comet.NewHandler(&comet.Options{Serve: relay.Serve})
//
// The client asks for a target at negotiate ({target: "host:port"} in the
// browser, client.Options.Target in Go); comet.Options.Negotiate may grant
// it, change it or refuse the session, and without that hook the target
// asked for is the one granted. The relay then applies its own policy,
// which denies by default: a target is reached only if Options.Allow lists
// it. A name is resolved once, every address it resolves to is checked
// (IPv4-mapped and NAT64 addresses as the IPv4 address they reach), and the
// relay connects to the address it checked, never to the name again.
// Loopback, private, link-local (cloud metadata), carrier-grade NAT,
// multicast, unspecified and broadcast addresses are reached only through
// an IP or CIDR entry within their network, never through a name.
//
// Ports of the Fetch standard's bad-port list (SMTP, SSH, IRC's
// 6665–6669 and 6697, SIP...) are refused unless an entry names that port
// alone, as "irc.example.net:6697": a range never admits them. A page
// that could write to those services could make them obey its text.
//
// After connecting, the relay sends the text message {"open":true}, then
// the back-end's bytes as binary messages; the client's messages, binary
// or text, are written to the back-end as bytes. Failures close the
// session with 3100 (not allowed), 3101 (refused), 3102 (connect timeout),
// 3103 (DNS), 3104 (reset), 3105 (the back-end closed, after all its bytes
// were sent), 3106 (idle), or 3006 past MaxConns or MaxConnsPerClient.
// When the client closes the session, the relay writes what it received,
// sends a FIN and closes the socket within a bounded linger.
//
// Flow control is the session's, both ways: a relay reads the back-end
// only while the client keeps up, and takes the client's messages only as
// fast as the back-end reads them, so a relay's memory is its session's
// two windows and one read buffer.
//
// A Relay is safe for concurrent use; Serve runs one relay per session.
package tcprelay
