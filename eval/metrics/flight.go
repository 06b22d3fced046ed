package metrics

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/bip324pt/bip324-pt/eval/fet"
)

// FET applies the fully-encrypted-traffic rule ([fet.Exempt]) to first
// flights: exempt of them pass (an empty flight passes), out of total =
// len(flights).
func FET(flights [][]byte) (exempt, total int) {
	for _, f := range flights {
		if fet.Exempt(f) {
			exempt++
		}
	}
	return exempt, len(flights)
}

// ChiSquareUniform tests the first n bytes of each flight for uniformity:
// it counts the byte values of the first min(n, len(f)) bytes of every
// flight f into one 256-bin histogram and returns Pearson's chi-square
// statistic against the uniform expectation and its upper-tail p-value
// with 255 degrees of freedom. Random bytes give a p that is not tiny,
// ASCII text p ≈ 0. With no bytes at all it returns 0 and NaN.
func ChiSquareUniform(flights [][]byte, n int) (stat, p float64) {
	var count [256]int64
	var total int64
	for _, f := range flights {
		head := f[:max(0, min(n, len(f)))]
		for _, b := range head {
			count[b]++
		}
		total += int64(len(head))
	}
	if total == 0 {
		return 0, math.NaN()
	}
	expected := float64(total) / 256
	for _, c := range count {
		d := float64(c) - expected
		stat += d * d / expected
	}
	return stat, distuv.ChiSquared{K: 255}.Survival(stat)
}
