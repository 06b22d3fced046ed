package plots

import (
	"bytes"
	"encoding/xml"
	"errors"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// PNG size of a 16 cm × 10 cm figure at 150 dpi, rounded as vgimg does.
const wantPNGWidth, wantPNGHeight = 945, 591

// sizes returns n packet sizes drawn from a few wire sizes, seeded.
func sizes(seed uint64, n int) []float64 {
	r := rand.New(rand.NewPCG(seed, 1))
	v := make([]float64, n)
	for i := range v {
		v[i] = float64([]int{64, 120, 590, 1350, 1460}[r.IntN(5)] + r.IntN(20))
	}
	return v
}

// gaps returns n exponential inter-arrival times in seconds, seeded.
func gaps(seed uint64, n int) []float64 {
	r := rand.New(rand.NewPCG(seed, 2))
	v := make([]float64, n)
	for i := range v {
		v[i] = r.ExpFloat64() / 200
	}
	return v
}

// figures draws one figure of each kind under dir and returns their bases.
func figures(t *testing.T, dir string) map[string]func() error {
	t.Helper()
	up := sizes(3, 400)
	down := sizes(4, 400)
	for i := range down {
		if i%7 == 0 {
			down[i] = math.NaN()
		}
	}
	return map[string]func() error{
		"cdf": func() error {
			return CDF(filepath.Join(dir, "cdf"), "Wire sizes: profile web", "packet size (bytes)", false,
				Series{"target", sizes(1, 5000)}, Series{"wire", sizes(2, 20000)}, Series{"empty", nil})
		},
		"cdf-log": func() error {
			g := gaps(5, 3000)
			g[0], g[1] = 0, -1 // counted, not drawn
			return CDF(filepath.Join(dir, "cdf-log"), "Inter-arrival: profile web", "inter-arrival time (s)", true,
				Series{"target", gaps(6, 3000)}, Series{"wire", g})
		},
		"windows": func() error {
			return Windows(filepath.Join(dir, "sub", "windows"), "Bytes per window", 100*time.Millisecond,
				Series{"up", up}, Series{"down", down}, Series{"none", []float64{}})
		},
		"scatter": func() error {
			return Scatter(filepath.Join(dir, "scatter"), "Cost against leakage", "bandwidth overhead (%)", "classifier accuracy", 0.25,
				Point{"plain", 0, 0.97}, Point{"web", 38, 0.41}, Point{"constant", 210, 0.26}, Point{"bad", math.NaN(), 1})
		},
	}
}

var titles = map[string]string{
	"cdf":     "Wire sizes: profile web",
	"cdf-log": "Inter-arrival: profile web",
	"windows": "Bytes per window",
	"scatter": "Cost against leakage",
}

var bases = map[string]string{
	"cdf":     "cdf",
	"cdf-log": "cdf-log",
	"windows": filepath.Join("sub", "windows"),
	"scatter": "scatter",
}

func TestFigures(t *testing.T) {
	dir := t.TempDir()
	for name, draw := range figures(t, dir) {
		t.Run(name, func(t *testing.T) {
			if err := draw(); err != nil {
				t.Fatal(err)
			}
			base := filepath.Join(dir, bases[name])
			checkPNG(t, base+".png")
			checkSVG(t, base+".svg", titles[name])
		})
	}
}

func checkPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if cfg.Width != wantPNGWidth || cfg.Height != wantPNGHeight {
		t.Errorf("%s is %d×%d, want %d×%d", path, cfg.Width, cfg.Height, wantPNGWidth, wantPNGHeight)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func checkSVG(t *testing.T, path, title string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(b))
	var text strings.Builder
	root := ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tok.Name.Local
			}
		case xml.CharData:
			text.Write(tok)
			text.WriteByte('\n')
		}
	}
	if root != "svg" {
		t.Errorf("%s: root element %q, want svg", path, root)
	}
	if !strings.Contains(text.String(), title) {
		t.Errorf("%s does not contain the title %q", path, title)
	}
}

// TestDeterministic draws every figure twice and wants byte-identical
// files, PNG and SVG.
func TestDeterministic(t *testing.T) {
	d1, d2 := t.TempDir(), t.TempDir()
	f1, f2 := figures(t, d1), figures(t, d2)
	for name := range f1 {
		if err := f1[name](); err != nil {
			t.Fatal(err)
		}
		if err := f2[name](); err != nil {
			t.Fatal(err)
		}
		for _, ext := range []string{".png", ".svg"} {
			b1, err := os.ReadFile(filepath.Join(d1, bases[name]) + ext)
			if err != nil {
				t.Fatal(err)
			}
			b2, err := os.ReadFile(filepath.Join(d2, bases[name]) + ext)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b1, b2) {
				t.Errorf("%s%s differs between two draws of the same input", name, ext)
			}
		}
	}
}

// TestConcurrent draws the figures at once; run with -race.
func TestConcurrent(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	for i := range 3 {
		for name, draw := range figures(t, filepath.Join(dir, string(rune('a'+i)))) {
			wg.Go(func() {
				if err := draw(); err != nil {
					t.Errorf("%s: %v", name, err)
				}
			})
		}
	}
	wg.Wait()
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "fig")
	nan := math.NaN()
	tests := []struct {
		name string
		draw func() error
		want error // nil: any error
	}{
		{"CDF/no series", func() error { return CDF(base, "t", "x", false) }, ErrNoData},
		{"CDF/empty series", func() error { return CDF(base, "t", "x", false, Series{"a", nil}, Series{"b", []float64{}}) }, ErrNoData},
		{"CDF/all NaN", func() error { return CDF(base, "t", "x", false, Series{"a", []float64{nan, nan}}) }, ErrNoData},
		{"CDF/all Inf", func() error { return CDF(base, "t", "x", false, Series{"a", []float64{math.Inf(1)}}) }, ErrNoData},
		{"CDF/log non-positive", func() error { return CDF(base, "t", "x", true, Series{"a", []float64{0, -2}}) }, ErrNoData},
		{"CDF/empty base", func() error { return CDF("", "t", "x", false, Series{"a", []float64{1}}) }, nil},
		{"CDF/dir base", func() error { return CDF(dir+"/", "t", "x", false, Series{"a", []float64{1}}) }, nil},
		{"Windows/no series", func() error { return Windows(base, "t", time.Second) }, ErrNoData},
		{"Windows/all NaN", func() error { return Windows(base, "t", time.Second, Series{"up", []float64{nan, nan}}) }, ErrNoData},
		{"Windows/lengths", func() error {
			return Windows(base, "t", time.Second, Series{"up", []float64{1, 2, 3}}, Series{"down", []float64{1, 2}})
		}, ErrLength},
		{"Windows/zero window", func() error { return Windows(base, "t", 0, Series{"up", []float64{1}}) }, nil},
		{"Windows/empty base", func() error { return Windows("", "t", time.Second, Series{"up", []float64{1}}) }, nil},
		{"Scatter/no points", func() error { return Scatter(base, "t", "x", "y", nan) }, ErrNoData},
		{"Scatter/all NaN", func() error { return Scatter(base, "t", "x", "y", 0.5, Point{"a", nan, 1}, Point{"b", 1, nan}) }, ErrNoData},
		{"Scatter/Inf ref", func() error { return Scatter(base, "t", "x", "y", math.Inf(1), Point{"a", 1, 1}) }, nil},
		{"Scatter/empty base", func() error { return Scatter("", "t", "x", "y", nan, Point{"a", 1, 1}) }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.draw()
			if err == nil {
				t.Fatal("no error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "plots: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("bad input left files: %v", ents)
	}
}

// TestEdgeCases draws degenerate but valid input: one value, all values
// equal, all zero, one point, a lone window between gaps.
func TestEdgeCases(t *testing.T) {
	dir := t.TempDir()
	nan := math.NaN()
	tests := []struct {
		name string
		draw func(base string) error
	}{
		{"CDF/one value", func(b string) error { return CDF(b, "t", "x", false, Series{"a", []float64{5}}) }},
		{"CDF/log one value", func(b string) error { return CDF(b, "t", "x", true, Series{"a", []float64{1e-3}}) }},
		{"CDF/log equal", func(b string) error { return CDF(b, "t", "x", true, Series{"a", []float64{0.3, 0.3, 0.3}}) }},
		{"CDF/negative", func(b string) error { return CDF(b, "t", "x", false, Series{"a", []float64{-3, -1, nan}}) }},
		{"Windows/zeros", func(b string) error { return Windows(b, "t", time.Second, Series{"up", []float64{0, 0, 0}}) }},
		{"Windows/lone", func(b string) error {
			return Windows(b, "t", time.Millisecond, Series{"up", []float64{nan, 7, nan}}, Series{"", []float64{1, 2, 3}})
		}},
		{"Scatter/one point", func(b string) error { return Scatter(b, "t", "x", "y", nan, Point{"only", 1, 1}) }},
		{"Scatter/ref outside", func(b string) error { return Scatter(b, "t", "x", "y", -5, Point{"", 1, 1}, Point{"b", 2, 3}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := filepath.Join(dir, strings.ReplaceAll(tt.name, "/", "-"))
			if err := tt.draw(base); err != nil {
				t.Fatal(err)
			}
			checkPNG(t, base+".png")
			checkSVG(t, base+".svg", "t")
		})
	}
}

// slowCDF is the fraction of the finite values of v at or below x.
func slowCDF(v []float64, x float64) float64 {
	var n, k int
	for _, y := range v {
		if !math.IsNaN(y) && !math.IsInf(y, 0) {
			n++
			if y <= x {
				k++
			}
		}
	}
	return float64(k) / float64(n)
}

// TestEcdf checks the thinned steps against the definition: at each step
// the PostStep line is within 1/maxCDFPoints below the true CDF.
func TestEcdf(t *testing.T) {
	for _, tt := range []struct {
		name string
		v    []float64
		logX bool
	}{
		{"sizes", sizes(7, 30000), false},
		{"gaps", gaps(8, 30000), false},
		{"gaps log with zeros", append(gaps(9, 5000), 0, 0, 0, -1, math.NaN()), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			xys := ecdf(tt.v, tt.logX)
			if len(xys) > maxCDFPoints+2 {
				t.Errorf("%d steps, want at most %d", len(xys), maxCDFPoints+2)
			}
			if last := xys[len(xys)-1]; last.Y != 1 {
				t.Errorf("ends at %v, want 1", last.Y)
			}
			// The line starts at the fraction below its first value.
			first := xys[0]
			if want := slowCDF(tt.v, math.Nextafter(first.X, math.Inf(-1))); math.Abs(first.Y-want) > 1e-12 {
				t.Errorf("starts at %v, want %v", first.Y, want)
			}
			for i := 1; i < len(xys); i++ {
				want := slowCDF(tt.v, xys[i].X)
				if math.Abs(xys[i].Y-want) > 1e-12 {
					t.Fatalf("step %d at x=%v is %v, want %v", i, xys[i].X, xys[i].Y, want)
				}
				if tt.logX && xys[i].X <= 0 {
					t.Fatalf("step %d at x=%v on a log axis", i, xys[i].X)
				}
				// Between steps the line holds the previous level; the
				// true CDF just before x must not exceed it by more
				// than the bound.
				if i > 1 {
					prev := slowCDF(tt.v, math.Nextafter(xys[i].X, math.Inf(-1)))
					if prev-xys[i-1].Y >= 1.0/maxCDFPoints+1e-12 {
						t.Fatalf("before step %d the CDF is %v, the line %v", i, prev, xys[i-1].Y)
					}
				}
			}
		})
	}
}

func TestDecadeTicks(t *testing.T) {
	ticks := decadeTicks{}.Ticks(1e-4, 1e-1)
	var labels []string
	for _, tk := range ticks {
		if tk.Label != "" {
			labels = append(labels, tk.Label)
		}
	}
	if got, want := strings.Join(labels, " "), "0.0001 0.001 0.01 0.1"; got != want {
		t.Errorf("labels %q, want %q", got, want)
	}
	if len(ticks) != 4+3*8 {
		t.Errorf("%d ticks, want %d", len(ticks), 4+3*8)
	}
}
