package metrics

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

var nan = math.NaN()

// same reports whether got equals want within tol, NaN matching NaN.
func same(got, want, tol float64) bool {
	if math.IsNaN(want) {
		return math.IsNaN(got)
	}
	return math.Abs(got-want) <= tol
}

func sameSlice(got, want []float64, tol float64) bool {
	return slices.EqualFunc(got, want, func(g, w float64) bool { return same(g, w, tol) })
}

func TestGoodput(t *testing.T) {
	for _, tc := range []struct {
		name  string
		bytes int64
		d     time.Duration
		want  float64
	}{
		{"1MB in 2s", 1_000_000, 2 * time.Second, 500_000},       // 1e6 / 2
		{"3000B in 250ms", 3000, 250 * time.Millisecond, 12_000}, // 3000 / 0.25
		{"no bytes", 0, time.Second, 0},
		{"zero duration", 100, 0, nan},
		{"negative duration", 100, -time.Second, nan},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Goodput(tc.bytes, tc.d); !same(got, tc.want, 1e-9) {
				t.Errorf("Goodput(%d, %v) = %v, want %v", tc.bytes, tc.d, got, tc.want)
			}
		})
	}
}

func TestOverhead(t *testing.T) {
	for _, tc := range []struct {
		name       string
		wire, data int64
		want       float64
	}{
		{"25 percent", 1250, 1000, 0.25}, // 1250/1000 − 1
		{"none", 1000, 1000, 0},
		{"triple", 3000, 1000, 2}, // 3000/1000 − 1
		{"no data", 500, 0, nan},
		{"nothing", 0, 0, nan},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Overhead(tc.wire, tc.data); !same(got, tc.want, 1e-12) {
				t.Errorf("Overhead(%d, %d) = %v, want %v", tc.wire, tc.data, got, tc.want)
			}
		})
	}
}

func TestDecoyShare(t *testing.T) {
	for _, tc := range []struct {
		name        string
		decoy, wire int64
		want        float64
	}{
		{"quarter", 250, 1000, 0.25}, // 250/1000
		{"all", 1000, 1000, 1},
		{"none", 0, 1000, 0},
		{"no wire", 0, 0, nan},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := DecoyShare(tc.decoy, tc.wire); !same(got, tc.want, 1e-12) {
				t.Errorf("DecoyShare(%d, %d) = %v, want %v", tc.decoy, tc.wire, got, tc.want)
			}
		})
	}
}

func TestSeconds(t *testing.T) {
	got := Seconds([]time.Duration{1500 * time.Millisecond, 0, -2 * time.Second, 10 * time.Microsecond})
	want := []float64{1.5, 0, -2, 1e-5}
	if !sameSlice(got, want, 1e-15) {
		t.Errorf("Seconds = %v, want %v", got, want)
	}
	if got := Seconds(nil); len(got) != 0 {
		t.Errorf("Seconds(nil) = %v, want empty", got)
	}
}

func TestQuantile(t *testing.T) {
	xs := []float64{3, 1, 4, 2} // sorted 1 2 3 4, n = 4, h = 3q
	for _, tc := range []struct {
		name string
		xs   []float64
		q    float64
		want float64
	}{
		{"q=0", xs, 0, 1},
		{"q=0.1", xs, 0.1, 1.3},                             // h = 0.3: x(1) + 0.3·(2 − 1)
		{"q=0.25", xs, 0.25, 1.75},                          // h = 0.75: x(1) + 0.75·(2 − 1)
		{"median even", xs, 0.5, 2.5},                       // h = 1.5: x(2) + 0.5·(3 − 2)
		{"q=0.6", xs, 0.6, 2.8},                             // h = 1.8: x(2) + 0.8·(3 − 2)
		{"q=0.875", xs, 0.875, 3.625},                       // h = 2.625: x(3) + 0.625·(4 − 3)
		{"q=1", xs, 1, 4},                                   // h = 3: x(4)
		{"median odd", []float64{2000, 200, 600}, 0.5, 600}, // h = 1: x(2)
		{"q=0.9 odd", []float64{0, 10, 20}, 0.9, 18},        // h = 1.8: 10 + 0.8·10
		{"one value", []float64{7}, 0.3, 7},                 // h = 0
		{"ties", []float64{5, 5, 1, 5}, 0.5, 5},             // sorted 1 5 5 5, h = 1.5
		{"infinite top", []float64{1, math.Inf(1)}, 0, 1},   // h = 0: x(1), no 0·Inf
		{"empty", nil, 0.5, nan},
		{"q<0", xs, -0.1, nan},
		{"q>1", xs, 1.1, nan},
		{"q NaN", xs, nan, nan},
		{"NaN in xs", []float64{1, nan, 3}, 0.5, nan},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Quantile(tc.xs, tc.q); !same(got, tc.want, 1e-12) {
				t.Errorf("Quantile(%v, %v) = %v, want %v", tc.xs, tc.q, got, tc.want)
			}
		})
	}
	if !slices.Equal(xs, []float64{3, 1, 4, 2}) {
		t.Errorf("Quantile modified its input: %v", xs)
	}
}

func TestCV(t *testing.T) {
	for _, tc := range []struct {
		name string
		xs   []float64
		want float64
	}{
		// μ = 40/8 = 5; Σ(x−μ)² = 9+1+1+1+0+0+4+16 = 32; σ = sqrt(32/8) = 2; 2/5.
		{"classic", []float64{2, 4, 4, 4, 5, 5, 7, 9}, 0.4},
		// μ = 2, σ = sqrt((1+1)/2) = 1.
		{"pair", []float64{1, 3}, 0.5},
		{"constant", []float64{3, 3, 3}, 0},
		{"one value", []float64{3}, 0},
		{"negative mean", []float64{-1, -3}, -0.5}, // μ = −2, σ = 1
		{"mean zero", []float64{-1, 1}, nan},
		{"empty", nil, nan},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CV(tc.xs); !same(got, tc.want, 1e-12) {
				t.Errorf("CV(%v) = %v, want %v", tc.xs, got, tc.want)
			}
		})
	}
}

// distanceCases have hand-computed KS and Wasserstein1. In each comment,
// [x, y): F_a vs F_b gives |F_a − F_b| on that interval; KS is the largest,
// W1 the sum of |F_a − F_b|·(y − x).
var distanceCases = []struct {
	name   string
	a, b   []float64
	ks, w1 float64
}{
	// [1,2): 1/3 vs 0; [2,3): 2/3 vs 1/3; [3,4): 1 vs 2/3. W1 = 3·(1/3)·1.
	{"shift by one", []float64{3, 1, 2}, []float64{2, 4, 3}, 1.0 / 3, 1},
	// [0,1): 1 vs 0; [1,3): 1 vs 1/2. W1 = 1·1 + (1/2)·2.
	{"dominated", []float64{0}, []float64{1, 3}, 1, 2},
	// [0,2): 1/2 vs 0; [2,4): 1/2 vs 1. W1 = (1/2)·2 + (1/2)·2.
	{"crossing", []float64{0, 4}, []float64{2}, 0.5, 2},
	// [1,2): 2/3 vs 1/3; from 2 on both 1. W1 = (1/3)·1.
	{"ties across samples", []float64{1, 1, 2}, []float64{2, 1, 2}, 1.0 / 3, 1.0 / 3},
	{"same sample", []float64{1, 2, 2, 5}, []float64{5, 2, 1, 2}, 0, 0},
	// F_a is F_b: both 1/2 on [1,2).
	{"same distribution", []float64{1, 2}, []float64{2, 1, 1, 2}, 0, 0},
	// [−1,0.5): 1 vs 0. W1 = 1.5 = |−1 − 0.5|.
	{"single values", []float64{-1}, []float64{0.5}, 1, 1.5},
	// [0,10): 1/4 vs 0; [10,20): 1/2 vs 0; [20,30): 3/4 vs 1; [30,40): 1 vs 1.
	// W1 = (1/4)·10 + (1/2)·10 + (1/4)·10 = 10.
	{"interleaved", []float64{0, 10, 20, 30}, []float64{20, 20}, 0.5, 10},
	{"empty a", nil, []float64{1}, nan, nan},
	{"empty b", []float64{1}, nil, nan, nan},
	{"both empty", nil, nil, nan, nan},
	{"NaN", []float64{1, nan}, []float64{1}, nan, nan},
}

func TestKS(t *testing.T) {
	for _, tc := range distanceCases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := slices.Clone(tc.a), slices.Clone(tc.b)
			if got := KS(a, b); !same(got, tc.ks, 1e-12) {
				t.Errorf("KS(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.ks)
			}
			if !sameSlice(a, tc.a, 0) || !sameSlice(b, tc.b, 0) {
				t.Errorf("KS modified its input: %v %v", a, b)
			}
		})
	}
}

func TestWasserstein1(t *testing.T) {
	for _, tc := range distanceCases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := slices.Clone(tc.a), slices.Clone(tc.b)
			if got := Wasserstein1(a, b); !same(got, tc.w1, 1e-12) {
				t.Errorf("Wasserstein1(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.w1)
			}
			if !sameSlice(a, tc.a, 0) || !sameSlice(b, tc.b, 0) {
				t.Errorf("Wasserstein1 modified its input: %v %v", a, b)
			}
		})
	}
	t.Run("infinite", func(t *testing.T) {
		if got := Wasserstein1([]float64{1, math.Inf(1)}, []float64{1}); !math.IsNaN(got) {
			t.Errorf("Wasserstein1 with +Inf = %v, want NaN", got)
		}
	})
	t.Run("symmetric", func(t *testing.T) {
		a, b := []float64{0, 4}, []float64{2}
		if Wasserstein1(a, b) != Wasserstein1(b, a) {
			t.Error("Wasserstein1 is not symmetric")
		}
	})
}

// slowCDF is the share of xs that is <= x.
func slowCDF(xs []float64, x float64) float64 {
	n := 0
	for _, v := range xs {
		if v <= x {
			n++
		}
	}
	return float64(n) / float64(len(xs))
}

// slowKS and slowW1 are the definitions, evaluated at (KS) and between
// (W1) every point of the pooled samples, where the CDFs step.
func slowKS(a, b []float64) float64 {
	var d float64
	for _, x := range slices.Concat(a, b) {
		d = max(d, math.Abs(slowCDF(a, x)-slowCDF(b, x)))
	}
	return d
}

func slowW1(a, b []float64) float64 {
	pts := slices.Concat(a, b)
	slices.Sort(pts)
	var w float64
	for k := 0; k+1 < len(pts); k++ {
		w += math.Abs(slowCDF(a, pts[k])-slowCDF(b, pts[k])) * (pts[k+1] - pts[k])
	}
	return w
}

// TestDistances_reference checks KS and Wasserstein1 against the slow
// definitions on seeded random samples, with ties (integer values).
func TestDistances_reference(t *testing.T) {
	r := rand.New(rand.NewChaCha8([32]byte{1}))
	for range 200 {
		a := make([]float64, 1+r.IntN(30))
		b := make([]float64, 1+r.IntN(30))
		for i := range a {
			a[i] = float64(r.IntN(20))
		}
		for i := range b {
			b[i] = float64(r.IntN(25)) - 3
		}
		if got, want := KS(a, b), slowKS(a, b); !same(got, want, 1e-12) {
			t.Fatalf("KS(%v, %v) = %v, reference %v", a, b, got, want)
		}
		if got, want := Wasserstein1(a, b), slowW1(a, b); !same(got, want, 1e-9) {
			t.Fatalf("Wasserstein1(%v, %v) = %v, reference %v", a, b, got, want)
		}
	}
}
