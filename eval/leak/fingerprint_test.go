package leak_test

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/bip324pt/bip324-pt/eval/leak"
	"github.com/bip324pt/bip324-pt/schedule"
)

func TestCUMUL(t *testing.T) {
	s, r := schedule.DirSent, schedule.DirReceived
	ev := []schedule.TraceEvent{
		{Time: 0, Dir: s, Size: 100},
		{Time: 1, Dir: r, Size: 500},
		{Time: 2, Dir: r, Size: 500},
		{Time: 3, Dir: s, Size: 50},
	}
	// Cumulative sums 100, -400, -900, -850 at indices 0..3.
	for _, c := range []struct {
		n    int
		want []float64
	}{
		{4, []float64{2, 2, 1000, 150, 100, -400, -900, -850}},
		// Indices 0, 0.5, 1, ..., 3.
		{7, []float64{2, 2, 1000, 150, 100, -150, -400, -650, -900, -875, -850}},
		// Indices 0, 1.5, 3.
		{3, []float64{2, 2, 1000, 150, 100, -650, -850}},
		{1, []float64{2, 2, 1000, 150, -850}},
		{0, []float64{2, 2, 1000, 150}},
	} {
		if got := leak.CUMUL(ev, c.n); !slices.Equal(got, c.want) {
			t.Errorf("CUMUL(n=%d) = %v, want %v", c.n, got, c.want)
		}
	}
	if got := leak.CUMUL(ev[:1], 3); !slices.Equal(got, []float64{0, 1, 0, 100, 100, 100, 100}) {
		t.Errorf("CUMUL of one packet = %v", got)
	}
	if got := leak.CUMUL(nil, 2); !slices.Equal(got, make([]float64, 6)) {
		t.Errorf("CUMUL of nothing = %v", got)
	}
}

func TestAugment(t *testing.T) {
	tr := make([]schedule.TraceEvent, 1000)
	for i := range tr {
		tr[i] = schedule.TraceEvent{Time: time.Duration(i) * 10 * time.Millisecond, Dir: schedule.Direction(1 + i%2), Size: 514}
	}
	loads := leak.Augment(tr, 20, 9)
	if len(loads) != 20 {
		t.Fatalf("%d loads, want 20", len(loads))
	}
	for k, l := range loads {
		// 1000 events, 2 % lost and 2 % repeated: 1000 ± 2*sqrt(40).
		if len(l) < 960 || len(l) > 1040 {
			t.Errorf("load %d: %d events, want 1000 ± 40", k, len(l))
		}
		for i := 1; i < len(l); i++ {
			if l[i].Time < l[i-1].Time {
				t.Fatalf("load %d: time goes back at event %d", k, i)
			}
		}
		// The span stretches by the speed, within [0.8, 1.25].
		ratio := float64(l[len(l)-1].Time) / float64(tr[len(tr)-1].Time)
		if ratio < 0.79 || ratio > 1.26 {
			t.Errorf("load %d stretched %.3f, want 0.8..1.25", k, ratio)
		}
	}
	again := leak.Augment(tr, 20, 9)
	for k := range loads {
		if !slices.Equal(loads[k], again[k]) {
			t.Fatalf("Augment from one seed differs at load %d", k)
		}
	}
	if slices.Equal(loads[0], loads[1]) {
		t.Error("two loads are the same")
	}
}

// loadTraces reads the traces of one folder of testdata/traces.
func loadTraces(t *testing.T, dir string) [][]schedule.TraceEvent {
	files, _ := filepath.Glob(filepath.Join("../../testdata/traces", dir, "*.log"))
	sort.Strings(files)
	var out [][]schedule.TraceEvent
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := schedule.ParseTrace(f)
		f.Close()
		if err != nil || len(ev) == 0 {
			t.Fatalf("%s: %d events, %v", name, len(ev), err)
		}
		out = append(out, ev)
	}
	return out
}

// TestFingerprint fingerprints 14 sites (data-df-wflib, one real load
// each, augmented to 10), chance 1/14: undefended, CUMUL and a 1-NN must
// name most; through a perfect defence, a constant-rate stream of one
// length for every site, they must not.
func TestFingerprint(t *testing.T) {
	traces := loadTraces(t, "data-df-wflib")
	if len(traces) != 14 {
		t.Fatalf("%d traces in data-df-wflib, want 14", len(traces))
	}
	const perSite = 10
	var loads [][]schedule.TraceEvent
	var site []int
	for s, tr := range traces {
		for _, l := range leak.Augment(tr, perSite, uint64(s)) {
			loads = append(loads, l)
			site = append(site, s)
		}
	}
	res := leak.Fingerprint(loads, site, len(traces), 5, 1, 1)
	t.Logf("undefended: %v", res)
	if res.Accuracy <= 0.5 {
		t.Errorf("undefended: accuracy %.2f, want > 0.5", res.Accuracy)
	}

	// The perfect defence: every load becomes 2000 cells of 514 bytes,
	// one each 5 ms, each way at random, whatever the site. Accuracy is a
	// binomial share of 140 at 1/14, sd 0.02: 0.25 is 8 sd above chance.
	r := rand.New(rand.NewPCG(5, 5))
	for i := range loads {
		cbr := make([]schedule.TraceEvent, 2000)
		for j := range cbr {
			cbr[j] = schedule.TraceEvent{Time: time.Duration(j) * 5 * time.Millisecond, Dir: schedule.Direction(1 + r.IntN(2)), Size: 514}
		}
		loads[i] = cbr
	}
	res = leak.Fingerprint(loads, site, len(traces), 5, 1, 1)
	t.Logf("constant rate: %v", res)
	if res.Accuracy >= 0.25 {
		t.Errorf("perfect defence: accuracy %.2f, want < 0.25", res.Accuracy)
	}
}
