package metrics

import (
	"slices"
	"testing"
	"time"

	"github.com/bip324pt/bip324-pt/schedule"
)

const (
	s  = schedule.DirSent
	r  = schedule.DirReceived
	ms = time.Millisecond
)

// trace is the small recording the trace tests share:
//
//	   0 ms  sent      100
//	  10 ms  received  200
//	  20 ms  sent       50 (padding)
//	 500 ms  received 1000
//	 510 ms  received 1000
//	1500 ms  sent       30
var trace = []schedule.TraceEvent{
	{Time: 0, Dir: s, Size: 100},
	{Time: 10 * ms, Dir: r, Size: 200},
	{Time: 20 * ms, Dir: s, Size: 50, Padding: true},
	{Time: 500 * ms, Dir: r, Size: 1000},
	{Time: 510 * ms, Dir: r, Size: 1000},
	{Time: 1500 * ms, Dir: s, Size: 30},
}

func TestSizes(t *testing.T) {
	for _, tc := range []struct {
		name string
		ev   []schedule.TraceEvent
		d    schedule.Direction
		want []float64
	}{
		{"sent", trace, s, []float64{100, 50, 30}},
		{"received", trace, r, []float64{200, 1000, 1000}},
		{"all", trace, 0, []float64{100, 200, 50, 1000, 1000, 30}},
		{"unknown direction", trace, 3, nil},
		{"empty", nil, s, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Sizes(tc.ev, tc.d); !slices.Equal(got, tc.want) {
				t.Errorf("Sizes(%v) = %v, want %v", tc.d, got, tc.want)
			}
		})
	}
}

func TestGaps(t *testing.T) {
	for _, tc := range []struct {
		name string
		ev   []schedule.TraceEvent
		d    schedule.Direction
		want []float64
	}{
		{"sent", trace, s, []float64{0.020, 1.480}},     // 20−0, 1500−20 ms
		{"received", trace, r, []float64{0.490, 0.010}}, // 500−10, 510−500 ms
		// 10−0, 20−10, 500−20, 510−500, 1500−510 ms
		{"all", trace, 0, []float64{0.010, 0.010, 0.480, 0.010, 0.990}},
		{"one event", trace[:1], 0, nil},
		{"empty", nil, 0, nil},
		{"same time", []schedule.TraceEvent{{Time: ms, Dir: s}, {Time: ms, Dir: s}}, s, []float64{0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Gaps(tc.ev, tc.d); !sameSlice(got, tc.want, 1e-12) {
				t.Errorf("Gaps(%v) = %v, want %v", tc.d, got, tc.want)
			}
		})
	}
}

func TestWindowBytes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		d      schedule.Direction
		w, end time.Duration
		want   []float64
	}{
		// [0,1s): 100+200+50+1000+1000; [1s,2s): 30.
		{"both, 1s", 0, time.Second, 2 * time.Second, []float64{2350, 30}},
		// ⌈1.5/1⌉ = 2 windows; the event at 1500 ms is at end and ignored.
		{"sent, end on an event", s, time.Second, 1500 * ms, []float64{150, 0}},
		// [0,500ms): 200; [500ms,1s): 1000+1000.
		{"received, 500ms", r, 500 * ms, time.Second, []float64{200, 2000}},
		// ⌈1600/700⌉ = 3 windows, the last [1400,1600) 200 ms long:
		// [0,700): 100+200+50+1000+1000; [700,1400): none; [1400,1600): 30.
		{"partial last window", 0, 700 * ms, 1600 * ms, []float64{2350, 0, 30}},
		{"end before all", 0, time.Second, 5 * ms, []float64{100}}, // only the event at 0
		{"w zero", 0, 0, time.Second, nil},
		{"w negative", 0, -ms, time.Second, nil},
		{"end zero", 0, ms, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := WindowBytes(trace, tc.d, tc.w, tc.end); !slices.Equal(got, tc.want) {
				t.Errorf("WindowBytes(%v, %v, %v) = %v, want %v", tc.d, tc.w, tc.end, got, tc.want)
			}
		})
	}
	t.Run("negative time", func(t *testing.T) {
		ev := []schedule.TraceEvent{{Time: -ms, Dir: s, Size: 9}, {Time: ms, Dir: s, Size: 1}}
		if got, want := WindowBytes(ev, 0, time.Second, time.Second), []float64{1}; !slices.Equal(got, want) {
			t.Errorf("WindowBytes = %v, want %v", got, want)
		}
	})
}

func TestBursts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ev    []schedule.TraceEvent
		d     schedule.Direction
		quiet time.Duration
		want  []Burst
	}{
		// Received at 10, 500, 510 ms: the 490 ms gap splits.
		{"received", trace, r, 100 * ms, []Burst{
			{Start: 10 * ms, End: 10 * ms, Bytes: 200, Events: 1},
			{Start: 500 * ms, End: 510 * ms, Bytes: 2000, Events: 2},
		}},
		// Gaps 10, 10, 480, 10, 990 ms: split at 480 and 990.
		{"all", trace, 0, 100 * ms, []Burst{
			{Start: 0, End: 20 * ms, Bytes: 350, Events: 3},
			{Start: 500 * ms, End: 510 * ms, Bytes: 2000, Events: 2},
			{Start: 1500 * ms, End: 1500 * ms, Bytes: 30, Events: 1},
		}},
		// A gap of exactly quiet joins: the same bursts as above.
		{"gap equals quiet", trace, 0, 10 * ms, []Burst{
			{Start: 0, End: 20 * ms, Bytes: 350, Events: 3},
			{Start: 500 * ms, End: 510 * ms, Bytes: 2000, Events: 2},
			{Start: 1500 * ms, End: 1500 * ms, Bytes: 30, Events: 1},
		}},
		// Every gap is longer than 9 ms: one burst per event.
		{"gap above quiet", trace[:3], 0, 9 * ms, []Burst{
			{Start: 0, End: 0, Bytes: 100, Events: 1},
			{Start: 10 * ms, End: 10 * ms, Bytes: 200, Events: 1},
			{Start: 20 * ms, End: 20 * ms, Bytes: 50, Events: 1},
		}},
		{"one burst", trace, s, time.Hour, []Burst{{Start: 0, End: 1500 * ms, Bytes: 180, Events: 3}}},
		{"empty", nil, s, time.Second, nil},
		{"none in direction", trace, 3, time.Second, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Bursts(tc.ev, tc.d, tc.quiet); !slices.Equal(got, tc.want) {
				t.Errorf("Bursts(%v, %v) = %+v, want %+v", tc.d, tc.quiet, got, tc.want)
			}
		})
	}
}

func TestBurstStats(t *testing.T) {
	bs := Bursts(trace, 0, 100*ms)
	sizes, gaps := BurstStats(bs)
	if want := []float64{350, 2000, 30}; !slices.Equal(sizes, want) {
		t.Errorf("sizes = %v, want %v", sizes, want)
	}
	// 500−20 ms and 1500−510 ms.
	if want := []float64{0.480, 0.990}; !sameSlice(gaps, want, 1e-12) {
		t.Errorf("gaps = %v, want %v", gaps, want)
	}

	sizes, gaps = BurstStats(bs[:1])
	if !slices.Equal(sizes, []float64{350}) || gaps != nil {
		t.Errorf("one burst: sizes %v, gaps %v; want [350], nil", sizes, gaps)
	}
	sizes, gaps = BurstStats(nil)
	if sizes != nil || gaps != nil {
		t.Errorf("no bursts: sizes %v, gaps %v; want nil, nil", sizes, gaps)
	}
}
