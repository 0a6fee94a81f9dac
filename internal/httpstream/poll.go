package httpstream

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// A long-poll's response is one-shot: net/http sends it whole when the
// handler returns, and keeps the connection for the client's next
// request. A poll that stays parked for long holds the request's
// goroutine, net/http's background reader and the connection's buffers
// meanwhile, which cost more than the session itself. TakeOverPoll lets
// them go: the connection is hijacked, and the answer, when it comes, is
// written here as net/http would write it, with Content-Length, and
// followed by the connection's close (Connection: close), which HTTP/1.1
// allows after any response (RFC 9112 section 9.6). The client's next
// poll opens a new connection: the price of the memory saved, paid once
// per poll that waited long.

// answerSkipped are the header fields an answer written on a connection
// taken over sets itself, whatever the response's headers said.
var answerSkipped = map[string]bool{"Connection": true, "Content-Length": true, "Transfer-Encoding": true}

var answerPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// TakeOverPoll hijacks the connection of a one-shot response that nothing
// has been written to (a parked long-poll), so that the response no
// longer needs the request's goroutine; the adapter then returns. From
// then on the end of the connection, not the request's context, ends a,
// and Write writes the whole answer and closes the connection. It
// reports whether it took over; it does not when CanTakeOver does not
// hold, a Write has begun, the response is closed, or the client has
// gone (a then ends, as it would have anyway).
func (r *Response) TakeOverPoll(req *http.Request, a Attachment) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cfg.Stream || r.conn != nil || r.closed || r.answered || !r.CanTakeOver(req) {
		return false
	}
	if !r.stop() {
		return false // the request's context has ended: a is ending
	}
	header := r.w.Header().Clone()
	conn, brw, err := r.w.(http.Hijacker).Hijack()
	if err != nil {
		r.stop = context.AfterFunc(req.Context(), func() { a.End(ErrClientGone) })
		return false
	}
	// A client does not send on a connection whose response is still
	// coming; bytes already read (a pipelined request) are never answered.
	brw.Reader.Discard(brw.Reader.Buffered())
	r.conn, r.header = conn, header
	r.w, r.rc = nil, nil
	r.stop = stopped
	go watch(conn, a)
	return true
}

// answerLocked is Write on a poll's connection taken over, called with
// r.mu held; it lets go of it. It writes body as the whole answer, within
// the write timeout. Close then closes the connection: the attachment
// ends before the connection's end could be taken for the client's.
func (r *Response) answerLocked(body []byte) error {
	if r.answered {
		r.mu.Unlock()
		return ErrClosed // a poll carries one answer
	}
	r.answered = true
	if r.cfg.WriteTimeout > 0 {
		r.conn.SetWriteDeadline(time.Now().Add(r.cfg.WriteTimeout))
	}
	r.beginWriteLocked()
	return r.endWrite(r.writeAnswer(body))
}

// endAnswer is Close on a poll's connection taken over: a write in
// progress is cut short; a poll not answered yet is answered with an empty
// body, as net/http answers a handler that wrote nothing. Then the
// connection closes.
func (r *Response) endAnswer(writing, answered bool) error {
	switch {
	case writing:
		r.conn.SetWriteDeadline(longAgo)
	case !answered:
		r.conn.SetWriteDeadline(time.Now().Add(endTimeout))
		r.writeAnswer(nil)
	}
	return closeConn(r.conn)
}

// writeAnswer writes a 200 response carrying body on the connection taken
// over, in one write: the headers the response had when it was taken over,
// its length, and the connection's close.
func (r *Response) writeAnswer(body []byte) error {
	buf := answerPool.Get().(*bytes.Buffer)
	buf.Reset()
	buf.WriteString("HTTP/1.1 200 OK\r\n")
	r.header.WriteSubset(buf, answerSkipped)
	if _, ok := r.header["Date"]; !ok {
		buf.WriteString("Date: ")
		buf.WriteString(time.Now().UTC().Format(http.TimeFormat))
		buf.WriteString("\r\n")
	}
	buf.WriteString("Content-Length: ")
	buf.Write(strconv.AppendInt(buf.AvailableBuffer(), int64(len(body)), 10))
	buf.WriteString("\r\nConnection: close\r\n\r\n")
	buf.Write(body)
	_, err := r.conn.Write(buf.Bytes())
	if buf.Cap() <= maxKept {
		answerPool.Put(buf)
	}
	return err
}

// closeConn closes c, which may be closed already.
func closeConn(c net.Conn) error {
	err := c.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
