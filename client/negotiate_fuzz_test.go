package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/seed-544bbf9f/comet/transport"
)

// scriptedResponse is one negotiate answer of a fuzz input.
type scriptedResponse struct {
	status int
	body   []byte
}

// scripted is an http.RoundTripper, with no sockets, that answers the
// i-th request with the i-th response of its script, and with the last
// one once the script runs out, and records the requests.
type scripted struct {
	script   []scriptedResponse
	requests []*http.Request
}

func (s *scripted) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	s.requests = append(s.requests, r)
	a := s.response(len(s.requests) - 1)
	return &http.Response{
		Status:     strconv.Itoa(a.status) + " " + http.StatusText(a.status),
		StatusCode: a.status,
		Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		// No Location: http.Client follows no HTTP redirect, only the
		// protocol's own (PROTOCOL.md section 3) are under test.
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(bytes.NewReader(a.body)),
		ContentLength: int64(len(a.body)),
		Request:       r,
	}, nil
}

func (s *scripted) response(i int) scriptedResponse { return s.script[min(i, len(s.script)-1)] }

// parseScript reads a fuzz input as negotiate answers separated by NUL
// bytes, each an optional status ("302 ", 100 to 599; 200 if absent) and
// a body.
func parseScript(in []byte) []scriptedResponse {
	var script []scriptedResponse
	for part := range bytes.SplitSeq(in, []byte{0}) {
		r := scriptedResponse{status: http.StatusOK, body: part}
		if len(part) >= 4 && part[3] == ' ' && '1' <= part[0] && part[0] <= '5' {
			if n, err := strconv.Atoi(string(part[:3])); err == nil {
				r = scriptedResponse{status: n, body: part[4:]}
			}
		}
		script = append(script, r)
	}
	return script
}

// FuzzNegotiate runs the client's negotiate against scripted answers:
// statuses, bodies and chains of redirects. Replaying the script as
// PROTOCOL.md section 3 reads, every request must have gone where the
// redirect before it said, with its token and the application's headers;
// it must stop at the first refusal, malformed body or session, and after
// maxRedirects redirects at most; it returns a session exactly when the
// last answer is one, and an error otherwise, never both nor neither.
func FuzzNegotiate(f *testing.F) {
	session, err := json.Marshal(testNegotiate())
	if err != nil {
		f.Fatal(err)
	}
	redirect := func(u, token string) string {
		b, _ := json.Marshal(transport.NegotiateResponse{Version: 1, URL: u, Token: token})
		return string(b)
	}
	for _, seed := range []string{
		string(session),
		redirect("https://eu.example/comet", "tok") + "\x00" + string(session),
		redirect("https://other.example:8080/a/b/", "") + "\x00" + redirect("https://app.example/c?x=1#f", "t2") + "\x00" + string(session),
		redirect("http://plain.example/comet", "") + "\x00" + string(session),
		redirect("https://app.example/again", "loop"),
		redirect("ws://app.example/comet", "x") + "\x00" + string(session),
		`{"url":"javascript:alert(1)"}`,
		`{"url":"/relative","token":"t"}`,
		`{"url":"https://u:p@evil.example/%2e%2e/x"}` + "\x00" + string(session),
		"503 " + `{"code":"overloaded","message":"no"}`,
		redirect("https://eu.example/comet", "tok") + "\x00403 " + `{"code":"forbidden","message":"no"}`,
		"302 ",
		"200 null",
		`{"v":2}`,
	} {
		f.Add([]byte(seed))
	}
	header := http.Header{"X-App": {"app-token"}}
	f.Fuzz(func(t *testing.T, in []byte) {
		rt := &scripted{script: parseScript(in)}
		base, err := parseMountURL("https://app.example/comet")
		if err != nil {
			t.Fatal(err)
		}
		neg, got, _, err := negotiate(context.Background(), &http.Client{Transport: rt}, base, header,
			transport.NegotiateRequest{Transports: []string{transport.LongPoll}})
		if (err == nil) != (neg != nil && got != nil) || err != nil && (neg != nil || got != nil) {
			t.Fatalf("negotiate = %+v, %v, %v: a session and a mount URL, or an error", neg, got, err)
		}
		if n := len(rt.requests); n == 0 || n > maxRedirects+1 {
			t.Fatalf("negotiate made %d requests; at most %d redirects are followed", n, maxRedirects)
		}

		mount, token := base, ""
		for i, req := range rt.requests {
			checkNegotiateRequest(t, i, req, mount, token, header)
			last := i == len(rt.requests)-1
			a := rt.response(i)
			var why string // what the client must make of answer i, if it is the last
			r, perr := transport.ParseNegotiateResponse(a.body)
			switch {
			case len(a.body) > maxResponse:
				why = "an error: too long"
			case a.status != http.StatusOK:
				var he *transport.HTTPError
				if !errors.As(err, &he) || he.Status != a.status {
					t.Fatalf("answer %d is HTTP %d; negotiate returned %v", i, a.status, err)
				}
				why = "the refusal"
			case perr != nil:
				if !errors.Is(err, transport.ErrMalformed) {
					t.Fatalf("answer %d %q is malformed (%v); negotiate returned %v", i, a.body, perr, err)
				}
				why = "malformed"
			case r.URL == "":
				if err != nil || !reflect.DeepEqual(neg, r) || got.String() != mount.String() {
					t.Fatalf("answer %d %q is a session at %v; negotiate returned %+v at %v, %v", i, a.body, mount, neg, got, err)
				}
				why = "the session"
			case i == maxRedirects:
				why = "an error: a redirect too many"
			default:
				m, err := parseMountURL(r.URL)
				if err != nil {
					t.Fatalf("redirect %q was accepted, yet is no mount URL: %v", r.URL, err)
				}
				if mount.Scheme == "https" && m.Scheme != "https" {
					// A downgrade to plain http is refused, never followed.
					if !last || err == nil && neg != nil {
						t.Fatalf("answer %d redirects from https to %q, and negotiate followed it", i, r.URL)
					}
					why = "an error: a downgrade to http"
					break
				}
				if last {
					// Only a URL net/http cannot make a request of ends
					// a chain here.
					if _, rerr := http.NewRequest(http.MethodPost, endpoint(m, "/negotiate", nil), nil); rerr == nil {
						t.Fatalf("answer %d redirects to %q, which negotiate did not follow: %v", i, r.URL, err)
					}
				}
				mount, token = m, r.Token
				continue
			}
			if !last {
				t.Fatalf("answer %d %d %q is %s, yet negotiate went on", i, a.status, a.body, why)
			}
			if why != "the session" && err == nil {
				t.Fatalf("answer %d %d %q is %s, yet negotiate succeeded", i, a.status, a.body, why)
			}
		}
	})
}

// checkNegotiateRequest checks that request i of a negotiate went to
// mount, with the redirect token (none if "") and the application's
// headers.
func checkNegotiateRequest(t *testing.T, i int, req *http.Request, mount *url.URL, token string, header http.Header) {
	t.Helper()
	u := req.URL
	// net/http drops an empty port ("host:"): compare host and port.
	if req.Method != http.MethodPost || u.Scheme != mount.Scheme || u.Hostname() != mount.Hostname() ||
		u.Port() != mount.Port() || u.Path != mount.Path+"/negotiate" {
		t.Fatalf("request %d is %s %v, want POST to %v/negotiate", i, req.Method, u, mount)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Hostname() == "" {
		t.Fatalf("request %d went to %v, not an http(s) URL with a host", i, u)
	}
	if q := u.Query(); q.Get("v") != "1" || q.Get("z") == "" || len(q) != 2 {
		t.Fatalf("request %d has the query %q, want v=1 and z", i, u.RawQuery)
	}
	if got := req.Header.Values(redirectTokenHeader); token == "" && len(got) != 0 || token != "" && !reflect.DeepEqual(got, []string{token}) {
		t.Fatalf("request %d carries the redirect token %q, want %q", i, got, token)
	}
	for k, v := range header {
		if !reflect.DeepEqual(req.Header[k], v) {
			t.Fatalf("request %d carries %s: %q, want %q", i, k, req.Header[k], v)
		}
	}
	if ct := req.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("request %d has Content-Type %q", i, ct)
	}
}
