package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// A small STOMP broker over Comet sessions, for the @stomp/stompjs case
// (libs_stomp_test.go): CONNECT with version negotiation, SUBSCRIBE,
// UNSUBSCRIBE, SEND fanned out as MESSAGE to every subscriber of the
// destination, RECEIPT for any frame that asks, DISCONNECT. It is what the
// library exercises, from the STOMP 1.2 specification; everything else is
// answered with an ERROR frame and a close.

// stompFrame is one STOMP frame.
type stompFrame struct {
	command string
	headers [][2]string // in order; of a repeated header the first counts
	body    []byte
}

// header returns the value of the header name.
func (f *stompFrame) header(name string) (string, bool) {
	for _, h := range f.headers {
		if h[0] == name {
			return h[1], true
		}
	}
	return "", false
}

// stompEscaper replaces a header's special characters by their escapes
// (STOMP 1.2, "Value Encoding"; 1.1 has all but \r).
var stompEscaper = strings.NewReplacer("\\", `\\`, "\r", `\r`, "\n", `\n`, ":", `\c`)

func stompUnescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		i++
		if i == len(s) {
			return "", fmt.Errorf("header %q ends with a lone backslash", s)
		}
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 'r':
			b.WriteByte('\r')
		case 'n':
			b.WriteByte('\n')
		case 'c':
			b.WriteByte(':')
		default:
			return "", fmt.Errorf("header %q has the undefined escape \\%c", s, s[i])
		}
	}
	return b.String(), nil
}

// parseStomp splits one WebSocket message into frames, skipping the EOLs
// between them (heart-beats). escaped says whether header values carry
// escapes, which they do once 1.1 or 1.2 is agreed, except in CONNECT.
func parseStomp(b []byte, escaped bool) ([]stompFrame, error) {
	var out []stompFrame
	for {
		b = bytes.TrimLeft(b, "\r\n")
		if len(b) == 0 {
			return out, nil
		}
		f, rest, err := parseStompFrame(b, escaped)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
		b = rest
	}
}

// cutLine returns the line at the start of b, without its EOL (\n or
// \r\n), and what follows it.
func cutLine(b []byte) (string, []byte, bool) {
	line, rest, ok := bytes.Cut(b, []byte("\n"))
	return string(bytes.TrimSuffix(line, []byte("\r"))), rest, ok
}

func parseStompFrame(b []byte, escaped bool) (stompFrame, []byte, error) {
	command, b, ok := cutLine(b)
	if !ok || command == "" {
		return stompFrame{}, nil, errors.New("a frame without its command line")
	}
	f := stompFrame{command: command}
	escaped = escaped && command != "CONNECT" && command != "STOMP"
	for {
		var line string
		line, b, ok = cutLine(b)
		if !ok {
			return f, nil, fmt.Errorf("%s: the frame ends inside its headers", command)
		}
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return f, nil, fmt.Errorf("%s: header line %q has no colon", command, line)
		}
		if escaped {
			var err error
			if k, err = stompUnescape(k); err != nil {
				return f, nil, err
			}
			if v, err = stompUnescape(v); err != nil {
				return f, nil, err
			}
		}
		f.headers = append(f.headers, [2]string{k, v})
	}
	if cl, ok := f.header("content-length"); ok {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 || n >= len(b) || b[n] != 0 {
			return f, nil, fmt.Errorf("%s: content-length %q does not match the body", command, cl)
		}
		f.body = b[:n]
		return f, b[n+1:], nil
	}
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return f, nil, fmt.Errorf("%s: the frame has no NUL at its end", command)
	}
	f.body = b[:i]
	return f, b[i+1:], nil
}

// encode returns the frame's bytes, with a content-length, its header
// values escaped if escaped (never in CONNECTED).
func (f stompFrame) encode(escaped bool) []byte {
	var b bytes.Buffer
	b.WriteString(f.command)
	b.WriteByte('\n')
	escaped = escaped && f.command != "CONNECTED"
	for _, h := range f.headers {
		k, v := h[0], h[1]
		if escaped {
			k, v = stompEscaper.Replace(k), stompEscaper.Replace(v)
		}
		b.WriteString(k + ":" + v + "\n")
	}
	fmt.Fprintf(&b, "content-length:%d\n\n", len(f.body))
	b.Write(f.body)
	b.WriteByte(0)
	return b.Bytes()
}

// stompVersions maps the subprotocols of STOMP over WebSocket to the
// versions they name.
var stompVersions = map[string]string{"v10.stomp": "1.0", "v11.stomp": "1.1", "v12.stomp": "1.2"}

// stompVersion picks the version to speak with the client that sent
// CONNECT: the one its subprotocol names, if the session agreed on one,
// else the highest it accepts.
func stompVersion(connect stompFrame, protocol string) (string, error) {
	accept := []string{"1.0"} // a client without accept-version speaks 1.0
	if v, ok := connect.header("accept-version"); ok {
		accept = strings.Split(v, ",")
	}
	if protocol != "" {
		v, ok := stompVersions[protocol]
		if !ok || !slices.Contains(accept, v) {
			return "", fmt.Errorf("the subprotocol is %q, but accept-version is %q", protocol, strings.Join(accept, ","))
		}
		return v, nil
	}
	for _, v := range []string{"1.2", "1.1", "1.0"} {
		if slices.Contains(accept, v) {
			return v, nil
		}
	}
	return "", fmt.Errorf("accept-version %q names none of 1.0, 1.1, 1.2", strings.Join(accept, ","))
}

// stompBroker is the broker. Its destinations are topics: a SEND reaches
// every subscriber at that moment, the sender too if subscribed.
type stompBroker struct {
	s        *libServer
	cutAfter int // cut every connection once, after this many SENDs
	cutOnce  sync.Once
	// ended gets what each session saw as it ends; it has room for more
	// sessions than a case makes, so that a surplus one, which the checks
	// report, cannot block the handler's shutdown.
	ended chan stompEnd

	mu      sync.Mutex
	subs    map[string][]stompSub // by destination
	sends   int
	counter int // message-id
}

type stompSub struct {
	c  *stompConn
	id string
}

// stompConn is one client's session with the broker.
type stompConn struct {
	sess    *session.Session
	version string // agreed at CONNECT; "" before
	end     stompEnd
}

// stompEnd is what the broker saw of one session.
type stompEnd struct {
	protocol string     // the session's subprotocol
	connect  stompFrame // the CONNECT frame
	version  string     // the version agreed
	commands []string   // the command of every client frame, in order
	bodies   []string   // the body of every SEND, in order
	err      error      // how Recv ended
}

func newStompBroker(cutAfter int) *stompBroker {
	return &stompBroker{cutAfter: cutAfter, ended: make(chan stompEnd, 8), subs: map[string][]stompSub{}}
}

func (b *stompBroker) serve(sess *session.Session) {
	c := &stompConn{sess: sess}
	c.end.protocol = sess.Protocol()
	defer func() {
		b.unsubscribe(c, "")
		b.ended <- c.end
	}()
	ctx := sess.Context()
	for {
		typ, p, err := sess.Recv(ctx)
		if err != nil {
			c.end.err = err
			return
		}
		if typ != transport.Text {
			b.fail(ctx, c, "STOMP frames travel as text here")
			continue
		}
		frames, err := parseStomp(p, c.version == "1.1" || c.version == "1.2")
		if err != nil {
			b.fail(ctx, c, err.Error())
			continue
		}
		for _, f := range frames {
			c.end.commands = append(c.end.commands, f.command)
			if err := b.handle(ctx, c, f); err != nil {
				b.fail(ctx, c, err.Error())
				break
			}
		}
	}
}

// handle carries out one client frame.
func (b *stompBroker) handle(ctx context.Context, c *stompConn, f stompFrame) error {
	if c.version == "" && f.command != "CONNECT" && f.command != "STOMP" {
		return fmt.Errorf("%s before CONNECT", f.command)
	}
	need := func(names ...string) ([]string, error) {
		var out []string
		for _, n := range names {
			v, ok := f.header(n)
			if !ok {
				return nil, fmt.Errorf("%s without its %s header", f.command, n)
			}
			out = append(out, v)
		}
		return out, nil
	}
	switch f.command {
	case "CONNECT", "STOMP":
		if c.version != "" {
			return errors.New("a second CONNECT")
		}
		v, err := stompVersion(f, c.end.protocol)
		if err != nil {
			return err
		}
		c.version, c.end.connect, c.end.version = v, f, v
		// No heart-beats: a Comet session has its own.
		b.send(ctx, c, stompFrame{command: "CONNECTED", headers: [][2]string{{"version", v}, {"heart-beat", "0,0"}, {"server", "comet-e2e/1"}}})
		return nil
	case "SUBSCRIBE":
		h, err := need("id", "destination")
		if err != nil {
			return err
		}
		b.mu.Lock()
		b.subs[h[1]] = append(b.subs[h[1]], stompSub{c, h[0]})
		b.mu.Unlock()
	case "UNSUBSCRIBE":
		h, err := need("id")
		if err != nil {
			return err
		}
		b.unsubscribe(c, h[0])
	case "SEND":
		h, err := need("destination")
		if err != nil {
			return err
		}
		c.end.bodies = append(c.end.bodies, string(f.body))
		b.publish(ctx, h[0], f)
	case "DISCONNECT":
		// The receipt below; then the client closes.
	default:
		return fmt.Errorf("%s is not supported by this broker", f.command)
	}
	if r, ok := f.header("receipt"); ok {
		b.send(ctx, c, stompFrame{command: "RECEIPT", headers: [][2]string{{"receipt-id", r}}})
	}
	if f.command == "SEND" {
		b.mu.Lock()
		b.sends++
		cut := b.sends == b.cutAfter
		b.mu.Unlock()
		if cut {
			b.s.cut(&b.cutOnce)
		}
	}
	return nil
}

// publish sends a SEND as MESSAGE to every subscriber of dest, with the
// sender's headers other than those of the SEND itself.
func (b *stompBroker) publish(ctx context.Context, dest string, f stompFrame) {
	b.mu.Lock()
	subs := slices.Clone(b.subs[dest])
	b.counter++
	id := strconv.Itoa(b.counter)
	b.mu.Unlock()
	for _, sub := range subs {
		m := stompFrame{command: "MESSAGE", body: f.body, headers: [][2]string{{"destination", dest}, {"message-id", id}, {"subscription", sub.id}}}
		for _, h := range f.headers {
			switch h[0] {
			case "destination", "receipt", "content-length", "transaction":
			default:
				m.headers = append(m.headers, h)
			}
		}
		b.send(ctx, sub.c, m)
	}
}

// unsubscribe ends c's subscription id, or all of c's subscriptions if id
// is "".
func (b *stompBroker) unsubscribe(c *stompConn, id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for dest, subs := range b.subs {
		b.subs[dest] = slices.DeleteFunc(subs, func(s stompSub) bool { return s.c == c && (id == "" || s.id == id) })
	}
}

func (b *stompBroker) send(ctx context.Context, c *stompConn, f stompFrame) {
	if err := c.sess.Send(ctx, transport.Text, f.encode(c.version == "1.1" || c.version == "1.2")); err != nil {
		b.s.log.Error("e2e: STOMP send", "command", f.command, "err", err)
	}
}

// fail answers a frame the broker cannot take with an ERROR frame, then
// closes the session, as STOMP requires after an ERROR.
func (b *stompBroker) fail(ctx context.Context, c *stompConn, msg string) {
	b.s.log.Error("e2e: STOMP error", "err", msg)
	b.send(ctx, c, stompFrame{command: "ERROR", headers: [][2]string{{"message", msg}}})
	reason := "STOMP: " + msg
	if len(reason) > transport.MaxReasonBytes {
		reason = reason[:transport.MaxReasonBytes]
	}
	c.sess.Close(4400, strings.ToValidUTF8(reason, ""))
}
