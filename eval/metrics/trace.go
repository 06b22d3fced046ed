package metrics

import (
	"time"

	"github.com/bip324pt/bip324-pt/schedule"
)

// selected reports whether e is in direction d, every event if d == 0.
func selected(e schedule.TraceEvent, d schedule.Direction) bool {
	return d == 0 || e.Dir == d
}

// Sizes returns the sizes in bytes of the events in direction d (all if
// d == 0), in trace order; nil if there are none.
func Sizes(ev []schedule.TraceEvent, d schedule.Direction) []float64 {
	var s []float64
	for _, e := range ev {
		if selected(e, d) {
			s = append(s, float64(e.Size))
		}
	}
	return s
}

// Gaps returns the inter-arrival times in seconds between consecutive
// events of direction d (all if d == 0): n−1 values for n events, nil if
// n < 2.
func Gaps(ev []schedule.TraceEvent, d schedule.Direction) []float64 {
	var g []float64
	var prev time.Duration
	seen := false
	for _, e := range ev {
		if !selected(e, d) {
			continue
		}
		if seen {
			g = append(g, (e.Time - prev).Seconds())
		}
		prev, seen = e.Time, true
	}
	return g
}

// WindowBytes sums the sizes of the events in direction d (0 = both) per
// window of length w: window k covers [k·w, (k+1)·w), and there are
// ⌈end/w⌉ of them, so the last may be shorter than w. Events before 0 or
// at or after end are ignored. It returns nil if w <= 0 or end <= 0.
func WindowBytes(ev []schedule.TraceEvent, d schedule.Direction, w, end time.Duration) []float64 {
	if w <= 0 || end <= 0 {
		return nil
	}
	n := end / w
	if end%w != 0 {
		n++
	}
	b := make([]float64, n)
	for _, e := range ev {
		if selected(e, d) && e.Time >= 0 && e.Time < end {
			b[e.Time/w] += float64(e.Size)
		}
	}
	return b
}

// Burst is a run of events of one direction (or of both, from
// [Bursts] with d == 0) with no gap longer than quiet between consecutive
// events.
type Burst struct {
	Start, End time.Duration // times of the first and the last event
	Bytes      int64         // sum of the events' sizes
	Events     int           // number of events, >= 1
}

// Bursts splits the events of direction d (all if d == 0) into bursts: a
// gap between consecutive events longer than quiet (quiet > 0) starts a
// new burst; a gap of exactly quiet does not. It returns nil if there are
// no events.
func Bursts(ev []schedule.TraceEvent, d schedule.Direction, quiet time.Duration) []Burst {
	var bs []Burst
	for _, e := range ev {
		if !selected(e, d) {
			continue
		}
		if n := len(bs); n > 0 && e.Time-bs[n-1].End <= quiet {
			b := &bs[n-1]
			b.End = e.Time
			b.Bytes += int64(e.Size)
			b.Events++
			continue
		}
		bs = append(bs, Burst{Start: e.Time, End: e.Time, Bytes: int64(e.Size), Events: 1})
	}
	return bs
}

// BurstStats returns each burst's size in bytes, and the gaps in seconds
// between the end of one burst and the start of the next (len(bs)−1 of
// them). Both are nil if bs is empty; gaps is nil for a single burst.
func BurstStats(bs []Burst) (sizes, gaps []float64) {
	for i, b := range bs {
		sizes = append(sizes, float64(b.Bytes))
		if i > 0 {
			gaps = append(gaps, (b.Start - bs[i-1].End).Seconds())
		}
	}
	return sizes, gaps
}
