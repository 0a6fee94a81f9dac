package tcprelay

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/internal/libclose"
)

// closeSession closes s with one of the library's codes.
func closeSession(s *comet.Session, code comet.CloseCode, reason string) {
	libclose.Close(s, code, reason)
}

// pipe is one relayed connection: a goroutine copying the back-end to the
// session (down) and one copying the session to the back-end (up). Each
// blocks on the side that is slow, and so pushes back on the other: down
// waits in Send while the session's window is full and reads no more of
// the socket; up waits in Write while the back-end does not read, and
// calls Recv no more, so the session's inbound buffer fills and the
// server stops acknowledging: the client waits. A relay holds the two
// windows and one read buffer, whatever the rates.
type pipe struct {
	s     *comet.Session
	conn  net.Conn
	start time.Time
	chunk int // the largest Send, halved while the session refuses it

	up, down atomic.Int64 // bytes relayed each way
	last     atomic.Int64 // when bytes last moved, as time since start

	mu sync.Mutex
	// ended is set by whichever ends the relay first: the relay itself
	// (byRelay, with its close code), or the session closing (code and
	// reason are then the session's, once up has read them).
	ended, byRelay bool
	code           comet.CloseCode
	reason         string
}

// run relays until both directions are done, then closes the socket.
func (p *pipe) run(readBuffer int, idle time.Duration) {
	p.touch()
	// One timer, re-armed for the rest of the quiet time when it fires
	// early, rather than reset on every read and write.
	var idleTimer *time.Timer
	p.mu.Lock() // the timer's func may run before AfterFunc returns
	idleTimer = time.AfterFunc(idle, func() {
		quiet := time.Since(p.start) - time.Duration(p.last.Load())
		p.mu.Lock()
		ended := p.ended
		if !ended && quiet < idle {
			idleTimer.Reset(idle - quiet)
		}
		p.mu.Unlock()
		if !ended && quiet >= idle {
			p.end(comet.CloseRelayIdle, "idle timeout")
		}
	})
	p.mu.Unlock()
	// The session closing (the client's close, a shutdown) ends the relay
	// gracefully: what the client sent is written, then a FIN; the linger
	// bounds both, and the wait for the back-end's own FIN.
	stop := context.AfterFunc(p.s.Context(), func() {
		p.mu.Lock()
		first := !p.ended
		p.ended = true
		p.mu.Unlock()
		if first {
			p.conn.SetDeadline(time.Now().Add(linger))
		}
	})
	if err := p.s.Send(p.s.Context(), comet.Text, openMessage); err == nil {
		upDone := make(chan struct{})
		go func() {
			defer close(upDone)
			p.upstream()
		}()
		p.downstream(make([]byte, readBuffer))
		<-upDone
	} else {
		p.setCode(err)
	}
	stop()
	p.mu.Lock()
	p.ended = true // no idle check from now on
	p.mu.Unlock()
	idleTimer.Stop()
	p.conn.Close()
}

// touch records that bytes moved, for the idle timeout.
func (p *pipe) touch() { p.last.Store(int64(time.Since(p.start))) }

// end ends the relay with code, unless it has ended already: it closes the
// session and cuts the socket, which unblocks both directions. After the
// session closed, it does nothing: that end is graceful, and bounded by
// the linger.
func (p *pipe) end(code comet.CloseCode, reason string) {
	p.mu.Lock()
	if p.ended || p.s.Context().Err() != nil {
		p.mu.Unlock()
		return
	}
	p.ended, p.byRelay, p.code, p.reason = true, true, code, reason
	p.mu.Unlock()
	closeSession(p.s, code, reason)
	p.conn.SetDeadline(time.Unix(1, 0))
}

// setCode records the session's close, carried by err, as the relay's end
// unless the relay ended it.
func (p *pipe) setCode(err error) {
	var ce *comet.CloseError
	if !errors.As(err, &ce) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.byRelay && p.code == 0 {
		p.code, p.reason = ce.Code, ce.Reason
	}
}

// upstream writes the client's messages to the back-end, then, once the
// session has closed, sends a FIN.
func (p *pipe) upstream() {
	for {
		_, msg, err := p.s.Recv(p.s.Context())
		if err != nil {
			p.setCode(err)
			break
		}
		p.touch()
		if _, err := p.conn.Write(msg); err != nil {
			if isReset(err) {
				p.end(comet.CloseRelayReset, "back-end reset the connection")
			} else {
				p.end(comet.CloseRelayReset, "back-end connection failed")
			}
			return
		}
		p.up.Add(int64(len(msg)))
		p.touch()
	}
	p.mu.Lock()
	graceful := !p.byRelay
	p.mu.Unlock()
	if cw, ok := p.conn.(interface{ CloseWrite() error }); ok && graceful {
		cw.CloseWrite()
	}
}

// downstream sends what the back-end sends to the client, until the
// back-end's FIN (3105, sent after all its bytes), a reset (3104), or the
// relay's end. Once the session has closed it reads on and drops what it
// reads until the back-end's FIN or the linger: closing a socket with
// unread bytes would send a reset in place of our FIN.
func (p *pipe) downstream(buf []byte) {
	drop := false
	for {
		n, err := p.conn.Read(buf)
		if n > 0 {
			p.touch()
			if !drop {
				if serr := p.send(buf[:n]); serr != nil {
					p.setCode(serr)
					drop = true
				} else {
					p.down.Add(int64(n))
				}
			}
		}
		switch {
		case err == nil:
		case readerEOF(err):
			p.end(comet.CloseRelayClosed, "back-end closed the connection")
			return
		case isReset(err):
			p.end(comet.CloseRelayReset, "back-end reset the connection")
			return
		default:
			p.end(comet.CloseRelayReset, "back-end connection failed")
			return
		}
	}
}

// send sends b as binary messages of at most p.chunk bytes, halving the
// chunk while the session finds it too big (ReadBuffer above MaxMessage).
func (p *pipe) send(b []byte) error {
	for len(b) > 0 {
		n := min(len(b), p.chunk)
		err := p.s.Send(p.s.Context(), comet.Binary, b[:n])
		if errors.Is(err, comet.ErrMessageTooBig) && p.chunk > 1 {
			p.chunk /= 2
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
