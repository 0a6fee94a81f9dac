package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"syscall"
	"time"

	"github.com/seed-544bbf9f/comet"
	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/internal/chatjson"
	"github.com/seed-544bbf9f/comet/transport"
)

// compressRounds is how many round trips the bytes and CPU time per round
// trip of metric 11 are counted over.
const compressRounds = 1000

// compressDocs is how many distinct documents metric 11 cycles through.
const compressDocs = 64

// cpuReport is what /_bench/cpu answers: the CPU time the server process
// has used so far, user and system.
type cpuReport struct {
	NS int64 `json:"ns"`
}

// processCPU returns the CPU time this process has used, user and system.
func processCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// cpuTime answers /_bench/cpu.
func (s *benchServer) cpuTime(w http.ResponseWriter, r *http.Request) {
	d, err := processCPU()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	json.NewEncoder(w).Encode(cpuReport{NS: d.Nanoseconds()})
}

// cpu reads the server's CPU time.
func (s *serverProc) cpu() (time.Duration, error) {
	var rep cpuReport
	err := s.call(http.MethodGet, "/_bench/cpu", &rep)
	return time.Duration(rep.NS), err
}

// cpuTimes reads the CPU time the server process and this one have used
// so far.
func cpuTimes(srv *serverProc) (server, self time.Duration, err error) {
	if server, err = srv.cpu(); err != nil {
		return 0, 0, err
	}
	self, err = processCPU()
	return server, self, err
}

// jsonRT echoes chat room JSON documents (chatjson), a different one each
// round trip, on a Comet session.
type jsonRT struct {
	c    *client.Conn
	docs [][]byte
	next *int
}

func (r jsonRT) roundTrip(ctx context.Context) error {
	doc := r.docs[*r.next%len(r.docs)]
	*r.next++
	if err := r.c.Send(ctx, transport.Text, doc); err != nil {
		return err
	}
	_, p, err := r.c.Recv(ctx)
	if err == nil && !bytes.Equal(p, doc) {
		err = fmt.Errorf("echo: got %d bytes, sent %d", len(p), len(doc))
	}
	return err
}

func (r jsonRT) close() { r.c.CloseNow() }

// compressResult is one configuration of metric 11's echo.
type compressResult struct {
	rate, bytes       float64 // round trips/s; bytes both ways per round trip
	serverCPU, client float64 // CPU time per round trip, µs
}

// measureCompressedEcho echoes JSON documents on one WebSocket session
// with a fresh server, permessage-deflate asked for by both ends or by
// neither: round trips per second, then the bytes on the wire and the
// CPU time of each process over compressRounds more.
func (r *runner) measureCompressedEcho(compress bool) (compressResult, error) {
	var res compressResult
	srv, err := startServerWith(serverConfig{app: appEcho, countWire: true, compress: compress})
	if err != nil {
		return res, err
	}
	defer srv.stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opts := &client.Options{Transports: []string{transport.WebSocket}}
	if compress {
		opts.Compression = &comet.Compression{}
	}
	c, err := client.Dial(ctx, srv.base+"/comet", opts)
	if err != nil {
		return res, err
	}
	docs := make([][]byte, compressDocs)
	for i := range docs {
		docs[i] = chatjson.Doc(i)
	}
	rt := jsonRT{c, docs, new(int)}
	defer rt.close()
	if res.rate, err = rate([]roundTripper{rt}, r.warm, r.window); err != nil {
		return res, err
	}
	// Bytes and CPU time per round trip, over compressRounds more. The
	// server's CPU time includes answering the reads of its byte counts.
	s0, c0, err := cpuTimes(srv)
	if err != nil {
		return res, err
	}
	if res.bytes, err = wirePerRoundTrip(ctx, srv, rt, compressRounds); err != nil {
		return res, err
	}
	s1, c1, err := cpuTimes(srv)
	if err != nil {
		return res, err
	}
	res.serverCPU = float64((s1 - s0).Microseconds()) / compressRounds
	res.client = float64((c1 - c0).Microseconds()) / compressRounds
	return res, nil
}

// compression is metric 11.
func (r *runner) compression() error {
	idleN := min(r.idleN, 2000)
	mean := 0
	for i := range compressDocs {
		mean += len(chatjson.Doc(i))
	}
	mean /= compressDocs
	s := r.section(11, "WebSocket compression: permessage-deflate on and off",
		fmt.Sprintf("One session on WebSocket echoes chat room JSON documents (a room update carrying three to "+
			"seven recent messages, with user records, ids, timestamps and reactions: %d documents of %s bytes "+
			"on average, made deterministically by `internal/chatjson`), one after another, for %s: with "+
			"`Options.Compression` on the server and `client.Options.Compression` on the Go client, at the "+
			"default level (1), and with neither, in the same run. Bytes per round trip are every byte the "+
			"server's connections read and wrote (WebSocket framing, acks and heartbeats included), and CPU "+
			"per round trip the user and system time of the server process and of the client (this "+
			"process, `getrusage`), over %s further round trips. Then %s idle sessions are opened by load "+
			"processes, asking for compression or not, against a fresh server each, and the server's heap "+
			"and stacks per session are read as in section 4. In the table, the Comet column is compression "+
			"on, the raw column compression off.", compressDocs, formatValue(float64(mean)), r.window,
			formatValue(compressRounds), formatValue(float64(idleN))),
		"Comet without compression, as before the option existed.")
	on, err := r.measureCompressedEcho(true)
	if err != nil {
		return fmt.Errorf("compression on: %w", err)
	}
	off, err := r.measureCompressedEcho(false)
	if err != nil {
		return fmt.Errorf("compression off: %w", err)
	}
	s.add(r.log, figure{Name: "JSON echo: bytes on the wire per round trip", Unit: "bytes", Comet: on.bytes, Raw: off.bytes})
	s.add(r.log, figure{Name: "JSON echo: round trips/s, 1 session", Unit: "round trips/s", Comet: on.rate, Raw: off.rate, Higher: true})
	s.add(r.log, figure{Name: "JSON echo: server CPU per round trip", Unit: "µs", Comet: on.serverCPU, Raw: off.serverCPU})
	s.add(r.log, figure{Name: "JSON echo: client CPU per round trip", Unit: "µs", Comet: on.client, Raw: off.client})

	idleOn, err := r.measureIdleWith(serverConfig{app: appEcho, compress: true}, kindDeflateComet, idleN)
	if err != nil {
		return fmt.Errorf("idle, compression on: %w", err)
	}
	idleOff, err := r.measureIdle(cometKind(transport.WebSocket), idleN)
	if err != nil {
		return fmt.Errorf("idle, compression off: %w", err)
	}
	at := fmt.Sprintf("idle, %s sessions", formatValue(float64(idleN)))
	s.add(r.log, figure{Name: at + ": heap + stacks", Unit: "KiB/session", Comet: idleOn.heap / 1024, Raw: idleOff.heap / 1024})
	s.add(r.log, figure{Name: at + ": RSS", Unit: "KiB/session", Comet: idleOn.rss / 1024, Raw: idleOff.rss / 1024, Detail: true})
	return nil
}
