package metrics_test

import (
	"fmt"
	"time"

	"github.com/bip324pt/bip324-pt/eval/metrics"
	"github.com/bip324pt/bip324-pt/schedule"
)

// A recording's received bursts, and the median burst size.
func Example() {
	ms := time.Millisecond
	ev := []schedule.TraceEvent{
		{Time: 0, Dir: schedule.DirSent, Size: 100},
		{Time: 10 * ms, Dir: schedule.DirReceived, Size: 200},
		{Time: 500 * ms, Dir: schedule.DirReceived, Size: 1000},
		{Time: 510 * ms, Dir: schedule.DirReceived, Size: 1000},
		{Time: 2 * time.Second, Dir: schedule.DirReceived, Size: 600},
	}
	bs := metrics.Bursts(ev, schedule.DirReceived, 100*ms)
	sizes, gaps := metrics.BurstStats(bs)
	fmt.Println("bursts:", sizes, "gaps (s):", gaps)
	fmt.Println("median burst:", metrics.Quantile(sizes, 0.5))
	fmt.Printf("overhead: %.2f\n", metrics.Overhead(2900, 2500))
	// Output:
	// bursts: [200 2000 600] gaps (s): [0.49 1.49]
	// median burst: 600
	// overhead: 0.16
}
