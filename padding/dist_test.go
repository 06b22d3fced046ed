package padding

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// testRand returns a deterministic *rand.Rand for test number n.
func testRand(n uint64) *rand.Rand {
	var seed [32]byte
	for i := range 8 {
		seed[i] = byte(n >> (8 * i))
	}
	return NewRand(seed)
}

// mustT returns a function that unwraps a constructor's results, failing
// t on an error.
func mustT(t testing.TB) func(Dist, error) Dist {
	return func(d Dist, err error) Dist {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
}

// ksDiscrete returns the Kolmogorov-Smirnov statistic sup|Fn - F| of
// integer samples against the CDF F(k) = P(X <= k). Both functions are
// step functions that only move at integers, and Fn is constant between
// consecutive distinct samples, so the supremum is attained at a sample
// value v or just below it, at v-1.
func ksDiscrete(samples []int, cdf func(k int) float64) float64 {
	s := slices.Clone(samples)
	slices.Sort(s)
	n := float64(len(s))
	d, below := 0.0, 0.0 // below: Fn just under the current value
	for i := 0; i < len(s); {
		v := s[i]
		for i < len(s) && s[i] == v {
			i++
		}
		at := float64(i) / n
		d = max(d, math.Abs(below-cdf(v-1)), math.Abs(at-cdf(v)))
		below = at
	}
	return d
}

// ksLimit is the KS critical value at significance 0.001 for n samples
// (c(α) = sqrt(-ln(α/2)/2) ≈ 1.95). For a discrete distribution the test
// is conservative. The seeds are fixed, so a pass is a pass for good.
func ksLimit(n int) float64 { return 1.95 / math.Sqrt(float64(n)) }

const ksN = 20000

func sampleN(d Dist, r *rand.Rand, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = d.Sample(r)
	}
	return out
}

func TestConstructors_errors(t *testing.T) {
	d, _ := Fixed(1)
	tests := []struct {
		name string
		make func() (Dist, error)
	}{
		{"fixed negative", func() (Dist, error) { return Fixed(-1) }},
		{"fixed too large", func() (Dist, error) { return Fixed(MaxSize + 1) }},
		{"uniform min negative", func() (Dist, error) { return Uniform(-1, 5) }},
		{"uniform max below min", func() (Dist, error) { return Uniform(6, 5) }},
		{"uniform max too large", func() (Dist, error) { return Uniform(0, MaxSize+1) }},
		{"lognormal NaN mu", func() (Dist, error) { return LogNormal(math.NaN(), 1) }},
		{"lognormal negative mu", func() (Dist, error) { return LogNormal(-1, 1) }},
		{"lognormal huge mu", func() (Dist, error) { return LogNormal(17, 1) }},
		{"lognormal inf mu", func() (Dist, error) { return LogNormal(math.Inf(1), 1) }},
		{"lognormal negative sigma", func() (Dist, error) { return LogNormal(5, -0.1) }},
		{"lognormal NaN sigma", func() (Dist, error) { return LogNormal(5, math.NaN()) }},
		{"lognormal inf sigma", func() (Dist, error) { return LogNormal(5, math.Inf(1)) }},
		{"clamp nil", func() (Dist, error) { return Clamp(nil, 0, 1) }},
		{"clamp inverted", func() (Dist, error) { return Clamp(d, 3, 2) }},
		{"weighted inverted", func() (Dist, error) { return NewWeighted([32]byte{}, 3, 2, 0) }},
		{"weighted negative bins", func() (Dist, error) { return NewWeighted([32]byte{}, 0, 2, -1) }},
		{"weighted too many bins", func() (Dist, error) { return NewWeighted([32]byte{}, 0, 2, MaxBins+1) }},
		{"empirical empty", func() (Dist, error) { return NewEmpirical(nil) }},
		{"empirical negative", func() (Dist, error) { return NewEmpirical([]int{1, -2}) }},
		{"empirical too large", func() (Dist, error) { return NewEmpirical([]int{MaxSize + 1}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := tt.make()
			if err == nil {
				t.Fatalf("got %v, want an error", d)
			}
			var re *RangeError
			if !errors.As(err, &re) && !errors.Is(err, ErrNilDist) && !errors.Is(err, ErrNoSizes) {
				t.Errorf("error %q (%T) is neither a *RangeError nor a sentinel", err, err)
			}
			t.Log(err)
		})
	}
}

func TestDist_String(t *testing.T) {
	u := mustT(t)(Uniform(0, 4095))
	tests := []struct {
		d    Dist
		want string
	}{
		{mustT(t)(Fixed(36)), "fixed(36)"},
		{u, "uniform(0,4095)"},
		{mustT(t)(LogNormal(6.5, 0.75)), "lognormal(6.5,0.75)"},
		{mustT(t)(Clamp(u, 16, 1024)), "clamp(uniform(0,4095),16,1024)"},
		{mustT(t)(NewWeighted([32]byte{1}, 0, 1448, 0)), "weighted(0,1448,100)"},
		{mustT(t)(NewEmpirical([]int{514, 512, 514})), "empirical(n=3,distinct=2,512..514)"},
	}
	for _, tt := range tests {
		if got := tt.d.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestDist_Bounds(t *testing.T) {
	u := mustT(t)(Uniform(100, 200))
	dists := []Dist{
		mustT(t)(Fixed(0)),
		mustT(t)(Fixed(MaxSize)),
		u,
		mustT(t)(Uniform(0, MaxSize)),
		mustT(t)(LogNormal(math.Log(MaxSize), 3)), // half the samples hit the cap
		mustT(t)(LogNormal(0, 0)),
		mustT(t)(Clamp(u, 150, 160)),
		mustT(t)(Clamp(u, 300, 400)), // disjoint: always 300
		mustT(t)(NewWeighted([32]byte{7}, 10, 12, 50)),
		mustT(t)(NewWeighted([32]byte{8}, 0, MaxSize, MaxBins)),
		mustT(t)(NewEmpirical([]int{5, 5, 9, 0})),
	}
	r := testRand(1)
	for _, d := range dists {
		lo, hi := d.Bounds()
		if lo < 0 || hi > MaxSize || lo > hi {
			t.Errorf("%v: Bounds() = %d, %d", d, lo, hi)
		}
		for range 2000 {
			if v := d.Sample(r); v < lo || v > hi {
				t.Fatalf("%v: sample %d outside Bounds [%d, %d]", d, v, lo, hi)
			}
		}
	}
}

func TestFixed_Sample(t *testing.T) {
	d := mustT(t)(Fixed(1448))
	r := testRand(2)
	for range 100 {
		if v := d.Sample(r); v != 1448 {
			t.Fatalf("Sample() = %d", v)
		}
	}
}

func TestUniform_KS(t *testing.T) {
	for _, c := range []struct{ min, max int }{{0, 0}, {0, 1}, {0, 4095}, {20, 1448}, {0, MaxSize}} {
		d := mustT(t)(Uniform(c.min, c.max))
		s := sampleN(d, testRand(3), ksN)
		n := float64(c.max - c.min + 1)
		cdf := func(k int) float64 {
			return min(max(float64(k-c.min+1)/n, 0), 1)
		}
		if D := ksDiscrete(s, cdf); D > ksLimit(ksN) {
			t.Errorf("%v: KS D = %.4f > %.4f", d, D, ksLimit(ksN))
		}
	}
}

func TestLogNormal_KS(t *testing.T) {
	for _, c := range []struct{ mu, sigma float64 }{{0, 0.5}, {3, 1}, {6.5, 0.75}, {10, 2}} {
		d := mustT(t)(LogNormal(c.mu, c.sigma))
		s := sampleN(d, testRand(4), ksN)
		// round(X) <= k exactly when X < k + 0.5.
		cdf := func(k int) float64 {
			if k < 0 {
				return 0
			}
			if k >= MaxSize {
				return 1
			}
			z := (math.Log(float64(k)+0.5) - c.mu) / c.sigma
			return 0.5 * math.Erfc(-z/math.Sqrt2)
		}
		if D := ksDiscrete(s, cdf); D > ksLimit(ksN) {
			t.Errorf("%v: KS D = %.4f > %.4f", d, D, ksLimit(ksN))
		}
	}
}

func TestLogNormal_cap(t *testing.T) {
	d := mustT(t)(LogNormal(math.Log(MaxSize), 10))
	r := testRand(5)
	hits := 0
	for range 1000 {
		v := d.Sample(r)
		if v > MaxSize || v < 0 {
			t.Fatalf("sample %d outside [0, MaxSize]", v)
		}
		if v == MaxSize {
			hits++
		}
	}
	if hits < 400 {
		t.Errorf("%d of 1000 samples at the cap, want about half", hits)
	}
}

func TestClamp_Sample(t *testing.T) {
	u := mustT(t)(Uniform(0, 99))
	c := mustT(t)(Clamp(u, 10, 19))
	r1, r2 := testRand(6), testRand(6)
	for range 1000 {
		want := min(max(u.Sample(r1), 10), 19)
		if got := c.Sample(r2); got != want {
			t.Fatalf("Sample() = %d, want %d", got, want)
		}
	}
}

// TestDist_deterministic checks that a seed fixes the samples.
func TestDist_deterministic(t *testing.T) {
	dists := []Dist{
		mustT(t)(Uniform(0, 4095)),
		mustT(t)(LogNormal(6, 1)),
		mustT(t)(NewWeighted([32]byte{9}, 0, 1448, 0)),
		mustT(t)(NewEmpirical([]int{1, 2, 3, 3, 4})),
	}
	for _, d := range dists {
		a, b := sampleN(d, testRand(7), 100), sampleN(d, testRand(7), 100)
		if !slices.Equal(a, b) {
			t.Errorf("%v: same seed, different samples", d)
		}
		if c := sampleN(d, testRand(8), 100); slices.Equal(a, c) {
			t.Errorf("%v: different seeds, same samples", d)
		}
	}
}

func BenchmarkDist_Sample(b *testing.B) {
	u, _ := Uniform(0, 4095)
	sizes := make([]int, 10000)
	r := testRand(10)
	for i := range sizes {
		sizes[i] = 512 + 2*r.IntN(2)
	}
	for _, d := range []Dist{
		mustT(b)(Fixed(1448)),
		u,
		mustT(b)(LogNormal(6.5, 0.75)),
		mustT(b)(Clamp(u, 64, 1448)),
		mustT(b)(NewWeighted([32]byte{1}, 0, 1448, 0)),
		mustT(b)(NewEmpirical(sizes)),
	} {
		b.Run(d.String(), func(b *testing.B) {
			b.ReportAllocs()
			r := testRand(11)
			sum := 0
			for b.Loop() {
				sum += d.Sample(r)
			}
			if sum < 0 {
				b.Fatal(sum)
			}
		})
	}
}
