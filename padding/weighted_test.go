package padding

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// slowMass is the reference model of an alias table: for each value, the
// number of (column, u) pairs out of k·total that yield it, counted by
// walking every column. Value j must own exactly weight_j·k of them.
func slowMass(t *aliasTable) map[int]uint64 {
	m := make(map[int]uint64)
	for i := range t.values {
		m[t.values[i]] += t.cut[i]
		m[t.values[t.alias[i]]] += t.total - t.cut[i]
	}
	return m
}

func checkAliasExact(t *testing.T, values []int, weights []uint64) {
	t.Helper()
	tab := newAliasTable(slices.Clone(values), weights)
	want := make(map[int]uint64)
	for i, v := range values {
		want[v] += weights[i] * uint64(len(values))
	}
	got := slowMass(&tab)
	for v, w := range want {
		if got[v] != w {
			t.Fatalf("value %d: mass %d, want %d (weights %v)", v, got[v], w, weights)
		}
	}
	for v, g := range got {
		if g != 0 && want[v] == 0 {
			t.Fatalf("value %d has mass %d but no weight", v, g)
		}
	}
	for i := range tab.cut {
		if tab.cut[i] > tab.total {
			t.Fatalf("cut[%d] = %d > total %d", i, tab.cut[i], tab.total)
		}
	}
}

func TestAliasTable_exact(t *testing.T) {
	checkAliasExact(t, []int{7}, []uint64{3})
	checkAliasExact(t, []int{1, 2}, []uint64{1, 1})
	checkAliasExact(t, []int{1, 2, 3}, []uint64{1, 1, 1000})
	checkAliasExact(t, []int{1, 2, 3, 4}, []uint64{5, 5, 5, 5})
	r := testRand(20)
	for range 300 {
		k := 1 + r.IntN(60)
		values := make([]int, k)
		weights := make([]uint64, k)
		for i := range values {
			values[i] = i * 3
			weights[i] = 1 + r.Uint64N(1<<uint(r.IntN(20)+1))
		}
		checkAliasExact(t, values, weights)
	}
}

// TestAliasTable_sample checks the sampler against the obvious one: draw
// u in [0, Σw) and walk the cumulative weights. The two use randomness
// differently, so they are compared by distribution (KS), not draw by
// draw.
func TestAliasTable_sample(t *testing.T) {
	values := []int{10, 20, 30, 40, 50}
	weights := []uint64{1, 50, 3, 200, 7}
	tab := newAliasTable(slices.Clone(values), weights)
	var total uint64
	for _, w := range weights {
		total += w
	}
	slow := func(r *rand.Rand) int {
		u := r.Uint64N(total)
		for i, w := range weights {
			if u < w {
				return values[i]
			}
			u -= w
		}
		panic("unreachable")
	}
	cdf := func(k int) float64 {
		var c uint64
		for i, v := range values {
			if v <= k {
				c += weights[i]
			}
		}
		return float64(c) / float64(total)
	}
	fast, ref := make([]int, ksN), make([]int, ksN)
	r1, r2 := testRand(21), testRand(22)
	for i := range fast {
		fast[i] = tab.sample(r1)
		ref[i] = slow(r2)
	}
	for name, s := range map[string][]int{"alias": fast, "reference": ref} {
		if D := ksDiscrete(s, cdf); D > ksLimit(ksN) {
			t.Errorf("%s: KS D = %.4f > %.4f", name, D, ksLimit(ksN))
		}
	}
}

func TestNewWeighted_shape(t *testing.T) {
	tests := []struct{ min, max, bins int }{
		{0, 1448, 0},
		{0, 1448, 1},
		{0, 1448, 2},
		{100, 100, 0}, // span 1
		{5, 9, 100},   // span below bins
		{0, MaxSize, MaxBins},
	}
	for _, tt := range tests {
		bins := tt.bins
		if bins == 0 {
			bins = DefaultBins
		}
		for s := range byte(20) {
			seed := [32]byte{s, 1}
			values, weights := weightedShape(seed, tt.min, tt.max, bins)
			k := len(values)
			span := tt.max - tt.min + 1
			if k > bins || k > span || (k < (bins+1)/2 && k < span) {
				t.Fatalf("%+v seed %d: %d bins", tt, s, k)
			}
			sorted := slices.Clone(values)
			slices.Sort(sorted)
			if len(slices.Compact(sorted)) != k {
				t.Fatalf("%+v seed %d: repeated values %v", tt, s, values)
			}
			for i, v := range values {
				if v < tt.min || v > tt.max {
					t.Fatalf("%+v seed %d: value %d out of range", tt, s, v)
				}
				if weights[i] < 1 || weights[i] > maxWeight {
					t.Fatalf("%+v seed %d: weight %d", tt, s, weights[i])
				}
			}
			checkAliasExact(t, values, weights)

			d := mustT(t)(NewWeighted(seed, tt.min, tt.max, tt.bins))
			if lo, hi := d.Bounds(); lo != sorted[0] || hi != sorted[k-1] {
				t.Fatalf("Bounds() = %d, %d, want %d, %d", lo, hi, sorted[0], sorted[k-1])
			}
		}
	}
}

func TestNewWeighted_KS(t *testing.T) {
	seed := [32]byte{42}
	values, weights := weightedShape(seed, 0, 1448, DefaultBins)
	var total uint64
	for _, w := range weights {
		total += w
	}
	cdf := func(k int) float64 {
		var c uint64
		for i, v := range values {
			if v <= k {
				c += weights[i]
			}
		}
		return float64(c) / float64(total)
	}
	d := mustT(t)(NewWeighted(seed, 0, 1448, 0))
	if D := ksDiscrete(sampleN(d, testRand(23), ksN), cdf); D > ksLimit(ksN) {
		t.Errorf("KS D = %.4f > %.4f", D, ksLimit(ksN))
	}
}

// TestNewWeighted_seeds checks that the seed, not the parameters alone,
// decides the shape, and that the shape is not the stream NewRand(seed)
// would give.
func TestNewWeighted_seeds(t *testing.T) {
	a, _ := weightedShape([32]byte{1}, 0, 1448, 100)
	b, _ := weightedShape([32]byte{1}, 0, 1448, 100)
	c, _ := weightedShape([32]byte{2}, 0, 1448, 100)
	if !slices.Equal(a, b) {
		t.Error("same seed, different shapes")
	}
	if slices.Equal(a, c) {
		t.Error("different seeds, same shape")
	}
	r := NewRand([32]byte{1})
	direct := (100+1)/2 + r.IntN(100-(100+1)/2+1)
	first := pickDistinct(r, 1449, direct)
	if slices.Equal(first, a) {
		t.Error("shape is the raw seed's stream; the label separation is missing")
	}
}

func TestNewEmpirical_KS(t *testing.T) {
	r := testRand(24)
	sizes := make([]int, 5000)
	for i := range sizes {
		// A lumpy mixture, like a trace: mostly cells, some small, some large.
		switch x := r.IntN(10); {
		case x < 6:
			sizes[i] = 514
		case x < 8:
			sizes[i] = 40 + r.IntN(60)
		default:
			sizes[i] = 1000 + r.IntN(3000)
		}
	}
	sorted := slices.Clone(sizes)
	slices.Sort(sorted)
	cdf := func(k int) float64 {
		n, _ := slices.BinarySearch(sorted, k+1)
		return float64(n) / float64(len(sorted))
	}
	d := mustT(t)(NewEmpirical(sizes))
	if D := ksDiscrete(sampleN(d, testRand(25), ksN), cdf); D > ksLimit(ksN) {
		t.Errorf("KS D = %.4f > %.4f", D, ksLimit(ksN))
	}
	if lo, hi := d.Bounds(); lo != sorted[0] || hi != sorted[len(sorted)-1] {
		t.Errorf("Bounds() = %d, %d", lo, hi)
	}
}

// TestNewEmpirical_exact checks the alias table against the counts.
func TestNewEmpirical_exact(t *testing.T) {
	sizes := []int{514, 512, 514, 514, 0, 9, 9, 514}
	d := mustT(t)(NewEmpirical(sizes))
	e := d.(*empirical)
	k := uint64(len(e.table.values))
	got := slowMass(&e.table)
	want := map[int]uint64{514: 4 * k, 512: k, 0: k, 9: 2 * k}
	if len(got) != len(want) {
		t.Fatalf("mass %v, want %v", got, want)
	}
	for v, w := range want {
		if got[v] != w {
			t.Errorf("value %d: mass %d, want %d", v, got[v], w)
		}
	}
	// The input is not retained.
	sizes[0] = 7
	if lo, _ := d.Bounds(); lo != 0 {
		t.Errorf("Bounds changed with the input slice")
	}
}
