// Package plots draws the figures of bip324-pt eval reports with
// gonum.org/v1/plot: empirical CDFs ([CDF]), bytes per window over time
// ([Windows]) and cost/leakage scatters ([Scatter]).
//
// Each function draws one figure, 16 cm × 10 cm, and writes it twice:
// base+".png" (945 × 591 pixels at 150 dpi) and base+".svg". It creates
// base's parent directories. Both files are rendered in memory first, so
// bad input leaves no files behind; a failed write may leave one of them.
//
// NaN and ±Inf are missing values: left out of a CDF, a gap in a line of
// [Windows], an unplotted point of [Scatter]. A series with no finite
// value is skipped and the others are drawn; a figure with nothing left
// to draw is an error wrapping [ErrNoData]. A series keeps the colour and
// dash pattern of its position in the argument list, skipped or not, so
// the same order gives the same styles across figures.
//
// Output is deterministic: the same arguments give byte-identical files.
// The functions are safe for concurrent use.
package plots

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Figure geometry. At 16 cm wide the default gonum font sizes (10–13 pt)
// print at their nominal size, which is readable in a report or on a
// slide; 150 dpi keeps the PNG sharp without making it large.
const (
	figWidth  = 16 * vg.Centimeter
	figHeight = 10 * vg.Centimeter
	pngDPI    = 150
)

// maxCDFPoints bounds the steps drawn per CDF. Dropping a step where the
// CDF has risen by less than 1/maxCDFPoints since the last one drawn errs
// by at most that much vertically, under a pixel at 150 dpi, and keeps
// the SVG small for traces of 10⁵ or more packets.
const maxCDFPoints = 1000

var (
	// ErrNoData means a figure had nothing to draw: no series or points,
	// or only empty or non-finite values.
	ErrNoData = errors.New("plots: nothing to draw")

	// ErrLength means the non-empty series given to [Windows] have
	// different lengths, so they do not share a time axis.
	ErrLength = errors.New("plots: series lengths differ")
)

// Series is one named line or sample set. Name labels it in the legend;
// an empty Name gives no legend entry.
type Series struct {
	Name   string
	Values []float64
}

// Point is one labelled point of a [Scatter], such as a profile's
// bandwidth overhead (X) against a classifier's accuracy (Y).
type Point struct {
	Label string
	X, Y  float64
}

// CDF draws the empirical CDF of each series: the fraction of its finite
// values at or below x, as a step line. A caller compares the wire packet
// sizes of a profile against its target distribution by passing both as
// series. xlabel names the x axis; the y axis runs from 0 to 1.
//
// With logX the x axis is logarithmic over whole decades, for
// inter-arrival times. Values at or below zero cannot be placed on it but
// still count: a series whose first positive value is x starts at the
// fraction of values below x, not at 0.
//
// CDF returns an error wrapping [ErrNoData] if no series has a value to
// draw.
func CDF(base, title, xlabel string, logX bool, series ...Series) error {
	if err := checkBase(base); err != nil {
		return err
	}
	steps := make([]plotter.XYs, len(series))
	xmax := math.Inf(-1)
	for i, s := range series {
		steps[i] = ecdf(s.Values, logX)
		if n := len(steps[i]); n > 0 {
			xmax = max(xmax, steps[i][n-1].X)
		}
	}

	p := newPlot(title, xlabel, "cumulative fraction")
	drawn := 0
	for i, xys := range steps {
		if len(xys) == 0 {
			continue
		}
		// Run every CDF out to the right edge at 1, so one that ends
		// early does not look cut off.
		if last := xys[len(xys)-1]; last.X < xmax {
			xys = append(xys, plotter.XY{X: xmax, Y: last.Y})
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return fmt.Errorf("plots: CDF %q: series %q: %w", title, series[i].Name, err)
		}
		l.StepStyle = plotter.PostStep
		styleLine(&l.LineStyle, i)
		p.Add(l)
		if series[i].Name != "" {
			p.Legend.Add(series[i].Name, l)
		}
		drawn++
	}
	if drawn == 0 {
		return fmt.Errorf("plots: CDF %q: %w", title, ErrNoData)
	}
	p.Y.Min, p.Y.Max = 0, 1
	if logX {
		lo := math.Floor(math.Log10(p.X.Min))
		hi := math.Ceil(math.Log10(p.X.Max))
		if hi <= lo {
			hi = lo + 1
		}
		p.X.Min, p.X.Max = math.Pow(10, lo), math.Pow(10, hi)
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = decadeTicks{}
	}
	// A CDF leaves the bottom right empty.
	placeLegend(p, false)
	return save(base, p)
}

// ecdf returns the steps of the empirical CDF of the finite values in v,
// for a PostStep line: a first point at the fraction below the smallest
// value drawn, then (x, fraction ≤ x) at each distinct value, thinned to
// about maxCDFPoints. With logX, values ≤ 0 are counted but not drawn. It
// returns nil if nothing can be drawn.
func ecdf(v []float64, logX bool) plotter.XYs {
	vs := make([]float64, 0, len(v))
	for _, x := range v {
		if finite(x) {
			vs = append(vs, x)
		}
	}
	slices.Sort(vs)
	n := float64(len(vs))
	var xys plotter.XYs
	var below float64 // fraction of values before the current one
	for i := 0; i < len(vs); {
		j := i
		for j < len(vs) && vs[j] == vs[i] {
			j++
		}
		x, f := vs[i], float64(j)/n
		i = j
		if logX && x <= 0 {
			below = f
			continue
		}
		switch {
		case xys == nil:
			xys = plotter.XYs{{X: x, Y: below}, {X: x, Y: f}}
		case f-xys[len(xys)-1].Y >= 1.0/maxCDFPoints || j == len(vs):
			xys = append(xys, plotter.XY{X: x, Y: f})
		}
		below = f
	}
	return xys
}

// decadeTicks marks a log axis with a labelled tick at each power of 10
// and unlabelled ticks at 2–9 times it. plot.LogTicks truncates log10 of
// values below 1 towards zero and so loses its labels there, which is
// where inter-arrival times in seconds live.
type decadeTicks struct{}

// Ticks implements plot.Ticker. min and max are powers of 10 (CDF sets
// them so) and positive.
func (decadeTicks) Ticks(min, max float64) []plot.Tick {
	var ticks []plot.Tick
	lo, hi := int(math.Round(math.Log10(min))), int(math.Round(math.Log10(max)))
	for e := lo; e <= hi; e++ {
		d := math.Pow(10, float64(e))
		ticks = append(ticks, plot.Tick{Value: d, Label: strconv.FormatFloat(d, 'g', -1, 64)})
		for k := 2; k < 10 && e < hi; k++ {
			ticks = append(ticks, plot.Tick{Value: float64(k) * d})
		}
	}
	return ticks
}

// Windows draws bytes per window over time, one step line per series
// (such as "up" and "down"): window i covers [i·window, (i+1)·window) on
// an x axis in seconds. A NaN or ±Inf window is a gap in its line.
//
// Windows returns an error if window is not positive, one wrapping
// [ErrLength] if the non-empty series differ in length, and one wrapping
// [ErrNoData] if no series has a finite value.
func Windows(base, title string, window time.Duration, series ...Series) error {
	if err := checkBase(base); err != nil {
		return err
	}
	if window <= 0 {
		return fmt.Errorf("plots: Windows %q: window %v is not positive", title, window)
	}
	n, first := -1, ""
	for _, s := range series {
		switch {
		case len(s.Values) == 0:
		case n < 0:
			n, first = len(s.Values), s.Name
		case len(s.Values) != n:
			return fmt.Errorf("plots: Windows %q: series %q has %d windows, %q has %d: %w",
				title, s.Name, len(s.Values), first, n, ErrLength)
		}
	}

	p := newPlot(title, "time (s)", "bytes per "+window.String())
	w := window.Seconds()
	drawn, entries := 0, 0
	for i, s := range series {
		for k, run := range windowRuns(s.Values, w) {
			l, err := plotter.NewLine(run)
			if err != nil {
				return fmt.Errorf("plots: Windows %q: series %q: %w", title, s.Name, err)
			}
			l.StepStyle = plotter.PostStep
			styleLine(&l.LineStyle, i)
			p.Add(l)
			if k == 0 && s.Name != "" {
				p.Legend.Add(s.Name, l)
				entries++
			}
			drawn++
		}
	}
	if drawn == 0 {
		return fmt.Errorf("plots: Windows %q: %w", title, ErrNoData)
	}
	p.X.Min, p.X.Max = 0, float64(n)*w
	p.Y.Min = min(p.Y.Min, 0)
	// Raise the top of the y axis so the legend, top right, sits above
	// the data: a legend entry takes about 15 pt of the roughly 210 pt
	// of data area.
	if entries > 0 {
		frac := min(0.5, (15*float64(entries)+10)/210)
		p.Y.Max += (p.Y.Max - p.Y.Min) * frac / (1 - frac)
	}
	placeLegend(p, true)
	return save(base, p)
}

// windowRuns splits v at its non-finite values into runs of steps for a
// PostStep line, window i at x = i·w, each run closed by a point at the
// end of its last window so that window is drawn full width.
func windowRuns(v []float64, w float64) []plotter.XYs {
	var runs []plotter.XYs
	var run plotter.XYs
	for i, y := range v {
		if !finite(y) {
			if run != nil {
				runs = append(runs, append(run, plotter.XY{X: float64(i) * w, Y: run[len(run)-1].Y}))
				run = nil
			}
			continue
		}
		run = append(run, plotter.XY{X: float64(i) * w, Y: y})
	}
	if run != nil {
		runs = append(runs, append(run, plotter.XY{X: float64(len(v)) * w, Y: run[len(run)-1].Y}))
	}
	return runs
}

// Scatter draws labelled points, such as each profile's bandwidth
// overhead (x) against a classifier's accuracy (y). Points with a NaN or
// ±Inf coordinate are left out. Unless refY is NaN, a dashed horizontal
// reference line (chance, for accuracy) is drawn at y = refY, within the
// y range, and named in the legend.
//
// Scatter returns an error wrapping [ErrNoData] if no point is finite,
// and an error if refY is ±Inf.
func Scatter(base, title, xlabel, ylabel string, refY float64, pts ...Point) error {
	if err := checkBase(base); err != nil {
		return err
	}
	if math.IsInf(refY, 0) {
		return fmt.Errorf("plots: Scatter %q: reference line at %v", title, refY)
	}
	var lab plotter.XYLabels
	for _, pt := range pts {
		if finite(pt.X) && finite(pt.Y) {
			lab.XYs = append(lab.XYs, plotter.XY{X: pt.X, Y: pt.Y})
			lab.Labels = append(lab.Labels, pt.Label)
		}
	}
	if len(lab.XYs) == 0 {
		return fmt.Errorf("plots: Scatter %q: %w", title, ErrNoData)
	}

	p := newPlot(title, xlabel, ylabel)
	s, err := plotter.NewScatter(lab.XYs)
	if err != nil {
		return fmt.Errorf("plots: Scatter %q: %w", title, err)
	}
	s.GlyphStyle = draw.GlyphStyle{Color: plotutil.Color(0), Radius: vg.Points(3), Shape: draw.CircleGlyph{}}
	labels, err := plotter.NewLabels(lab)
	if err != nil {
		return fmt.Errorf("plots: Scatter %q: %w", title, err)
	}
	labels.Offset = vg.Point{X: vg.Points(5), Y: vg.Points(-3)}
	p.Add(s, labels)
	if !math.IsNaN(refY) {
		ref := plotter.NewFunction(func(float64) float64 { return refY })
		ref.Color = color.Gray{Y: 96}
		ref.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
		p.Add(ref)
		p.Legend.Add("y = "+strconv.FormatFloat(refY, 'g', 4, 64), ref)
		p.Y.Min, p.Y.Max = min(p.Y.Min, refY), max(p.Y.Max, refY)
	}
	// Room for the labels right of the points and for the legend top
	// right, where a cost/leakage scatter is usually empty.
	dx, dy := p.X.Max-p.X.Min, p.Y.Max-p.Y.Min
	p.X.Min, p.X.Max = p.X.Min-0.05*dx, p.X.Max+0.15*dx
	p.Y.Min, p.Y.Max = p.Y.Min-0.05*dy, p.Y.Max+0.15*dy
	placeLegend(p, true)
	return save(base, p)
}

// newPlot returns a plot with a title, axis labels, a light grid and the
// font sizes of every figure.
func newPlot(title, xlabel, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(13)
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	p.Legend.TextStyle.Font.Size = vg.Points(11)
	p.Legend.ThumbnailWidth = vg.Points(30)
	g := plotter.NewGrid()
	g.Vertical.Color = color.Gray{Y: 224}
	g.Horizontal.Color = color.Gray{Y: 224}
	p.Add(g)
	return p
}

// placeLegend puts the legend in the right-hand corner at the top or the
// bottom of the data area, clear of its edges.
func placeLegend(p *plot.Plot, top bool) {
	p.Legend.Top, p.Legend.Left = top, false
	p.Legend.XOffs = -vg.Points(8)
	p.Legend.YOffs = vg.Points(6)
	if top {
		p.Legend.YOffs = -vg.Points(6)
	}
}

// styleLine gives the ith series its colour and dash pattern; the dashes
// tell the lines apart in greyscale print.
func styleLine(ls *draw.LineStyle, i int) {
	ls.Color = plotutil.Color(i)
	ls.Dashes = plotutil.Dashes(i)
	ls.Width = vg.Points(1.5)
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// checkBase rejects a base that names no file.
func checkBase(base string) error {
	if base == "" || strings.HasSuffix(base, "/") || strings.HasSuffix(base, string(filepath.Separator)) {
		return fmt.Errorf("plots: base %q names no file", base)
	}
	return nil
}

// save renders p as PNG and SVG and writes base+".png" and base+".svg".
func save(base string, p *plot.Plot) (err error) {
	// gonum panics on some input instead of returning an error (a log
	// axis over a non-positive range, for one). The checks above should
	// keep such input out; this keeps a missed case from taking down the
	// whole eval run.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("plots: drawing %s: %v", base, r)
		}
	}()
	var svg, png bytes.Buffer
	sc := vgsvg.New(figWidth, figHeight)
	p.Draw(draw.New(sc))
	if _, err := sc.WriteTo(&svg); err != nil {
		return fmt.Errorf("plots: rendering %s.svg: %w", base, err)
	}
	pc := vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(figWidth, figHeight), vgimg.UseDPI(pngDPI))}
	p.Draw(draw.New(pc))
	if _, err := pc.WriteTo(&png); err != nil {
		return fmt.Errorf("plots: rendering %s.png: %w", base, err)
	}

	if err := os.MkdirAll(filepath.Dir(base), 0o755); err != nil {
		return fmt.Errorf("plots: %w", err)
	}
	if err := os.WriteFile(base+".png", png.Bytes(), 0o644); err != nil {
		return fmt.Errorf("plots: %w", err)
	}
	if err := os.WriteFile(base+".svg", svg.Bytes(), 0o644); err != nil {
		return fmt.Errorf("plots: %w", err)
	}
	return nil
}
