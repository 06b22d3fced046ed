package eval

import (
	"context"
	"testing"
	"time"
)

// TestBlocks_CBRHidesBlockArrivals: the block-arrival detector of
// research on BIP324 traffic (a second whose bytes exceed twice the
// rolling 60 s mean marks an event; DESIGN.md: it finds 80-93 % of block
// arrivals on plain BIP324 links) against a node's link (the bitcoin
// workload: invs, transactions, pings and 1-2 MB blocks) carried by a
// bip324-pt tunnel, as "node proxy --bridge" carries a node's
// connection: unshaped (none) it finds most blocks; through cbr at most
// 5 %. A fixed seed; the figures and what cbr costs go to the log and
// BENCHMARKS.md.
func TestBlocks_CBRHidesBlockArrivals(t *testing.T) {
	if testing.Short() {
		t.Skip("two minutes of node traffic through real tunnels; runs without -short")
	}
	cfg := Config{Profiles: []string{"none", "cbr"}, Workloads: []string{"bitcoin"}, Runs: 2, Duration: 90 * time.Second, Seed: 3, Parallel: 4}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*ProfileReport{}
	for _, p := range rep.Profiles {
		got[p.Profile] = p
		t.Logf("%s: %d runs (%d failed), blocks detected %.2f, overhead up %.1f down %.1f", p.Profile, p.Runs, p.Failed,
			float64(p.Blocks), float64(p.OverheadUp), float64(p.OverheadDown))
	}
	none, cbr := got["none"], got["cbr"]
	if none == nil || cbr == nil || none.Failed > 0 || cbr.Failed > 0 {
		t.Fatalf("runs failed: %+v", rep.Runs)
	}
	blocks := 0
	for _, r := range rep.Runs {
		blocks += len(r.Blocks)
	}
	if blocks < 4 {
		t.Fatalf("only %d blocks in the runs; the test needs some", blocks)
	}
	if !(none.Blocks >= 0.5) {
		t.Errorf("unshaped, the detector found %.2f of the blocks; want most (the research: 0.80-0.93)", float64(none.Blocks))
	}
	if !(cbr.Blocks <= 0.05) {
		t.Errorf("through cbr, the detector found %.2f of the blocks; want at most 0.05", float64(cbr.Blocks))
	}
}
