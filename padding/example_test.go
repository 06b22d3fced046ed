package padding_test

import (
	"fmt"
	"math/bits"

	"github.com/bip324pt/bip324-pt/padding"
)

// Example_usage draws garbage lengths and garbage the way a profile would:
// the shape from a bridge's seed, the samples from a per-connection seed.
func Example_usage() {
	var bridgeSeed, connSeed [32]byte // from crypto/rand in real use
	bridgeSeed[0], connSeed[0] = 1, 2

	lengths, err := padding.NewWeighted(bridgeSeed, 0, 4095, 0)
	if err != nil {
		panic(err)
	}
	r := padding.NewRand(connSeed)

	n := lengths.Sample(r)
	garbage := make([]byte, n)
	padding.LowPopcountFiller{}.Fill(r, garbage)

	ones := 0
	for _, b := range garbage {
		ones += bits.OnesCount8(b)
	}
	lo, hi := lengths.Bounds()
	fmt.Println(lengths)
	fmt.Println(lo >= 0 && hi <= 4095, n >= lo && n <= hi)
	fmt.Println(n == 0 || float64(ones)/float64(n) < 3.4)
	// Output:
	// weighted(0,4095,100)
	// true true
	// true
}
