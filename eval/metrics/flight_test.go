package metrics

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"
)

// seq returns the bytes lo, lo+1, …, hi−1.
func seq(lo, hi int) []byte {
	b := make([]byte, 0, hi-lo)
	for v := lo; v < hi; v++ {
		b = append(b, byte(v))
	}
	return b
}

func TestFET(t *testing.T) {
	// 0x80..0xff: 1 + 3.5 = 4.5 set bits a byte on average (inside
	// 3.4..4.6), none printable, not a TLS or HTTP start: blocked.
	blocked := seq(0x80, 0x100)
	for _, tc := range []struct {
		name          string
		flights       [][]byte
		exempt, total int
	}{
		{"mixed", [][]byte{
			blocked,
			[]byte("GET / HTTP/1.1\r\n"), // printable
			make([]byte, 64),             // zeros: 0 set bits a byte
			blocked,
		}, 2, 4},
		{"empty flight is exempt", [][]byte{{}}, 1, 1},
		{"all blocked", [][]byte{blocked}, 0, 1},
		{"none", nil, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exempt, total := FET(tc.flights)
			if exempt != tc.exempt || total != tc.total {
				t.Errorf("FET = %d of %d, want %d of %d", exempt, total, tc.exempt, tc.total)
			}
		})
	}
}

func TestChiSquareUniform(t *testing.T) {
	twice := append(seq(0, 128), seq(0, 128)...)
	for _, tc := range []struct {
		name    string
		flights [][]byte
		n       int
		stat, p float64
		pTol    float64
	}{
		// Every value once: O = E = 1, stat 0, P(χ² >= 0) = 1.
		{"uniform", [][]byte{seq(0, 256)}, 256, 0, 1, 1e-12},
		// The first 128 bytes of each: 0..127 and 128..255, uniform again;
		// the rest of each flight is cut off.
		{"cut at n", [][]byte{seq(0, 256), append(seq(128, 256), 'A', 'A')}, 128, 0, 1, 1e-12},
		// N = 256, E = 1: 0..127 twice, 128..255 never:
		// 128·(2−1)² + 128·(0−1)² = 256. Wilson–Hilferty,
		// z = ((256/255)^(1/3) − (1 − 2/2295)) / sqrt(2/2295)
		//   = (1.0013055 − 0.9991285) / 0.0295207 = 0.07374,
		// p = 1 − Φ(0.07374) ≈ 0.4706.
		{"half the values", [][]byte{twice}, 1000, 256, 0.4706, 2e-3},
		// N = 256, E = 1, all 'A': (256−1)² + 255·(0−1)² = 65025 + 255.
		{"constant", [][]byte{bytes.Repeat([]byte{'A'}, 256)}, 256, 65280, 0, 1e-300},
		// Short flights give what they have: 2 + 1 bytes, E = 3/256;
		// 0 appears twice, 1 once, 254 values never:
		// (2−E)²/E + (1−E)²/E + 254·E = 256·(4+1)/3 − 2·3 + 3 = 1271/3,
		// far in the tail of χ²₂₅₅ (mean 255, sd sqrt(510) = 22.6): p < 1e-9.
		{"short flights", [][]byte{{0, 1}, {0}}, 10, 1271.0 / 3, 0, 1e-9},
		{"no flights", nil, 16, 0, math.NaN(), 0},
		{"empty flights", [][]byte{{}, nil}, 16, 0, math.NaN(), 0},
		{"n zero", [][]byte{seq(0, 256)}, 0, 0, math.NaN(), 0},
		{"n negative", [][]byte{seq(0, 256)}, -1, 0, math.NaN(), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stat, p := ChiSquareUniform(tc.flights, tc.n)
			if !same(stat, tc.stat, 1e-9) || !same(p, tc.p, tc.pTol) {
				t.Errorf("ChiSquareUniform = %v, %v; want %v, %v", stat, p, tc.stat, tc.p)
			}
		})
	}

	// The documented contrast: random first flights are not rejected,
	// ASCII ones are. 64 flights of 64 bytes, E = 16.
	r := rand.New(rand.NewChaCha8([32]byte{2}))
	random := make([][]byte, 64)
	text := make([][]byte, 64)
	for i := range random {
		random[i] = make([]byte, 64)
		for j := range random[i] {
			random[i][j] = byte(r.Uint32())
		}
		text[i] = []byte("version 70016 services NODE_NETWORK|NODE_WITNESS relay true   ")
	}
	if _, p := ChiSquareUniform(random, 64); p < 1e-3 {
		t.Errorf("random flights: p = %v, want not tiny", p)
	}
	if _, p := ChiSquareUniform(text, 64); p > 1e-12 {
		t.Errorf("ASCII flights: p = %v, want about 0", p)
	}
}
