package padding

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
)

// Limits of the weighted and empirical distributions.
const (
	// DefaultBins is the bins value [NewWeighted] uses when given 0. It is
	// obfs4's maxValues.
	DefaultBins = 100
	// MaxBins is the largest bins value [NewWeighted] accepts.
	MaxBins = 1 << 12
	// MaxEmpiricalSizes is the most sizes [NewEmpirical] accepts. The table
	// it builds holds each distinct size once, so it stays small even
	// when the input is long.
	MaxEmpiricalSizes = 1 << 24

	// maxWeight bounds the weight the seed gives a bin. Weights are
	// integers in [1, maxWeight], so no bin is dropped, and the heaviest
	// is at most maxWeight times as likely as the lightest.
	maxWeight = 1 << 16
)

// weightedLabel separates the weighted shape's random stream from any
// other use of the same seed, such as [NewRand]. Changing it changes
// every bridge's shape.
const weightedLabel = "bip324-pt padding weighted v1\x00"

// ErrNoSizes is returned by [NewEmpirical] for an empty list.
var ErrNoSizes = errors.New("padding: empirical: no sizes")

// aliasTable samples from a finite set of values with integer weights in
// O(1) by Vose's alias method. Column i of k is chosen uniformly; then a
// draw u in [0, total) picks values[i] when u < cut[i], and
// values[alias[i]] otherwise. Value j has probability exactly
// weight[j]/sum(weights): each column holds total units of mass, and value
// j owns weight[j]·k units of the k·total, spread over its own column and
// the columns that alias it.
type aliasTable struct {
	values []int
	cut    []uint64
	alias  []int32
	total  uint64 // sum of the weights: the mass of one column
}

// newAliasTable builds the table. The caller guarantees len(values) ==
// len(weights) > 0, every weight > 0, and sum(weights)·len(weights) <
// 2^63.
func newAliasTable(values []int, weights []uint64) aliasTable {
	k := len(values)
	t := aliasTable{
		values: values,
		cut:    make([]uint64, k),
		alias:  make([]int32, k),
	}
	for _, w := range weights {
		t.total += w
	}
	// mass[i] is what value i still has to place, in units where a column
	// holds total.
	mass := make([]uint64, k)
	var small, large []int32
	for i, w := range weights {
		mass[i] = w * uint64(k)
		if mass[i] < t.total {
			small = append(small, int32(i))
		} else {
			large = append(large, int32(i))
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s := small[len(small)-1]
		small = small[:len(small)-1]
		l := large[len(large)-1]
		// Column s keeps its own mass and lends the rest of itself to l.
		t.cut[s] = mass[s]
		t.alias[s] = l
		mass[l] -= t.total - mass[s]
		if mass[l] < t.total {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	// What remains holds exactly one column's mass each: the sums are
	// exact integers, so unlike the floating-point form nothing is left
	// over from rounding.
	for _, i := range large {
		t.cut[i] = t.total
		t.alias[i] = i
	}
	for _, i := range small { // unreachable with exact arithmetic
		t.cut[i] = t.total
		t.alias[i] = i
	}
	return t
}

func (t *aliasTable) sample(r *rand.Rand) int {
	i := r.IntN(len(t.values))
	if r.Uint64N(t.total) < t.cut[i] {
		return t.values[i]
	}
	return t.values[t.alias[i]]
}

type weighted struct {
	table           aliasTable
	min, max, bins  int
	lowest, highest int
}

// NewWeighted returns an obfs4-style weighted distribution over
// [min, max] whose shape comes from seed.
//
// The seed, through a ChaCha8 stream of its own (seed and a fixed label
// hashed with SHA-256, so that the same seed handed to [NewRand] gives
// unrelated samples), picks a number of bins k between ⌈bins/2⌉ and bins
// (at most max-min+1), then k distinct values in [min, max], then an
// integer weight in [1, 65536] for each. Samples take value i with
// probability weight_i/Σweight.
//
// Unlike obfs4, which picks between 1 and 100 values, k never falls below
// half of bins: a seed that left one or two values would make every
// packet of a bridge the same length.
//
// bins 0 means [DefaultBins]. It fails unless 0 <= min <= max <= MaxSize
// and 0 <= bins <= MaxBins.
//
// NOTE: two distributions built from one seed and the same parameters are
// identical; derive a seed per use.
func NewWeighted(seed [32]byte, min, max, bins int) (Dist, error) {
	if err := checkRange("weighted", min, max); err != nil {
		return nil, err
	}
	if bins < 0 || bins > MaxBins {
		return nil, &RangeError{"weighted", "bins", fmt.Sprint(bins), fmt.Sprintf("0..%d", MaxBins)}
	}
	if bins == 0 {
		bins = DefaultBins
	}
	values, weights := weightedShape(seed, min, max, bins)
	w := &weighted{
		table:   newAliasTable(values, weights),
		min:     min,
		max:     max,
		bins:    bins,
		lowest:  slices.Min(values),
		highest: slices.Max(values),
	}
	return w, nil
}

// weightedShape derives the values and weights of [NewWeighted] from the
// seed. Its parameters are already validated, bins already defaulted.
func weightedShape(seed [32]byte, min, max, bins int) ([]int, []uint64) {
	h := sha256.New()
	h.Write([]byte(weightedLabel))
	h.Write(seed[:])
	var shapeSeed [32]byte
	h.Sum(shapeSeed[:0])
	rng := NewRand(shapeSeed)

	span := max - min + 1
	k := (bins+1)/2 + rng.IntN(bins-(bins+1)/2+1)
	if k > span {
		k = span
	}
	values := pickDistinct(rng, span, k)
	weights := make([]uint64, k)
	for i := range values {
		values[i] += min
		weights[i] = 1 + rng.Uint64N(maxWeight)
	}
	return values, weights
}

// pickDistinct returns k distinct integers from [0, n) in the order Robert
// Floyd's algorithm inserts them (Bentley, "Programming Pearls: A sample
// of brilliance", CACM 30(9), 1987). It needs memory for k values only,
// however large n is.
func pickDistinct(r *rand.Rand, n, k int) []int {
	out := make([]int, 0, k)
	seen := make(map[int]struct{}, k)
	for j := n - k; j < n; j++ {
		t := r.IntN(j + 1)
		if _, dup := seen[t]; dup {
			t = j
		}
		seen[t] = struct{}{}
		out = append(out, t)
	}
	return out
}

func (w *weighted) Sample(r *rand.Rand) int { return w.table.sample(r) }
func (w *weighted) Bounds() (min, max int)  { return w.lowest, w.highest }
func (w *weighted) String() string {
	return fmt.Sprintf("weighted(%d,%d,%d)", w.min, w.max, w.bins)
}

type empirical struct {
	table aliasTable
	n     int
}

// NewEmpirical returns the distribution that draws one of sizes, each
// distinct size with the frequency it has in the list: the empirical
// distribution of an observed sample, such as the sizes column of a
// trace. The list is not retained.
//
// It fails if sizes is empty or longer than [MaxEmpiricalSizes], or if a
// size lies outside [0, MaxSize] (the error names the first such index).
func NewEmpirical(sizes []int) (Dist, error) {
	if len(sizes) == 0 {
		return nil, ErrNoSizes
	}
	if len(sizes) > MaxEmpiricalSizes {
		return nil, &RangeError{"empirical", "len(sizes)", fmt.Sprint(len(sizes)), fmt.Sprintf("1..%d", MaxEmpiricalSizes)}
	}
	for i, s := range sizes {
		if s < 0 || s > MaxSize {
			return nil, &RangeError{"empirical", fmt.Sprintf("sizes[%d]", i), fmt.Sprint(s), fmt.Sprintf("0..%d", MaxSize)}
		}
	}
	sorted := slices.Clone(sizes)
	slices.Sort(sorted)
	var values []int
	var counts []uint64
	for _, s := range sorted {
		if n := len(values); n > 0 && values[n-1] == s {
			counts[n-1]++
			continue
		}
		values = append(values, s)
		counts = append(counts, 1)
	}
	// values was grown by append; trim the spare capacity the table would
	// otherwise keep alive.
	values = slices.Clip(values)
	return &empirical{table: newAliasTable(values, counts), n: len(sizes)}, nil
}

func (e *empirical) Sample(r *rand.Rand) int { return e.table.sample(r) }
func (e *empirical) Bounds() (min, max int) {
	return e.table.values[0], e.table.values[len(e.table.values)-1]
}

func (e *empirical) String() string {
	lo, hi := e.Bounds()
	return fmt.Sprintf("empirical(n=%d,distinct=%d,%d..%d)", e.n, len(e.table.values), lo, hi)
}
