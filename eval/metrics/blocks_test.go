package metrics

import (
	"math"
	"slices"
	"testing"
)

func TestBlockArrivals(t *testing.T) {
	for _, tc := range []struct {
		name      string
		perSecond []float64
		window    int
		want      []int
	}{
		// window 3, x = 10 10 10 50 10 0 0 0 5 100:
		//  i=1 mean(10) = 10: 10 > 20 no
		//  i=2 mean(10 10) = 10: no
		//  i=3 mean(10 10 10) = 10: 50 > 20 yes
		//  i=4 mean(10 10 50) = 23.3: no;  i=5 mean(10 50 10): 0 no
		//  i=6 mean(50 10 0): 0 no;        i=7 mean(10 0 0) = 3.3: 0 no
		//  i=8 mean(0 0 0) = 0: 5 > 0 yes
		//  i=9 mean(0 0 5) = 5/3: 100 > 10/3 yes
		{"rolling", []float64{10, 10, 10, 50, 10, 0, 0, 0, 5, 100}, 3, []int{3, 8, 9}},
		// i < window: the mean of what exists, here mean(1) = 1 and 3 > 2.
		{"short history", []float64{1, 3}, 60, []int{1}},
		{"exactly twice", []float64{10, 20}, 60, nil},         // 20 > 20 no
		{"just above twice", []float64{10, 21}, 60, []int{1}}, // 21 > 20
		// Second 0 is never flagged; after silence any bytes are.
		// i=1 mean(500): no; i=2 mean(500 0) = 250: no; i=3 with window 60,
		// mean(500 0 0) = 166.7: 1 no; with window 2, mean(0 0) = 0: 1 > 0.
		{"busy start, window 60", []float64{500, 0, 0, 1}, 60, nil},
		{"busy start, window 2", []float64{500, 0, 0, 1}, 2, []int{3}},
		{"silence then bytes", []float64{0, 0, 1}, 2, []int{2}}, // i=2: mean(0 0) = 0, 1 > 0
		{"silence stays silent", []float64{0, 0, 0}, 2, nil},
		// window 1: each second against the one before.
		{"window 1", []float64{4, 9, 18, 37}, 1, []int{1, 3}}, // 9 > 8, 18 > 18 no, 37 > 36
		{"empty", nil, 60, nil},
		{"window zero", []float64{0, 100}, 0, nil},
		{"window negative", []float64{0, 100}, -1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := BlockArrivals(tc.perSecond, tc.window); !slices.Equal(got, tc.want) {
				t.Errorf("BlockArrivals(%v, %d) = %v, want %v", tc.perSecond, tc.window, got, tc.want)
			}
		})
	}
}

// TestBlockArrivals_reference checks the running sum against the
// definition, recomputed for every second.
func TestBlockArrivals_reference(t *testing.T) {
	x := make([]float64, 500)
	for i := range x {
		x[i] = float64((i * 7919) % 97) // deterministic, bursty enough
		if i%37 == 0 {
			x[i] += 1000
		}
	}
	for _, window := range []int{1, 2, 5, 60, 600} {
		var want []int
		for i := 1; i < len(x); i++ {
			var sum float64
			h := x[max(0, i-window):i]
			for _, v := range h {
				sum += v
			}
			if x[i] > 2*sum/float64(len(h)) {
				want = append(want, i)
			}
		}
		if got := BlockArrivals(x, window); !slices.Equal(got, want) {
			t.Errorf("window %d: got %v, want %v", window, got, want)
		}
	}
}

func TestDetectionRate(t *testing.T) {
	detected := []int{9, 3, 8} // unsorted on purpose
	truth := []int{2, 5, 9, 20}
	for _, tc := range []struct {
		name            string
		detected, truth []int
		tol             int
		want            float64
	}{
		// 2: 3 is 1 away, yes; 5: nearest 3 (2) or 8 (3), no; 9: yes; 20: no.
		{"tol 1", detected, truth, 1, 2.0 / 4},
		{"tol 0", detected, truth, 0, 1.0 / 4},   // only 9
		{"tol 2", detected, truth, 2, 3.0 / 4},   // 5 now matches 3
		{"tol 11", detected, truth, 11, 4.0 / 4}, // 20 − 9 = 11
		{"duplicates count", detected, []int{9, 9, 30}, 0, 2.0 / 3},
		{"detection before truth", []int{10}, []int{12}, 2, 1},
		{"no detections", nil, truth, 5, 0},
		{"negative tol", detected, truth, -1, 0},
		{"no truth", detected, nil, 1, math.NaN()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := DetectionRate(tc.detected, tc.truth, tc.tol); !same(got, tc.want, 1e-12) {
				t.Errorf("DetectionRate(%v, %v, %d) = %v, want %v", tc.detected, tc.truth, tc.tol, got, tc.want)
			}
		})
	}
	if !slices.Equal(detected, []int{9, 3, 8}) {
		t.Errorf("DetectionRate modified detected: %v", detected)
	}
}
