package session

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// shareOpKind is what an op of a POST to a carrier asks for.
type shareOpKind byte

const (
	shareOpStart shareOpKind = iota // a sub-request: [sub,"GET",target] or [sub,"POST",target,body]
	shareOpAbort                    // [sub,"x"]: end the sub-request, its client is gone
	shareOpPing                     // [0,"p"]: put a ping frame on the carrier
)

// shareMaxOps bounds the ops of one POST.
const shareMaxOps = 1024

// maxSafe is the largest integer JavaScript numbers hold exactly.
const maxSafe = 1<<53 - 1

// shareOp is one op of a POST to a carrier (PROTOCOL.md section 16).
type shareOp struct {
	kind   shareOpKind
	sub    uint64
	method string
	target string
	body   string
}

// parseShareOps parses the body of a POST to a carrier: a JSON array of
// ops, each an array. Anything else, an unknown op included, is an error:
// a client that sends what it does not mean is told so.
func parseShareOps(body []byte) ([]shareOp, error) {
	var raw []json.RawMessage
	if err := strictJSON(body, &raw); err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, errors.New("not an array of ops")
	}
	if len(raw) > shareMaxOps {
		return nil, fmt.Errorf("%d ops, more than %d", len(raw), shareMaxOps)
	}
	ops := make([]shareOp, 0, len(raw))
	for i, r := range raw {
		op, err := parseShareOp(r)
		if err != nil {
			return nil, fmt.Errorf("op %d: %w", i, err)
		}
		ops = append(ops, op)
	}
	return ops, nil
}

func parseShareOp(r json.RawMessage) (shareOp, error) {
	var f []json.RawMessage
	if err := strictJSON(r, &f); err != nil || len(f) < 2 {
		return shareOp{}, errors.New("not an array of a number and a kind")
	}
	var op shareOp
	var kind string
	if err := strictJSON(f[0], &op.sub); err != nil || op.sub > maxSafe {
		return op, errors.New("the sub-request number is not an integer from 0 to 2^53-1")
	}
	if err := strictJSON(f[1], &kind); err != nil {
		return op, errors.New("the kind is not a string")
	}
	var args []*string
	switch kind {
	case "p":
		op.kind = shareOpPing
	case "x":
		op.kind = shareOpAbort
	case http.MethodGet:
		args = []*string{&op.target}
	case http.MethodPost:
		args = []*string{&op.target, &op.body}
	default:
		return op, fmt.Errorf("unknown kind %q", kind)
	}
	if op.method = kind; op.kind == shareOpPing != (op.sub == 0) {
		return op, errors.New("a ping is numbered 0, and nothing else is")
	}
	if len(f) != 2+len(args) {
		return op, fmt.Errorf("%q takes %d values, not %d", kind, len(args), len(f)-2)
	}
	for i, a := range args {
		if err := strictJSON(f[2+i], a); err != nil {
			return op, fmt.Errorf("value %d is not a string", 2+i)
		}
	}
	if op.kind == shareOpStart && (op.target == "" || len(op.target) > shareMaxTarget) {
		return op, fmt.Errorf("the target must be 1 to %d bytes", shareMaxTarget)
	}
	return op, nil
}

// strictJSON decodes data into v, which must take all of it: a number
// into an integer must be one, a string must be a string.
func strictJSON(data []byte, v any) error {
	if string(bytes.TrimSpace(data)) == "null" {
		return errors.New("null")
	}
	d := json.NewDecoder(bytes.NewReader(data))
	if err := d.Decode(v); err != nil {
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		return errors.New("trailing data")
	}
	return nil
}
