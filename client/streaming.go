package client

import (
	"bytes"
	"fmt"

	"github.com/seed-544bbf9f/comet/transport"
)

// streamingFormat is the XHR-streaming transport (PROTOCOL.md section
// 5.1): batches back to back, one frame a line. The server recycles the
// response after a byte budget, always at a frame boundary, and the
// client attaches again.
var streamingFormat = &streamFormat{
	name:      transport.Streaming,
	recycles:  true,
	newParser: func(max int) streamParser { return &lineParser{max: max} },
}

// lineParser splits a stream of batches into frames: lines ended by "\n",
// kept whole across reads, with padding lines (empty, or only spaces)
// skipped. Frames never hold a raw newline (PROTOCOL.md section 4), so
// "\n" is the only separator; a CR is part of a line, and a frame holding
// one fails to decode.
type lineParser struct {
	max  int    // the longest line accepted
	line []byte // an incomplete line from earlier chunks
}

// feed parses the next chunk and calls emit with each complete frame
// line, without its newline. The line is valid only during the call.
func (p *lineParser) feed(chunk []byte, emit func(line []byte) error) error {
	for len(chunk) > 0 {
		i := bytes.IndexByte(chunk, '\n')
		if i < 0 {
			if len(p.line)+len(chunk) > p.max {
				return p.tooLong()
			}
			p.line = append(p.line, chunk...)
			return nil
		}
		if len(p.line)+i > p.max {
			return p.tooLong()
		}
		line := chunk[:i]
		if len(p.line) > 0 {
			p.line = append(p.line, line...)
			line = p.line
		}
		chunk = chunk[i+1:]
		var err error
		if !isPadding(line) {
			err = emit(line)
		}
		p.line = p.line[:0]
		if err != nil {
			return err
		}
	}
	return nil
}

func (p *lineParser) tooLong() error {
	return fmt.Errorf("%w: a stream line longer than %d bytes", transport.ErrMalformed, p.max)
}

// partial reports whether the stream so far ends inside a frame: a
// response cut there was cut by the network, not recycled by the server.
func (p *lineParser) partial() bool { return !isPadding(p.line) }

// isPadding reports whether a line is padding: empty or only spaces
// (PROTOCOL.md section 4, "Batches").
func isPadding(line []byte) bool {
	for _, c := range line {
		if c != ' ' {
			return false
		}
	}
	return true
}
