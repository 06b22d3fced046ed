package padding

import (
	"bytes"
	"fmt"
	"math"
	"math/bits"
	"testing"
)

func meanPopcount(p []byte) float64 {
	n := 0
	for _, b := range p {
		n += bits.OnesCount8(b)
	}
	return float64(n) / float64(len(p))
}

// chiSquare returns Pearson's statistic for byte counts against a uniform
// distribution over the values in [lo, hi].
func chiSquare(p []byte, lo, hi int) float64 {
	var counts [256]int
	for _, b := range p {
		counts[b]++
	}
	want := float64(len(p)) / float64(hi-lo+1)
	x := 0.0
	for v := lo; v <= hi; v++ {
		d := float64(counts[v]) - want
		x += d * d / want
	}
	return x
}

// chiLimit approximates the chi-square critical value at significance
// 0.001 for dof degrees of freedom (Wilson-Hilferty, z = 3.09).
func chiLimit(dof int) float64 {
	k := float64(dof)
	c := 1 - 2/(9*k) + 3.09*math.Sqrt(2/(9*k))
	return k * c * c * c
}

func TestFiller_popcount(t *testing.T) {
	tests := []struct {
		f    Filler
		want float64
	}{
		{RandomFiller{}, 4},
		{LowPopcountFiller{}, 2},
		{LowPopcountFiller{Ones: 1}, 1},
		{LowPopcountFiller{Ones: 2}, 2},
		{LowPopcountFiller{Ones: 3}, 3},
	}
	p := make([]byte, 1<<16)
	for _, tt := range tests {
		tt.f.Fill(testRand(30), p)
		// The mean of 65536 bytes has a standard deviation below 0.006.
		if got := meanPopcount(p); math.Abs(got-tt.want) > 0.03 {
			t.Errorf("%v: mean popcount %.3f, want %.1f", tt.f, got, tt.want)
		}
		if lp, ok := tt.f.(LowPopcountFiller); ok && meanPopcount(p) >= 3.4 {
			t.Errorf("%v: mean popcount %.3f, not below 3.4", lp, meanPopcount(p))
		}
	}
}

// TestLowPopcountFiller_bits checks that each bit position, not just the
// byte as a whole, has the intended density: a filler that set only the
// low bits would pass the mean test and be trivially distinguishable.
func TestLowPopcountFiller_bits(t *testing.T) {
	p := make([]byte, 1<<15)
	for ones := 1; ones <= 3; ones++ {
		LowPopcountFiller{Ones: ones}.Fill(testRand(31), p)
		for bit := range 8 {
			n := 0
			for _, b := range p {
				n += int(b>>bit) & 1
			}
			got := float64(n) / float64(len(p))
			if math.Abs(got-float64(ones)/8) > 0.015 {
				t.Errorf("ones %d: bit %d set in %.3f of bytes, want %.3f", ones, bit, got, float64(ones)/8)
			}
		}
	}
}

func TestRandomFiller_uniform(t *testing.T) {
	p := make([]byte, 1<<16)
	RandomFiller{}.Fill(testRand(32), p)
	if x := chiSquare(p, 0, 255); x > chiLimit(255) {
		t.Errorf("chi-square %.1f > %.1f", x, chiLimit(255))
	}
}

func TestPrintableFiller(t *testing.T) {
	p := make([]byte, 1<<16)
	PrintableFiller{}.Fill(testRand(33), p)
	for i, b := range p {
		if b < 0x20 || b > 0x7e {
			t.Fatalf("byte %d = %#x is not printable", i, b)
		}
	}
	if x := chiSquare(p, 0x20, 0x7e); x > chiLimit(94) {
		t.Errorf("chi-square %.1f > %.1f", x, chiLimit(94))
	}
}

// TestFiller_lengths checks every length, including the tails that are not
// a multiple of eight: Fill(p[:n]) writes all n bytes, and is a prefix of a
// longer fill from the same seed.
func TestFiller_lengths(t *testing.T) {
	fillers := []Filler{RandomFiller{}, LowPopcountFiller{Ones: 1}, LowPopcountFiller{Ones: 3}, PrintableFiller{}}
	for _, f := range fillers {
		long := make([]byte, 64)
		f.Fill(testRand(34), long)
		for n := 0; n <= len(long); n++ {
			p := bytes.Repeat([]byte{0xff}, n+1)
			f.Fill(testRand(34), p[:n])
			if !bytes.Equal(p[:n], long[:n]) {
				t.Fatalf("%v: Fill of %d bytes is not a prefix of a longer fill", f, n)
			}
			if p[n] != 0xff {
				t.Fatalf("%v: Fill of %d bytes wrote past the end", f, n)
			}
		}
		if f, ok := f.(LowPopcountFiller); ok && f.Ones == 1 && bytes.Contains(long, []byte{0xff}) {
			t.Errorf("%v: 0xff left in the output (probability 8^-8 a byte)", f)
		}
	}
}

func TestLowPopcountFiller_Validate(t *testing.T) {
	for ones := -1; ones <= 4; ones++ {
		err := LowPopcountFiller{Ones: ones}.Validate()
		if ok := ones >= 0 && ones <= 3; ok != (err == nil) {
			t.Errorf("Ones %d: Validate() = %v", ones, err)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("Fill with Ones = 4 did not panic")
		}
	}()
	LowPopcountFiller{Ones: 4}.Fill(testRand(35), make([]byte, 1))
}

func TestFiller_String(t *testing.T) {
	for f, want := range map[Filler]string{
		RandomFiller{}:             "random",
		LowPopcountFiller{}:        "lowpopcount(2)",
		LowPopcountFiller{Ones: 3}: "lowpopcount(3)",
		PrintableFiller{}:          "printable",
	} {
		if got := f.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
}

func BenchmarkFiller_Fill(b *testing.B) {
	for _, f := range []Filler{RandomFiller{}, LowPopcountFiller{}, PrintableFiller{}} {
		for _, n := range []int{64, 1350, 4095} {
			b.Run(fmt.Sprintf("%v/%d", f, n), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(n))
				p := make([]byte, n)
				r := testRand(36)
				for b.Loop() {
					f.Fill(r, p)
				}
			})
		}
	}
}
