package eval

import (
	"context"
	"encoding/json"
	"math"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bip324pt/bip324-pt/schedule"
)

func TestParseLink(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Link
		err  bool
	}{
		{"", Link{}, false},
		{"20mbit,40ms", Link{Rate: 2_500_000, Delay: 40 * time.Millisecond}, false},
		{"40ms", Link{Delay: 40 * time.Millisecond}, false},
		{"800kbit", Link{Rate: 100_000}, false},
		{"1gbit, 1ms", Link{Rate: 125_000_000, Delay: time.Millisecond}, false},
		{"0,5ms", Link{Delay: 5 * time.Millisecond}, false},
		{"20mb,40ms", Link{}, true},
		{"fast", Link{}, true},
		{"-1mbit", Link{}, true},
		{"2m", Link{}, true}, // a delay over a minute
	} {
		got, err := ParseLink(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseLink(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// TestLink_DelayAndRate: through a link of 8 Mbit/s (1 MB/s) and 30 ms,
// a byte arrives after at least 30 ms and 200 kB after at least 200 ms.
func TestLink_DelayAndRate(t *testing.T) {
	ctx := context.Background()
	ln := listen(t)
	l := Link{Rate: 1_000_000, Delay: 30 * time.Millisecond}
	lln, err := listenLink(ctx, l, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer lln.Close()
	c := dial(t, lln.Addr().String())
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	c.Write([]byte{1})
	buf := make([]byte, 1)
	if _, err := s.Read(buf); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("a byte arrived after %v, want at least 30ms", d)
	}
	start = time.Now()
	go func() { c.Write(make([]byte, 200_000)); c.Close() }()
	n := 0
	big := make([]byte, 64<<10)
	for {
		k, err := s.Read(big)
		n += k
		if err != nil {
			break
		}
	}
	if d := time.Since(start); n != 200_000 || d < 200*time.Millisecond {
		t.Errorf("200 kB: %d bytes in %v, want all in at least 200ms", n, d)
	}
}

// TestShard: the shards of a matrix are disjoint and together are the
// matrix; the reference model joins campaigns with a bitcoin profile.
func TestShard(t *testing.T) {
	cfg := Config{Profiles: []string{"none", "bitcoin"}, Workloads: []string{"web", "idle"}, Runs: 5}.withDefaults()
	all := cfg.matrix()
	if want := 2*2*5 + 5; len(all) != want {
		t.Fatalf("matrix of %d runs, want %d (with the reference's 5)", len(all), want)
	}
	if all[len(all)-1].Profile != ReferenceProfile {
		t.Errorf("last run %+v, want the reference model", all[len(all)-1])
	}
	seen := map[job]int{}
	for k := 1; k <= 3; k++ {
		c := cfg
		c.Shard, c.Shards = k, 3
		for _, j := range c.shard(all) {
			seen[j]++
		}
	}
	if len(seen) != len(all) {
		t.Errorf("shards hold %d runs, want %d", len(seen), len(all))
	}
	for j, n := range seen {
		if n != 1 {
			t.Errorf("%+v in %d shards", j, n)
		}
	}
	if seedOf(1, all[0]) == seedOf(1, all[1]) || seedOf(1, all[0]) == seedOf(2, all[0]) || seedOf(1, all[0]) != seedOf(1, all[0]) {
		t.Error("run seeds are not distinct per run and campaign seed, or not fixed")
	}
}

func TestConfig_Check(t *testing.T) {
	for _, c := range []Config{
		{Runs: -1}, {Duration: time.Millisecond}, {Profiles: []string{"nosuch"}}, {Workloads: []string{"ftp"}},
		{Shard: 2, Shards: 1}, {Shard: 1}, {Profiles: []string{"cbr", "cbr"}},
	} {
		if err := c.withDefaults().check(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	if err := (Config{}).withDefaults().check(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// TestReport_Figures: the report's cost figures from runs made by hand.
func TestReport_Figures(t *testing.T) {
	cfg := Config{Profiles: []string{"cbr"}, Workloads: []string{"bulk", "idle"}, Runs: 2, Duration: 4 * time.Second}.withDefaults()
	ev := func(sizes ...int) []schedule.TraceEvent {
		var out []schedule.TraceEvent
		for i, s := range sizes {
			out = append(out, schedule.TraceEvent{Time: time.Duration(i) * 100 * time.Millisecond, Dir: schedule.DirReceived, Size: s})
		}
		return out
	}
	runs := []*RunResult{
		// bulk: 1000 up and 3000 down of data on 1500 and 4500 wire.
		{Profile: "cbr", Workload: "bulk", Run: 0, Up: 1000, Down: 3000, WireUp: 1500, WireDown: 4500, DecoyUp: 100, DecoyDown: 200,
			Completion: 2 * time.Second, DelaysUp: []time.Duration{time.Second, 3 * time.Second}, Wire: ev(1448, 1448), Site: -1},
		{Profile: "cbr", Workload: "bulk", Run: 1, Up: 1000, Down: 1000, WireUp: 1500, WireDown: 1500, Completion: 2 * time.Second, Site: -1},
		{Profile: "cbr", Workload: "idle", Run: 0, WireUp: 700, WireDown: 700, Site: -1},
		{Profile: "cbr", Workload: "idle", Run: 1, Err: "failed", Site: -1},
	}
	rep := buildReport(cfg, runs, nil, 0)
	p := rep.Profiles[0]
	// Goodput: (2000+4000+... ) bulk bytes 1000+3000+1000+1000 = 6000 in 4 s.
	// Overhead up: 3000/2000 - 1 = 0.5; down: 6000/4000 - 1 = 0.5.
	// Decoys: 300 of 1500+4500+1500+1500+700+700 = 10400.
	// Delays up: p50 of {1, 3} = 2 s; p90 = 1 + 0.9·2 = 2.8 s.
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"goodput", float64(p.GoodputBulk), 1500},
		{"overhead up", float64(p.OverheadUp), 0.5},
		{"overhead down", float64(p.OverheadDown), 0.5},
		{"decoy share", float64(p.DecoyShare), 300.0 / 10400},
		{"delay up p50", float64(p.DelayUpP50), 2},
		{"delay up p90", float64(p.DelayUpP90), 2.8},
		{"bulk completion", float64(p.Completion["bulk"]), 2},
	} {
		if math.Abs(c.got-c.want) > 1e-9 {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if p.Runs != 4 || p.Failed != 1 {
		t.Errorf("runs %d failed %d, want 4 and 1", p.Runs, p.Failed)
	}
	if !math.IsNaN(float64(p.DelayDownP50)) || !math.IsNaN(float64(p.Leakage)) {
		t.Errorf("figures without data: delay down %v, leakage %v; want NaN", p.DelayDownP50, p.Leakage)
	}
	md := rep.Markdown()
	for _, want := range []string{"| overhead up (wire/data - 1) | 0.50 |", "| bulk goodput, both ways (MB/s) | 0.00 |", "n/a"} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	if b, err := json.Marshal(rep); err != nil || !strings.Contains(string(b), `"delay_down_p50_s":null`) {
		t.Errorf("results.json: %v, NaN not null: %.300s", err, b)
	}
}

// TestRun_EndToEnd: a small campaign over real TCP writes its report,
// plots, traces and runs; the same seed makes the same shaping
// decisions (video's requests); shards merged are the whole campaign.
func TestRun_EndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("real tunnels for several seconds; runs without -short")
	}
	dir := t.TempDir()
	cfg := Config{Profiles: []string{"none", "video"}, Workloads: []string{"interactive", "idle"}, Runs: 2,
		Duration: 1500 * time.Millisecond, Out: filepath.Join(dir, "all"), Seed: 7}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"report.md", "results.json", "plots/video-sizes.png", "plots/video-sizes.svg", "plots/overhead-vs-leakage.svg",
		"traces/video_idle_000.wire", "traces/video_interactive_001.app", "runs/none_idle_001.json"} {
		if st, err := os.Stat(filepath.Join(cfg.Out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	if len(rep.Profiles) != 2 || rep.Profiles[0].Runs != 4 || rep.Profiles[0].Failed != 0 || rep.Profiles[1].Failed != 0 {
		t.Fatalf("report: %+v", rep.Profiles)
	}
	if p := rep.Profiles[1]; !(p.DelayUpP50 > 0) || !(p.OverheadDown > 0) {
		t.Errorf("video: delay %v, overhead down %v", p.DelayUpP50, p.OverheadDown)
	}
	if p := float64(rep.ChiControlP); p > 1e-6 {
		t.Errorf("chi-square control p = %v, want tiny", p)
	}

	// Same seed, same requests from the video client (their sizes are
	// drawn from the seed); another seed, others.
	requests := func(dir string) []int {
		r, err := LoadRuns(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range r {
			if x.Profile == "video" && x.Workload == "idle" && x.Run == 0 {
				var out []int
				for _, e := range x.Wire {
					if e.Dir == schedule.DirSent && len(out) < 6 {
						out = append(out, e.Size)
					}
				}
				return out
			}
		}
		t.Fatal("no video idle run")
		return nil
	}
	again := cfg
	again.Profiles, again.Workloads, again.Out = []string{"video"}, []string{"idle"}, filepath.Join(dir, "again")
	if _, err := Run(context.Background(), again); err != nil {
		t.Fatal(err)
	}
	other := again
	other.Seed, other.Out = 8, filepath.Join(dir, "other")
	if _, err := Run(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	a, b, c := requests(cfg.Out), requests(again.Out), requests(other.Out)
	// The first two writes are the handshake, whose garbage is random.
	if !slices.Equal(a[2:], b[2:]) || slices.Equal(a[2:], c[2:]) {
		t.Errorf("video client writes: seed 7 %v and %v, seed 8 %v; want the first two equal, the third different", a, b, c)
	}

	// Two shards, merged: every run of the campaign once.
	var dirs []string
	for k := 1; k <= 2; k++ {
		s := cfg
		s.Shard, s.Shards, s.Out = k, 2, filepath.Join(dir, "shard", string(rune('0'+k)))
		if _, err := Run(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, s.Out)
	}
	m, err := Merge(filepath.Join(dir, "merged"), dirs, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Runs) != 8 || len(m.Profiles) != 2 {
		t.Errorf("merged: %d runs in %d profiles, want 8 in 2", len(m.Runs), len(m.Profiles))
	}
	if _, err := Merge(filepath.Join(dir, "bad"), []string{dirs[0], cfg.Out}, ""); err == nil {
		t.Error("merging directories that share runs: no error")
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestReport_ShapeAndClassifiers: the report's shape, handshake and
// classifier figures from runs made by hand. Idle runs write 1448-byte
// cells every 10 ms; web runs 500-byte writes every 10 ms, bulk runs
// nothing in the middle. KS of sizes is then 1 (disjoint), Wasserstein-1
// 948 bytes, the inter-arrival distance 0 (same gaps); the workloads are
// told apart perfectly; an ASCII first flight is exempt from the FET rule
// and a zero one is not.
func TestReport_ShapeAndClassifiers(t *testing.T) {
	cfg := Config{Profiles: []string{"cbr"}, Workloads: []string{"idle", "web", "bulk"}, Runs: 7, Duration: 4 * time.Second}.withDefaults()
	stream := func(size int) []schedule.TraceEvent {
		var out []schedule.TraceEvent
		for i := range 400 {
			out = append(out, schedule.TraceEvent{Time: time.Duration(i) * 10 * time.Millisecond, Dir: schedule.DirReceived, Size: size})
		}
		return out
	}
	ascii := []byte(strings.Repeat("GET /index.html HTTP/1.1 Host: example.org ", 4))
	random := func(seed byte) []byte {
		b := make([]byte, 100)
		mrand.NewChaCha8([32]byte{seed}).Read(b)
		return b
	}
	var runs []*RunResult
	for r := range 7 {
		runs = append(runs,
			&RunResult{Profile: "cbr", Workload: "idle", Run: r, Wire: stream(1448), Site: -1, Start: time.Nanosecond, FirstFlight: random(byte(2 * r))},
			&RunResult{Profile: "cbr", Workload: "web", Run: r, Wire: stream(500), Site: -1, Start: time.Nanosecond, FirstFlight: ascii},
			&RunResult{Profile: "cbr", Workload: "bulk", Run: r, Site: -1, Start: time.Nanosecond, FirstFlight: random(byte(2*r + 1))})
	}
	p := buildReport(cfg, runs, nil, 0).Profiles[0]
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"KS sizes", float64(p.KSSize), 1},
		{"W1 sizes", float64(p.W1Size), 948},
		{"KS gaps", float64(p.KSGap), 0},
		{"rate CV down", float64(p.RateCVDn), 0},
		{"leakage", float64(p.Leakage), 1},
		{"chance", float64(p.Chance), 1.0 / 3},
		{"AUC busy against idle", float64(p.TargetAUC), 1},
	} {
		if math.Abs(c.got-c.want) > 1e-9 {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if p.FETExempt != 7 || p.FETTotal != 21 {
		t.Errorf("FET: %d of %d exempt, want 7 of 21 (the ASCII flights)", p.FETExempt, p.FETTotal)
	}
	if !(p.ChiP < 1e-6) {
		t.Errorf("chi-square p %v with a third of the flights ASCII, want tiny", p.ChiP)
	}
}
