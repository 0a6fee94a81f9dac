package transport

import "testing"

func TestDeflateLevel(t *testing.T) {
	tests := []struct {
		name string
		c    *Compression
		want int
	}{
		{"nil: off", nil, 0},
		{"zero: fastest", &Compression{}, 1},
		{"in range", &Compression{Level: 6}, 6},
		{"best", &Compression{Level: 9}, 9},
		{"below", &Compression{Level: -2}, 1},
		{"above", &Compression{Level: 12}, 9},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.c.DeflateLevel(); got != tc.want {
				t.Errorf("DeflateLevel() = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestCarriesCredential(t *testing.T) {
	for _, typ := range []Type{TypeOpen, TypeText, TypeBinary, TypeAck, TypeHeartbeat, TypeProbe, TypeEcho,
		TypeCommit, TypeSuperseded, TypeClose, TypeKey, TypeTicket} {
		want := typ == TypeOpen || typ == TypeKey || typ == TypeTicket
		if got := typ.CarriesCredential(); got != want {
			t.Errorf("%s: CarriesCredential() = %v, want %v", typ, got, want)
		}
	}
}
