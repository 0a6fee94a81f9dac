package client

import (
	"bytes"
	"fmt"
	"mime"

	"github.com/seed-544bbf9f/comet/transport"
)

// sseFormat is the Server-Sent Events transport (PROTOCOL.md section
// 5.1): every frame is the data of one event of the default type.
var sseFormat = &streamFormat{
	name:   transport.SSE,
	accept: "text/event-stream",
	checkType: func(contentType string) error {
		// EventSource refuses any other type, and so does this client: a
		// proxy's error page is not an event stream.
		if mt, _, err := mime.ParseMediaType(contentType); err != nil || mt != "text/event-stream" {
			return fmt.Errorf("comet: sse response of type %q, want text/event-stream", contentType)
		}
		return nil
	},
	newParser: func(max int) streamParser { return &sseParser{max: max} },
}

// utf8BOM may open an event stream; the HTML standard's decoder drops it.
var utf8BOM = []byte("\xef\xbb\xbf")

// sseParser reads an event stream as the HTML standard's "Interpreting an
// event stream" does: lines end with CRLF, LF or CR; a line starting with
// a colon is a comment; "data" lines add to the event's data, one line
// each; a blank line dispatches the event. It hands on the data of events
// of the default type ("message") only, as a page's onmessage sees them.
// "id" and "retry" serve a browser's automatic reconnect, which this
// client never makes (a spent ticket would be refused), so they are
// ignored. An event cut off by the end of the stream is never dispatched.
type sseParser struct {
	max     int    // the longest line, and the longest event data, accepted
	line    []byte // an incomplete line from earlier chunks
	data    []byte // the data buffer of the event being read, each line + "\n"
	event   []byte // its event type, if a field named one
	afterCR bool   // the last chunk ended with CR: an LF opening the next ends no line
	begun   bool   // the first line has been read (a BOM before it is dropped)
}

// feed parses the next chunk of the stream and calls emit with the data
// of each event it completes: one or more frames, separated by "\n". The
// data is valid only during the call.
func (p *sseParser) feed(chunk []byte, emit func(data []byte) error) error {
	for len(chunk) > 0 {
		if p.afterCR {
			p.afterCR = false
			if chunk[0] == '\n' {
				chunk = chunk[1:]
				continue
			}
		}
		i := bytes.IndexAny(chunk, "\r\n")
		if i < 0 {
			return p.keep(chunk)
		}
		if len(p.line)+i > p.max {
			return p.tooLong()
		}
		line := chunk[:i]
		if len(p.line) > 0 {
			p.line = append(p.line, line...)
			line = p.line
		}
		if chunk[i] == '\r' {
			switch {
			case i+1 == len(chunk):
				p.afterCR = true
			case chunk[i+1] == '\n':
				i++
			}
		}
		chunk = chunk[i+1:]
		err := p.processLine(line, emit)
		p.line = p.line[:0]
		if err != nil {
			return err
		}
	}
	return nil
}

// keep holds the start of a line until its end arrives.
func (p *sseParser) keep(part []byte) error {
	if len(p.line)+len(part) > p.max {
		return p.tooLong()
	}
	p.line = append(p.line, part...)
	return nil
}

func (p *sseParser) tooLong() error {
	return fmt.Errorf("%w: an event stream line or event longer than %d bytes", transport.ErrMalformed, p.max)
}

func (p *sseParser) processLine(line []byte, emit func([]byte) error) error {
	if !p.begun {
		p.begun = true
		line = bytes.TrimPrefix(line, utf8BOM)
	}
	switch {
	case len(line) == 0:
		return p.dispatch(emit)
	case line[0] == ':':
		return nil // a comment: the preamble, or a keep-alive for proxies
	}
	field, value, found := bytes.Cut(line, []byte{':'})
	if found && len(value) > 0 && value[0] == ' ' {
		value = value[1:]
	}
	switch string(field) {
	case "data":
		if len(p.data)+len(value)+1 > p.max {
			return p.tooLong()
		}
		p.data = append(append(p.data, value...), '\n')
	case "event":
		p.event = append(p.event[:0], value...)
	}
	return nil
}

// dispatch ends the event: an event with no data line is no event at all.
func (p *sseParser) dispatch(emit func([]byte) error) error {
	data, event := p.data, p.event
	p.data, p.event = p.data[:0], p.event[:0]
	if len(data) == 0 {
		return nil
	}
	if len(event) > 0 && string(event) != "message" {
		return nil
	}
	return emit(data[:len(data)-1])
}

// partial reports whether the stream so far ends inside an event.
func (p *sseParser) partial() bool { return len(p.line) > 0 || len(p.data) > 0 }
