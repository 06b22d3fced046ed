package leak_test

import (
	"slices"
	"testing"
	"time"

	"github.com/bip324pt/bip324-pt/eval/leak"
	"github.com/bip324pt/bip324-pt/schedule"
)

func TestWindowFeatures(t *testing.T) {
	ms := time.Millisecond
	s, r := schedule.DirSent, schedule.DirReceived
	ev := []schedule.TraceEvent{
		{Time: 500 * ms, Dir: s, Size: 100}, // before the window
		{Time: 1000 * ms, Dir: s, Size: 100},
		{Time: 1050 * ms, Dir: s, Size: 200}, // same burst: 50 ms
		{Time: 1200 * ms, Dir: r, Size: 1500},
		{Time: 1300 * ms, Dir: s, Size: 600}, // new burst: 250 ms
		{Time: 1600 * ms, Dir: r, Size: 40},  // new burst: 400 ms
		{Time: 1650 * ms, Dir: r, Size: 40},
		{Time: 2000 * ms, Dir: s, Size: 999}, // after: the end is open
	}
	got := leak.WindowFeatures(ev, time.Second, time.Second, 2)
	want := []float64{
		900, 0, // bytes sent per bin
		1500, 80, // bytes received per bin
		3, 3, // writes sent, received
		0, 1, 1, 0, 1, 0, 0, 0, 0, // sizes sent: 100, 200, 600
		2, 0, 0, 0, 0, 0, 1, 0, 0, // sizes received: 40, 40, 1500
		2, 450, 600, // bursts sent: {100+200}, {600}
		2, 790, 1500, // bursts received: {1500}, {40+40}
	}
	if !slices.Equal(got, want) {
		t.Errorf("WindowFeatures =\n%v, want\n%v", got, want)
	}
	for _, bins := range []int{1, 2, 20} {
		f := leak.WindowFeatures(ev, time.Second, time.Second, bins)
		if len(f) != 2*bins+26 {
			t.Errorf("bins %d: %d features, want %d", bins, len(f), 2*bins+26)
		}
		if old := leak.Features(ev, time.Second, time.Second, bins); !slices.Equal(f[:len(old)], old) {
			t.Errorf("bins %d: WindowFeatures doesn't start with Features: %v, %v", bins, f, old)
		}
	}
	if f := leak.WindowFeatures(nil, 0, time.Second, 3); len(f) != 32 || slices.Max(f) != 0 || slices.Min(f) != 0 {
		t.Errorf("empty window: %v, want 32 zeros", f)
	}
}
