package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/seed-544bbf9f/comet/client"
	"github.com/seed-544bbf9f/comet/transport"
)

// binarySizes are the payloads of metric 10.
var binarySizes = []int{1 << 10, 64 << 10}

// wireProbeRounds is how many round trips the bytes per round trip are
// counted over.
const wireProbeRounds = 200

// wireReport is what /_bench/wire answers: the bytes the server's
// connections have read and written so far.
type wireReport struct {
	In, Out int64
}

// wireBytes answers /_bench/wire, for a server started with -countwire.
func (s *benchServer) wireBytes(w http.ResponseWriter, r *http.Request) {
	if s.wire == nil {
		http.Error(w, "the server counts no bytes: start it with -countwire", http.StatusNotFound)
		return
	}
	json.NewEncoder(w).Encode(wireReport{In: s.wire.Counts.BytesIn.Load(), Out: s.wire.Counts.BytesOut.Load()})
}

// wire reads the server's byte counts.
func (s *serverProc) wire() (int64, error) {
	var rep wireReport
	err := s.call(http.MethodGet, "/_bench/wire", &rep)
	return rep.In + rep.Out, err
}

// binaryRT echoes a binary payload on a Comet session.
type binaryRT struct {
	c *client.Conn
	p []byte
}

func (r binaryRT) roundTrip(ctx context.Context) error {
	if err := r.c.Send(ctx, transport.Binary, r.p); err != nil {
		return err
	}
	typ, p, err := r.c.Recv(ctx)
	if err == nil && (typ != transport.Binary || !bytes.Equal(p, r.p)) {
		err = fmt.Errorf("echo: got %v of %d bytes", typ, len(p))
	}
	return err
}

func (r binaryRT) close() { r.c.CloseNow() }

// binaryResult is one configuration of metric 10.
type binaryResult struct {
	rate, bytes float64 // round trips/s; bytes both ways per round trip
}

// measureBinary echoes size-byte binary messages on one WebSocket session
// with a fresh server, its NoBinaryFrames set to noBinary: round trips per
// second, then the bytes its connections carried per round trip.
func (r *runner) measureBinary(size int, noBinary bool) (binaryResult, error) {
	var res binaryResult
	srv, err := startServerWith(serverConfig{app: appEcho, noBinary: noBinary, countWire: true})
	if err != nil {
		return res, err
	}
	defer srv.stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := dialComet(ctx, srv.base, transport.WebSocket)
	if err != nil {
		return res, err
	}
	p := make([]byte, size)
	for i := range p {
		p[i] = byte(i * 7)
	}
	rt := binaryRT{c, p}
	defer rt.close()
	if res.rate, err = rate([]roundTripper{rt}, r.warm, r.window); err != nil {
		return res, err
	}
	res.bytes, err = wirePerRoundTrip(ctx, srv, rt, wireProbeRounds)
	return res, err
}

// wirePerRoundTrip runs rounds round trips on rt and returns the bytes
// the server's connections carried per round trip (it counts them with
// -countwire): the difference over the rounds, less what reading the
// counts costs (two reads back to back).
func wirePerRoundTrip(ctx context.Context, srv *serverProc, rt roundTripper, rounds int) (float64, error) {
	a, err := srv.wire()
	if err != nil {
		return 0, err
	}
	b, err := srv.wire()
	if err != nil {
		return 0, err
	}
	for range rounds {
		if err := rt.roundTrip(ctx); err != nil {
			return 0, err
		}
	}
	z, err := srv.wire()
	if err != nil {
		return 0, err
	}
	return float64(z-b-(b-a)) / float64(rounds), nil
}

// binaryFrames is metric 10.
func (r *runner) binaryFrames() error {
	s := r.section(10, "WebSocket binary echo: binary frames on and off",
		fmt.Sprintf("One session on WebSocket sends a binary message and waits for its echo, in a loop, for %s: "+
			"with binary frames (the Go client asks for them by default and the server agrees, so each binary "+
			"message travels as a binary WebSocket message, PROTOCOL.md section 4), and with the server's "+
			"`NoBinaryFrames`, in the same run. Bytes per round trip are every byte the server's connections "+
			"read and wrote (WebSocket framing, acks and heartbeats included) over %d further round trips, "+
			"counted by a wrapping `net.Listener`. In the table, the Comet column is binary frames on, the raw "+
			"column binary frames off.", r.window, wireProbeRounds),
		"Comet with `NoBinaryFrames`: binary messages base64 in text frames, as before binary frames.")
	for _, size := range binarySizes {
		on, err := r.measureBinary(size, false)
		if err != nil {
			return fmt.Errorf("binary frames on, %d bytes: %w", size, err)
		}
		off, err := r.measureBinary(size, true)
		if err != nil {
			return fmt.Errorf("binary frames off, %d bytes: %w", size, err)
		}
		kib := size >> 10
		s.add(r.log, figure{Name: fmt.Sprintf("%d KiB: round trips/s, 1 session", kib), Unit: "round trips/s",
			Comet: on.rate, Raw: off.rate, Higher: true})
		s.add(r.log, figure{Name: fmt.Sprintf("%d KiB: bytes on the wire per round trip", kib), Unit: "bytes",
			Comet: on.bytes, Raw: off.bytes})
	}
	return nil
}
