package v2core

import (
	"math/rand/v2"
)

// testRand is a seeded io.Reader for repeatable keys and garbage in tests.
type testRand struct{ r *rand.ChaCha8 }

func newTestRand(seed uint64) *testRand {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return &testRand{rand.NewChaCha8(s)}
}

func (t *testRand) Read(p []byte) (int, error) { return t.r.Read(p) }
