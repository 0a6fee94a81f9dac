package session

import (
	"encoding/json"
	"os"
	"testing"
)

// shareVectors is testdata/share.json (PROTOCOL.md section 12).
type shareVectors struct {
	Frames []struct {
		Name  string
		Wire  string
		Frame struct {
			N, Sub uint64
			Kind   string
			Status int
			Text   string
		}
	}
	Ops struct {
		Valid []struct {
			Name string
			Wire string
			Ops  []struct {
				Sub                uint64
				Kind, Target, Body string
			}
		}
		Invalid []struct{ Name, Wire string }
	}
}

// TestShareGolden checks the server's carrier frames and its parser of
// ops against the golden vectors the browser shim reads too.
func TestShareGolden(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../testdata/share.json")
	if err != nil {
		t.Fatal(err)
	}
	var v shareVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	for _, f := range v.Frames {
		var got []byte
		switch fr := f.Frame; fr.Kind {
		case "h":
			got = carrierFrame(fr.N, fr.Sub, fr.Kind, fr.Status)
		case "d":
			got = partFrame(fr.N, fr.Sub, fr.Text)
		default:
			got = carrierFrame(fr.N, fr.Sub, fr.Kind)
		}
		if string(got) != f.Wire+"\n" {
			t.Errorf("%s: encoded %q, want %q", f.Name, got, f.Wire)
		}
	}
	kinds := map[shareOpKind]string{shareOpPing: "p", shareOpAbort: "x"}
	for _, vec := range v.Ops.Valid {
		ops, err := parseShareOps([]byte(vec.Wire))
		if err != nil || len(ops) != len(vec.Ops) {
			t.Errorf("%s: %+v, %v; want %d ops", vec.Name, ops, err, len(vec.Ops))
			continue
		}
		for i, op := range ops {
			want, kind := vec.Ops[i], kinds[op.kind]
			if kind == "" {
				kind = op.method
			}
			if op.sub != want.Sub || kind != want.Kind || op.target != want.Target || op.body != want.Body {
				t.Errorf("%s: op %d = %+v, want %+v", vec.Name, i, op, want)
			}
		}
	}
	for _, vec := range v.Ops.Invalid {
		if ops, err := parseShareOps([]byte(vec.Wire)); err == nil {
			t.Errorf("%s: %q parsed as %+v", vec.Name, vec.Wire, ops)
		}
	}
}
