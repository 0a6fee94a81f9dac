package transport

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// addGoldenSeeds seeds f with the wire bytes of every golden vector.
func addGoldenSeeds(f *testing.F) {
	g := loadGolden(f)
	for _, v := range g.Valid {
		f.Add([]byte(v.Wire))
	}
	for _, v := range g.Invalid {
		f.Add([]byte(v.Wire))
	}
}

// checkDecodeError fails unless err is one of the two decoding errors, so
// that every failure maps to a close code.
func checkDecodeError(t *testing.T, in []byte, err error) {
	t.Helper()
	if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrInvalidUTF8) {
		t.Fatalf("decoding %q: error %v is neither ErrMalformed nor ErrInvalidUTF8", in, err)
	}
}

// checkReencode encodes a decoded frame and decodes it again: the result
// must be the same frame, on one line, in canonical form.
func checkReencode(t *testing.T, in []byte, f *Frame) {
	t.Helper()
	enc := AppendFrame(nil, f)
	checkOneLine(t, enc)
	var again Frame
	if err := DecodeFrame(enc, &again); err != nil {
		t.Fatalf("%q decodes to %+v, whose encoding %q does not decode: %v", in, f, enc, err)
	}
	if !equalFrames(&again, f) {
		t.Fatalf("%q decodes to %+v, but its encoding %q decodes to %+v", in, f, enc, again)
	}
	if enc2 := AppendFrame(nil, &again); !bytes.Equal(enc2, enc) {
		t.Fatalf("encoding is not canonical: %q then %q", enc, enc2)
	}
}

// checkAgainstJSON decodes in with encoding/json, whose string decoding
// is independent of ours: a frame DecodeFrame accepts is a JSON array of
// the same values.
func checkAgainstJSON(t *testing.T, in []byte, f *Frame) {
	t.Helper()
	var got []any
	if err := json.Unmarshal(in, &got); err != nil {
		t.Fatalf("%q decodes to %+v but is not JSON: %v", in, f, err)
	}
	want := jsonValues(f)
	if f.Type == TypeBinary && len(got) == len(want) {
		// Compare bytes, not base64 text: non-zero pad bits ("AB==") are
		// accepted and decode like canonical ones.
		if s, ok := got[2].(string); ok {
			if p, err := base64.StdEncoding.DecodeString(s); err == nil && bytes.Equal(p, f.Payload) {
				got[2] = want[2]
			}
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q decodes to %+v, but encoding/json reads %#v", in, f, got)
	}
}

// jsonValues is what encoding/json decodes f's wire form to.
func jsonValues(f *Frame) []any {
	n := func(v uint64) any { return float64(v) }
	position := func(vs ...any) []any {
		if f.Topic == "" {
			return vs
		}
		return append(vs, f.Topic, f.Epoch, n(f.Offset))
	}
	switch f.Type {
	case TypeOpen:
		return []any{"o", n(f.Attempt), n(f.Ack), f.Token, n(f.Interval)}
	case TypeText:
		return position("m", n(f.Seq), string(f.Payload))
	case TypeBinary:
		return position("b", n(f.Seq), base64.StdEncoding.EncodeToString(f.Payload))
	case TypeSubscribed:
		rec := 0.0
		if f.Recovered {
			rec = 1
		}
		return append(position("y", n(f.Seq)), rec)
	case TypeAck:
		return []any{"a", n(f.Ack)}
	case TypeProbe:
		return []any{"p", n(f.Attempt), f.Token}
	case TypeEcho, TypeTicket:
		return []any{string(rune(f.Type)), f.Token}
	case TypeCommit:
		return []any{"u", n(f.Attempt)}
	case TypeClose:
		return []any{"c", n(f.Seq), float64(f.Code), f.Reason, n(f.Retry)}
	case TypeKey:
		want := 0.0
		if f.WantTicket {
			want = 1
		}
		return []any{"k", f.Token, n(f.Ack), want}
	}
	return []any{string(rune(f.Type))}
}

func FuzzDecodeFrame(f *testing.F) {
	addGoldenSeeds(f)
	f.Add([]byte(`["m",1,"\ud83d\ude00\u2028\n"]`))
	f.Add([]byte(`["b",1,"AAEC/w=="]`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var fr Frame
		if err := DecodeFrame(in, &fr); err != nil {
			checkDecodeError(t, in, err)
			return
		}
		checkReencode(t, in, &fr)
		checkAgainstJSON(t, in, &fr)
	})
}

func FuzzDecodeBatch(f *testing.F) {
	g := loadGolden(f)
	var all []byte
	for _, v := range g.Valid {
		all = append(append(all, v.Wire...), '\n')
	}
	f.Add(all)
	f.Add([]byte("\n  \n[\"h\"]\n\n[\"a\",3]"))
	f.Add([]byte("[\"o\",1,0,\"t\",25000]\n[\"m\",1,\"x\"]\n[\"x\"]\n"))
	f.Add([]byte("[\"k\",\"s\",0,1]\r\n[\"u\",2]\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		frames, err := DecodeBatch(in)
		if err != nil {
			checkDecodeError(t, in, err)
			if frames != nil {
				t.Fatalf("DecodeBatch(%q) returned frames with its error", in)
			}
			return
		}
		lines := 0
		for line := range bytes.SplitSeq(in, []byte{'\n'}) {
			if !isPadding(line) {
				lines++
			}
		}
		if len(frames) != lines {
			t.Fatalf("DecodeBatch(%q) = %d frames from %d lines", in, len(frames), lines)
		}
		var b Batch
		for i := range frames {
			checkReencode(t, in, &frames[i])
			b.Append(&frames[i])
		}
		again, err := DecodeBatch(b.Bytes)
		if err != nil || len(again) != len(frames) {
			t.Fatalf("re-encoded batch %q: %d frames, %v", b.Bytes, len(again), err)
		}
	})
}

func FuzzParseNegotiateResponse(f *testing.F) {
	f.Add([]byte(negotiateBody))
	f.Add([]byte(`{"url":"https://eu.example.com/comet","token":"abc"}`))
	f.Add([]byte(`{"url":"/relative"}`))
	f.Add([]byte(`{"url":"http://:"}`))
	f.Add([]byte(`{"v":1,"sid":"s","secret":"k","tickets":["t"],"transports":["longpoll"],"heartbeat":1,"hold":1,"grace":1,"maxMessage":1,"maxBatch":70,"windowMessages":1,"windowBytes":1}`))
	f.Add([]byte(`{"code":"overloaded","message":"session cap reached"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseNegotiateResponse(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseNegotiateResponse(%q): %v is not ErrMalformed", body, err)
			}
			return
		}
		if r.URL != "" {
			u, err := url.Parse(r.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
				t.Fatalf("accepted a redirect to %q", r.URL)
			}
		} else if r.Version != Version || r.SessionID == "" || r.Secret == "" || len(r.Tickets) == 0 ||
			len(r.Transports) == 0 || r.Heartbeat <= 0 || r.MaxBatch <= 0 {
			t.Fatalf("accepted an incomplete response %+v", r)
		}
		// What was accepted survives the server's encoding.
		enc, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseNegotiateResponse(enc); err != nil {
			t.Fatalf("%q was accepted, its re-encoding %s is not: %v", body, enc, err)
		}
	})
}

func FuzzParseAttach(f *testing.F) {
	f.Add("v=1&s=6f1c0a7e&t=Yz8w&a=3&ack=17&d=1&hb=1000&why=ws_silent&z=abc")
	f.Add("s=S&t=T&a=0")
	f.Add("s=S&t=T&a=1&d=0&ack=9007199254740991")
	f.Add("s=S&t=T&a=9007199254740992")
	f.Add("s=S&s=R&t=T&a=1&d=2")
	f.Add("s=%zz&t=T&a=1")
	f.Add("s=S&t=T&a=1&why=" + strings.Repeat("x", 65))
	f.Fuzz(func(t *testing.T, query string) {
		// ParseQuery keeps what it could parse along with its error, as a
		// server sees it from Request.URL.Query.
		q, _ := url.ParseQuery(query)
		p, err := ParseAttach(q)
		if err != nil {
			if !errors.Is(err, errBadParams) {
				t.Fatalf("ParseAttach(%q): %v is not errBadParams", query, err)
			}
			return
		}
		if p.Session == "" || p.Ticket == "" || len(p.Reason) > 64 ||
			p.Attempt > maxSafeInteger || p.Ack > maxSafeInteger || p.Heartbeat > maxSafeInteger {
			t.Fatalf("ParseAttach(%q) accepted %+v", query, p)
		}
		enc := url.Values{}
		p.Encode(enc)
		again, err := ParseAttach(enc)
		if err != nil || !reflect.DeepEqual(again, p) {
			t.Fatalf("ParseAttach(%q) = %+v, but its encoding %s gives %+v, %v", query, p, enc.Encode(), again, err)
		}
	})
}

func FuzzParseNegotiatingAttach(f *testing.F) {
	f.Add(`v=1&a=1&d=1&z=abc&n=%7B%22transports%22%3A%5B%22websocket%22%5D%2C%22binary%22%3Atrue%7D`)
	f.Add(`a=1&n=`)
	f.Add(`a=1&n=%7B`)
	f.Add(`a=1&s=S&t=T&n=%7B%7D`)
	f.Add(`a=1&n=%7B%22protocols%22%3A%5B1%5D%7D`)
	f.Add(`a=1&hb=5&n=` + strings.Repeat("x", 4097))
	f.Fuzz(func(t *testing.T, query string) {
		q, _ := url.ParseQuery(query)
		p, nr, err := ParseNegotiatingAttach(q)
		if err != nil {
			if !errors.Is(err, errBadParams) {
				t.Fatalf("ParseNegotiatingAttach(%q): %v is not errBadParams", query, err)
			}
			return
		}
		if q.Has("s") || q.Has("t") || len(q.Get("n")) > MaxNegotiateBody || len(p.Reason) > 64 ||
			p.Attempt > maxSafeInteger || p.Ack > maxSafeInteger || p.Heartbeat > maxSafeInteger {
			t.Fatalf("ParseNegotiatingAttach(%q) accepted %+v", query, p)
		}
		// The parameters it took are what an attach takes.
		enc := url.Values{}
		p.Session, p.Ticket = "S", "T"
		p.Encode(enc)
		if again, err := ParseAttach(enc); err != nil || !reflect.DeepEqual(again, p) {
			t.Fatalf("ParseNegotiatingAttach(%q) = %+v, which ParseAttach reads back as %+v, %v", query, p, again, err)
		}
		if n := q.Get("n"); n != "" && !json.Valid([]byte(n)) {
			t.Fatalf("ParseNegotiatingAttach(%q) took n, not JSON, as %+v", query, nr)
		}
	})
}
