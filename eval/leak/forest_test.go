package leak_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/bip324pt/bip324-pt/eval/leak"
)

func TestAUC(t *testing.T) {
	F, T := false, true
	for _, c := range []struct {
		name     string
		scores   []float64
		positive []bool
		want     float64
	}{
		// Pairs (positive, negative): 0.35>0.1, 0.35<0.4, 0.8>0.1, 0.8>0.4.
		{"brief", []float64{0.1, 0.4, 0.35, 0.8}, []bool{F, F, T, T}, 0.75},
		{"separated", []float64{1, 2, 3, 4}, []bool{F, F, T, T}, 1},
		{"reversed", []float64{1, 2, 3, 4}, []bool{T, T, F, F}, 0},
		// Pairs: 0.5=0.5 (1/2), 0.5>0.2, 0.9>0.5, 0.9>0.2: 3.5/4.
		{"tie", []float64{0.5, 0.2, 0.5, 0.9}, []bool{F, F, T, T}, 0.875},
		// Every pair ties.
		{"all equal", []float64{3, 3, 3, 3, 3}, []bool{F, T, F, T, T}, 0.5},
		// One positive over 3 negatives: beats 1, ties 2 (2 × 1/2): 2/3.
		{"ties in a group", []float64{1, 2, 2, 2}, []bool{F, F, F, T}, 2.0 / 3},
		{"no positive", []float64{1, 2}, []bool{F, F}, math.NaN()},
		{"no negative", []float64{1, 2}, []bool{T, T}, math.NaN()},
		{"empty", nil, nil, math.NaN()},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := leak.AUC(c.scores, c.positive)
			if math.IsNaN(c.want) != math.IsNaN(got) || (!math.IsNaN(c.want) && math.Abs(got-c.want) > 1e-12) {
				t.Errorf("AUC = %v, want %v", got, c.want)
			}
		})
	}
}

// clouds draws n samples in d dimensions around each centre, the unit
// normal for spread.
func clouds(r *rand.Rand, n, d int, centres ...float64) (x [][]float64, y []int) {
	for c, m := range centres {
		for range n {
			v := make([]float64, d)
			for j := range v {
				v[j] = m + r.NormFloat64()
			}
			x = append(x, v)
			y = append(y, c)
		}
	}
	return x, y
}

func TestCrossValidateForest(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	// Centres 4 sd apart in each of 4 dimensions, 8 sd in all:
	// separable, though a single axis-parallel split errs 2 % of the
	// time, so the trees must use several features.
	x, y := clouds(r, 30, 4, 0, 4, 8)
	res := leak.CrossValidateForest(x, y, 3, 5, 50, 1)
	t.Logf("separable: %v", res)
	if res.Accuracy <= 0.9 || res.Chance != 1.0/3 {
		t.Errorf("separable 3 classes: %v, want accuracy > 0.9, chance 1/3", res)
	}
	n := 0
	for _, row := range res.Confusion {
		for _, v := range row {
			n += v
		}
	}
	if n != len(x) {
		t.Errorf("confusion counts %d samples, want %d", n, len(x))
	}

	// Labels independent of the features: accuracy is about a binomial
	// share of 240 trials at 1/3, sd sqrt(1/3*2/3/240) = 0.03 (40 seeds
	// gave 0.26..0.42, sd 0.04), so 0.15 is nearly 4 sd.
	x, _ = clouds(r, 80, 4, 0, 0, 0)
	y = make([]int, len(x))
	for i := range y {
		y[i] = r.IntN(3)
	}
	res = leak.CrossValidateForest(x, y, 3, 5, 50, 2)
	t.Logf("independent labels: %v", res)
	if math.Abs(res.Accuracy-1.0/3) > 0.15 {
		t.Errorf("labels independent of features: accuracy %.2f, want 1/3 ± 0.15", res.Accuracy)
	}
}

func TestForest_Deterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	x, y := clouds(r, 20, 6, 0, 1, 2)
	q, _ := clouds(r, 10, 6, 0, 1, 2)
	probs := func(seed uint64) [][]float64 {
		f := leak.TrainForest(x, y, 3, 30, seed)
		var out [][]float64
		for _, v := range q {
			p := f.Proba(v)
			if c := f.Predict(v); p[c] != slices.Max(p) {
				t.Fatalf("Predict %d, but Proba %v", c, p)
			}
			out = append(out, p)
		}
		return out
	}
	a, b, c := probs(7), probs(7), probs(8)
	eq := func(a, b [][]float64) bool { return slices.EqualFunc(a, b, slices.Equal[[]float64]) }
	if !eq(a, b) {
		t.Error("two forests from seed 7 vote differently")
	}
	if eq(a, c) {
		t.Error("forests from seeds 7 and 8 vote the same on every query: is the seed used?")
	}
	for _, p := range a {
		if s := p[0] + p[1] + p[2]; math.Abs(s-1) > 1e-12 {
			t.Errorf("Proba %v sums to %v", p, s)
		}
	}
	if r1, r2 := leak.CrossValidateForest(x, y, 3, 4, 20, 5), leak.CrossValidateForest(x, y, 3, 4, 20, 5); r1.String() != r2.String() {
		t.Errorf("CrossValidateForest from one seed: %v, then %v", r1, r2)
	}
}

func TestDistinguish(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	x, _ := clouds(r, 100, 5, 0, 3)
	a, b := x[:100], x[100:]
	sep := leak.Distinguish(a, b, 5, 50, 1)
	// Same distribution: the AUC of 100 against 100 under the null has
	// sd sqrt(201/(12*100*100)) = 0.04 for one scorer; five forests, one
	// a fold, add to it, and 40 seeds gave 0.41..0.62, sd 0.05, so 0.15
	// is 3 sd.
	x, _ = clouds(r, 100, 5, 0, 0)
	same := leak.Distinguish(x[:100], x[100:], 5, 50, 1)
	t.Logf("AUC separable %.3f, same distribution %.3f", sep, same)
	if sep <= 0.95 {
		t.Errorf("separable: AUC %.3f, want > 0.95", sep)
	}
	if same < 0.35 || same > 0.65 {
		t.Errorf("one distribution: AUC %.3f, want 0.35..0.65", same)
	}
	if again := leak.Distinguish(a, b, 5, 50, 1); again != sep {
		t.Errorf("Distinguish from one seed: %v, then %v", sep, again)
	}
	if got := leak.Distinguish(a[:1], b, 5, 50, 1); !math.IsNaN(got) {
		t.Errorf("one sample in a: %v, want NaN", got)
	}
	if got := leak.Distinguish(a, nil, 5, 50, 1); !math.IsNaN(got) {
		t.Errorf("no sample in b: %v, want NaN", got)
	}
}
