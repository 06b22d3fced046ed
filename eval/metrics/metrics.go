package metrics

import (
	"math"
	"slices"
	"time"

	"gonum.org/v1/gonum/stat"
)

// Goodput is application bytes per second over d: bytes/d. It is NaN if
// d <= 0.
func Goodput(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return math.NaN()
	}
	return float64(bytes) / d.Seconds()
}

// Overhead is wire bytes over application bytes, minus 1: wire/data − 1,
// so 0.25 means 25 % extra on the wire. It is NaN when data == 0.
func Overhead(wire, data int64) float64 {
	if data == 0 {
		return math.NaN()
	}
	return float64(wire)/float64(data) - 1
}

// DecoyShare is the share of the wire that decoy packets take:
// decoy/wire, in 0..1 when 0 <= decoy <= wire. It is NaN when wire == 0.
func DecoyShare(decoy, wire int64) float64 {
	if wire == 0 {
		return math.NaN()
	}
	return float64(decoy) / float64(wire)
}

// Seconds converts durations to seconds, one value for each; nil for an
// empty ds.
func Seconds(ds []time.Duration) []float64 {
	if len(ds) == 0 {
		return nil
	}
	s := make([]float64, len(ds))
	for i, d := range ds {
		s[i] = d.Seconds()
	}
	return s
}

// Quantile is the q-quantile of xs by linear interpolation between the
// order statistics at h = (n−1)·q (Hyndman and Fan's definition 7, the
// default of R and NumPy; see the package doc): the median of {1, 2, 3}
// is 2 and of {1, 2, 3, 4} is 2.5. It is NaN if xs is empty, q is outside
// [0, 1] or xs holds a NaN. It sorts a copy of xs.
func Quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 || !(q >= 0 && q <= 1) || slices.ContainsFunc(xs, math.IsNaN) {
		return math.NaN()
	}
	// gonum's stat.Quantile with LinInterp is definition 4, which puts
	// x(k) at k/n: its median of {1, 2, 3} is 1.5, not what a reader of
	// a "p50" expects.
	s := sorted(xs)
	h := q * float64(len(s)-1)
	k := int(h) // h >= 0, so this is ⌊h⌋
	f := h - float64(k)
	if f == 0 {
		return s[k]
	}
	return s[k] + f*(s[k+1]-s[k])
}

// CV is the coefficient of variation of xs: the population standard
// deviation over the mean. It is NaN if xs is empty or its mean is 0.
func CV(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	mean, std := stat.PopMeanStdDev(xs, nil)
	if mean == 0 {
		return math.NaN()
	}
	return std / mean
}

// KS is the two-sample Kolmogorov–Smirnov statistic of a and b,
// sup |F_a − F_b| over the line, in 0..1. It is NaN if either is empty or
// holds a NaN. It sorts copies of a and b.
func KS(a, b []float64) float64 {
	if len(a) == 0 || len(b) == 0 {
		return math.NaN()
	}
	return stat.KolmogorovSmirnov(sorted(a), nil, sorted(b), nil)
}

// Wasserstein1 is the 1-Wasserstein (earth mover's) distance between the
// empirical distributions of a and b: the integral of |F_a − F_b| over
// the line, in the unit of the samples. It is NaN if either is empty or
// holds a value that is NaN or infinite. It sorts copies of a and b.
func Wasserstein1(a, b []float64) float64 {
	if len(a) == 0 || len(b) == 0 || !allFinite(a) || !allFinite(b) {
		return math.NaN()
	}
	sa, sb := sorted(a), sorted(b)
	na, nb := len(sa), len(sb)
	// Between consecutive points of the merged samples both CDFs are
	// constant: F_a = i/na and F_b = j/nb, where i and j count the values
	// passed so far. |i/na − j/nb| = |i·nb − j·na| / (na·nb); the integer
	// numerator is exact, and the division is done once at the end.
	var sum float64
	i, j := 0, 0
	prev := min(sa[0], sb[0])
	for i < na || j < nb {
		x := math.Inf(1)
		if i < na {
			x = sa[i]
		}
		if j < nb {
			x = min(x, sb[j])
		}
		sum += float64(abs(i*nb-j*na)) * (x - prev)
		for i < na && sa[i] == x {
			i++
		}
		for j < nb && sb[j] == x {
			j++
		}
		prev = x
	}
	return sum / (float64(na) * float64(nb))
}

func sorted(xs []float64) []float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s
}

func allFinite(xs []float64) bool {
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
