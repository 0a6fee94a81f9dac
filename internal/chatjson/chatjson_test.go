package chatjson

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestDoc checks what the benchmarks rely on: the same bytes for the same
// index, valid JSON, and sizes from about 1 to 4 KiB.
func TestDoc(t *testing.T) {
	total := 0
	for i := range 500 {
		d := Doc(i)
		if !bytes.Equal(d, Doc(i)) {
			t.Fatalf("Doc(%d) differs between calls", i)
		}
		if !json.Valid(d) {
			t.Fatalf("Doc(%d) is not JSON: %s", i, d)
		}
		if len(d) < 700 || len(d) > 4<<10 {
			t.Fatalf("Doc(%d) has %d bytes, want about 1 to 4 KiB", i, len(d))
		}
		total += len(d)
	}
	t.Logf("mean %d bytes", total/500)
}
