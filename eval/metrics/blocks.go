package metrics

import (
	"math"
	"slices"
)

// BlockArrivals returns, in increasing order, the seconds i (indexes of
// perSecond, the bytes in each second) whose bytes exceed twice the mean
// of the previous window seconds, perSecond[max(0, i−window) .. i−1]:
// early seconds are judged against what exists before them, second 0 is
// never flagged, and after a silent history any second with bytes is.
// The research it comes from uses window = 60. It returns nil if window
// <= 0 or nothing is flagged.
func BlockArrivals(perSecond []float64, window int) []int {
	if window <= 0 {
		return nil
	}
	var flagged []int
	var sum float64 // of perSecond[max(0, i−window) .. i−1]
	for i, x := range perSecond {
		if i > 0 {
			n := min(i, window)
			// x > 2·sum/n, without the division's rounding.
			if x*float64(n) > 2*sum {
				flagged = append(flagged, i)
			}
		}
		// Byte counts are integers, so the running sum stays exact below
		// 2^53 bytes.
		sum += x
		if i >= window {
			sum -= perSecond[i-window]
		}
	}
	return flagged
}

// DetectionRate is the share of the true event seconds (for example the
// seconds blocks were sent in) that have a detection within ±tol seconds:
// some d in detected with |d − t| <= tol. Each entry of truth counts,
// duplicates included. It is NaN when truth is empty, and 0 when detected
// is empty or tol < 0.
func DetectionRate(detected, truth []int, tol int) float64 {
	if len(truth) == 0 {
		return math.NaN()
	}
	if tol < 0 {
		return 0
	}
	ds := slices.Clone(detected)
	slices.Sort(ds)
	hits := 0
	for _, t := range truth {
		// The first detection at or after t−tol is the one to check.
		k, _ := slices.BinarySearch(ds, t-tol)
		if k < len(ds) && ds[k]-t <= tol {
			hits++
		}
	}
	return float64(hits) / float64(len(truth))
}
