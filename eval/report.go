package eval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bip324pt/bip324-pt/eval/leak"
	"github.com/bip324pt/bip324-pt/eval/metrics"
	"github.com/bip324pt/bip324-pt/eval/plots"
	"github.com/bip324pt/bip324-pt/schedule"
)

// Num is a figure of the report; NaN (not measured, or not defined for
// the profile) is null in JSON and "n/a" in the tables.
type Num float64

// MarshalJSON writes NaN and infinities as null.
func (n Num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f, 'g', 6, 64), nil
}

// UnmarshalJSON reads null as NaN.
func (n *Num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = Num(math.NaN())
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	*n = Num(f)
	return err
}

func nan() Num { return Num(math.NaN()) }

// ProfileReport holds one profile's figures; the package doc defines
// each.
type ProfileReport struct {
	Profile string `json:"profile"`
	Runs    int    `json:"runs"`
	Failed  int    `json:"failed"`

	GoodputBulk  Num `json:"goodput_bulk_bytes_per_s"`
	OverheadUp   Num `json:"overhead_up"`
	OverheadDown Num `json:"overhead_down"`
	DecoyShare   Num `json:"decoy_share"`
	DelayUpP50   Num `json:"delay_up_p50_s"`
	DelayUpP90   Num `json:"delay_up_p90_s"`
	DelayDownP50 Num `json:"delay_down_p50_s"`
	DelayDownP90 Num `json:"delay_down_p90_s"`
	// Completion is the mean completion time per finite workload (bulk,
	// web), and against none's.
	Completion       map[string]Num `json:"completion_s"`
	CompletionVsNone map[string]Num `json:"completion_vs_none"`
	Dropped          int64          `json:"dropped"`

	KSSize    Num `json:"ks_size"`
	W1Size    Num `json:"w1_size_bytes"`
	KSGap     Num `json:"ks_gap"`
	W1Gap     Num `json:"w1_gap_s"`
	RateCVUp  Num `json:"rate_cv_up"`
	RateCVDn  Num `json:"rate_cv_down"`
	BurstP50  Num `json:"burst_bytes_p50"`
	BurstGap  Num `json:"burst_gap_p50_s"`
	FETExempt int `json:"fet_exempt"`
	FETTotal  int `json:"fet_total"`
	ChiStat   Num `json:"chi2_stat"`
	ChiP      Num `json:"chi2_p"`
	Blocks    Num `json:"block_detection_rate"`

	Leakage     Num `json:"leakage_accuracy"`
	Chance      Num `json:"leakage_chance"`
	TargetAUC   Num `json:"auc_vs_target"`
	CoreAUC     Num `json:"auc_vs_core_model"`
	WF          Num `json:"wf_accuracy"`
	WFChance    Num `json:"wf_chance"`
	WFInstances int `json:"wf_instances_per_site"`
}

// Report is a campaign's result.
type Report struct {
	Config   configJSON       `json:"config"`
	Elapsed  string           `json:"elapsed"`
	Profiles []*ProfileReport `json:"profiles"`
	// ChiControlP is the chi-square test's p-value on a control that
	// must fail it (ASCII text flights): the test can tell.
	ChiControlP Num `json:"chi2_control_p"`
	// WFUndefended is the fingerprinting accuracy on the same sites'
	// page loads without a tunnel (augmented instances of the traces).
	WFUndefended Num          `json:"wf_undefended_accuracy"`
	Notes        []string     `json:"notes"`
	Runs         []*RunResult `json:"runs"`

	cfg  Config
	runs []*RunResult
}

// chiMinBytes is the least the chi-square test of 256 byte values
// needs (5 expected per value).
const chiMinBytes = 1280

// Classifier settings.
const (
	forestTrees = 50
	leakBins    = 10
	wfCUMULk    = 3
)

// buildReport computes every figure from the runs.
func buildReport(cfg Config, runs []*RunResult, traces [][]schedule.TraceEvent, elapsed time.Duration) *Report {
	runs = slices.Clone(runs)
	slices.SortStableFunc(runs, func(a, b *RunResult) int { return strings.Compare(runName(a), runName(b)) })
	rep := &Report{Config: jsonConfig(cfg), cfg: cfg, runs: runs, Runs: runs,
		WFUndefended: nan(), ChiControlP: nan()}
	if elapsed > 0 {
		rep.Elapsed = elapsed.Round(time.Millisecond).String()
	}
	byProfile := map[string][]*RunResult{}
	var order []string
	for _, r := range runs {
		if _, ok := byProfile[r.Profile]; !ok {
			order = append(order, r.Profile)
		}
		byProfile[r.Profile] = append(byProfile[r.Profile], r)
	}
	// Keep the campaign's order, then any other profile found.
	sort.SliceStable(order, func(i, j int) bool { return rank(cfg.Profiles, order[i]) < rank(cfg.Profiles, order[j]) })
	none := byProfile["none"]
	for _, p := range order {
		rep.Profiles = append(rep.Profiles, profileReport(cfg, p, byProfile[p], none, byProfile[ReferenceProfile]))
	}
	// The chi-square control: flights of ASCII text fail uniformity.
	var control [][]byte
	for i := range 64 {
		control = append(control, []byte(fmt.Sprintf("GET /%04d HTTP/1.1\r\nHost: example.com\r\nUser-Agent: eval\r\n\r\n", i)))
	}
	_, p := metrics.ChiSquareUniform(control, 64)
	rep.ChiControlP = Num(p)
	rep.WFUndefended = undefendedWF(cfg, runs, traces)
	rep.Notes = notes(cfg, runs)
	return rep
}

func rank(list []string, s string) int {
	if i := slices.Index(list, s); i >= 0 {
		return i
	}
	return len(list)
}

// ok returns the runs that did not fail.
func ok(runs []*RunResult) []*RunResult {
	var out []*RunResult
	for _, r := range runs {
		if r.Err == "" {
			out = append(out, r)
		}
	}
	return out
}

// wireStart is when the run's workload started on the wire's clock: its
// first application event, or the end of the handshake's writes.
func wireStart(r *RunResult) time.Duration {
	if r.Start > 0 {
		return r.Start
	}
	// Runs saved before Start was recorded.
	if len(r.App) > 0 {
		return r.App[0].Time
	}
	if r.Elapsed > 0 && len(r.Wire) > 0 {
		end := r.Wire[len(r.Wire)-1].Time
		return max(end-r.Elapsed, 0)
	}
	return 0
}

// middle returns the middle half of a run's workload: the window the
// classifiers and shape metrics look at, away from the start and the
// close.
func middle(cfg Config, r *RunResult) (start, length time.Duration) {
	return wireStart(r) + cfg.Duration/4, cfg.Duration / 2
}

// window returns the wire events in [start, start+length), times
// counted from start.
func window(ev []schedule.TraceEvent, start, length time.Duration) []schedule.TraceEvent {
	var out []schedule.TraceEvent
	for _, e := range ev {
		if e.Time >= start && e.Time < start+length {
			e.Time -= start
			out = append(out, e)
		}
	}
	return out
}

func profileReport(cfg Config, name string, runs, none, ref []*RunResult) *ProfileReport {
	pr := &ProfileReport{Profile: name, Runs: len(runs), Completion: map[string]Num{}, CompletionVsNone: map[string]Num{},
		GoodputBulk: nan(), DelayUpP50: nan(), DelayUpP90: nan(), DelayDownP50: nan(), DelayDownP90: nan(),
		KSSize: nan(), W1Size: nan(), KSGap: nan(), W1Gap: nan(), RateCVUp: nan(), RateCVDn: nan(),
		BurstP50: nan(), BurstGap: nan(), ChiStat: nan(), ChiP: nan(), Blocks: nan(),
		Leakage: nan(), Chance: nan(), TargetAUC: nan(), CoreAUC: nan(), WF: nan(), WFChance: nan()}
	good := ok(runs)
	pr.Failed = len(runs) - len(good)

	// Cost.
	var wireUp, wireDn, appUp, appDn, decoy int64
	var delUp, delDn []time.Duration
	var bulkBytes int64
	var bulkTime time.Duration
	compl := map[string][]float64{}
	for _, r := range good {
		pr.Dropped += r.Dropped
		if r.Workload != "idle" {
			wireUp += r.WireUp
			wireDn += r.WireDown
			appUp += r.Up
			appDn += r.Down
		}
		decoy += r.DecoyUp + r.DecoyDown
		delUp = append(delUp, r.DelaysUp...)
		delDn = append(delDn, r.DelaysDown...)
		if r.Workload == "bulk" && r.Completion > 0 {
			bulkBytes += r.Up + r.Down
			bulkTime += r.Completion
		}
		if (r.Workload == "bulk" || r.Workload == "web") && r.Completion > 0 {
			compl[r.Workload] = append(compl[r.Workload], r.Completion.Seconds())
		}
	}
	var wireAll int64
	for _, r := range good {
		wireAll += r.WireUp + r.WireDown
	}
	pr.GoodputBulk = Num(metrics.Goodput(bulkBytes, bulkTime))
	pr.OverheadUp = Num(metrics.Overhead(wireUp, appUp))
	pr.OverheadDown = Num(metrics.Overhead(wireDn, appDn))
	pr.DecoyShare = Num(metrics.DecoyShare(decoy, wireAll))
	if len(delUp) > 0 {
		s := metrics.Seconds(delUp)
		pr.DelayUpP50, pr.DelayUpP90 = Num(metrics.Quantile(s, 0.5)), Num(metrics.Quantile(s, 0.9))
	}
	if len(delDn) > 0 {
		s := metrics.Seconds(delDn)
		pr.DelayDownP50, pr.DelayDownP90 = Num(metrics.Quantile(s, 0.5)), Num(metrics.Quantile(s, 0.9))
	}
	noneCompl := map[string][]float64{}
	for _, r := range ok(none) {
		if (r.Workload == "bulk" || r.Workload == "web") && r.Completion > 0 {
			noneCompl[r.Workload] = append(noneCompl[r.Workload], r.Completion.Seconds())
		}
	}
	for w, xs := range compl {
		m := mean(xs)
		pr.Completion[w] = Num(m)
		if ref := noneCompl[w]; len(ref) > 0 {
			pr.CompletionVsNone[w] = Num(m / mean(ref))
		}
	}

	// Shape against the target: the idle runs are what the profile
	// sends carrying nothing; the other workloads' middles are compared
	// with them, downstream (the bridge's direction, the larger one).
	var target, busy []schedule.TraceEvent
	var cvUp, cvDn, bursts, gaps []float64
	for _, r := range good {
		s, l := middle(cfg, r)
		w := window(r.Wire, s, l)
		if r.Workload == "idle" {
			target = append(target, w...)
			continue
		}
		busy = append(busy, w...)
		win := max(cfg.Duration/20, 100*time.Millisecond)
		if c := metrics.CV(metrics.WindowBytes(w, schedule.DirSent, win, l)); !math.IsNaN(c) {
			cvUp = append(cvUp, c)
		}
		if c := metrics.CV(metrics.WindowBytes(w, schedule.DirReceived, win, l)); !math.IsNaN(c) {
			cvDn = append(cvDn, c)
		}
		bs, gs := metrics.BurstStats(metrics.Bursts(w, schedule.DirReceived, 100*time.Millisecond))
		bursts = append(bursts, bs...)
		gaps = append(gaps, gs...)
	}
	ts, bs := metrics.Sizes(target, schedule.DirReceived), metrics.Sizes(busy, schedule.DirReceived)
	if len(ts) > 0 && len(bs) > 0 {
		pr.KSSize, pr.W1Size = Num(metrics.KS(bs, ts)), Num(metrics.Wasserstein1(bs, ts))
	}
	tg, bg := runGaps(cfg, good, true), runGaps(cfg, good, false)
	if len(tg) > 0 && len(bg) > 0 {
		pr.KSGap, pr.W1Gap = Num(metrics.KS(bg, tg)), Num(metrics.Wasserstein1(bg, tg))
	}
	pr.RateCVUp, pr.RateCVDn = Num(meanOrNaN(cvUp)), Num(meanOrNaN(cvDn))
	if len(bursts) > 0 {
		pr.BurstP50 = Num(metrics.Quantile(bursts, 0.5))
	}
	if len(gaps) > 0 {
		pr.BurstGap = Num(metrics.Quantile(gaps, 0.5))
	}

	// The handshake: the fully-encrypted-traffic rule and uniformity.
	var flights [][]byte
	for _, r := range good {
		if len(r.FirstFlight) > 0 {
			flights = append(flights, r.FirstFlight)
		}
	}
	pr.FETExempt, pr.FETTotal = metrics.FET(flights)
	if len(flights)*64 >= chiMinBytes {
		st, p := metrics.ChiSquareUniform(flights, 64)
		pr.ChiStat, pr.ChiP = Num(st), Num(p)
	}

	// Block arrivals on the bitcoin workload.
	var det []float64
	for _, r := range good {
		if r.Workload != "bitcoin" || len(r.Blocks) == 0 {
			continue
		}
		secs := int(r.Elapsed/time.Second) + int(wireStart(r)/time.Second) + 2
		per := metrics.WindowBytes(r.Wire, schedule.DirReceived, time.Second, time.Duration(secs)*time.Second)
		var truth []int
		for _, b := range r.Blocks {
			truth = append(truth, int(b/time.Second))
		}
		if d := metrics.DetectionRate(metrics.BlockArrivals(per, 60), truth, 1); !math.IsNaN(d) {
			det = append(det, d)
		}
	}
	pr.Blocks = Num(meanOrNaN(det))

	// The censor's classifiers.
	var x [][]float64
	var y []int
	classes := map[string]int{}
	for _, w := range cfg.Workloads {
		classes[w] = len(classes)
	}
	perClass := map[int]int{}
	for _, r := range good {
		c, ok := classes[r.Workload]
		if !ok {
			continue
		}
		s, l := middle(cfg, r)
		x = append(x, leak.WindowFeatures(r.Wire, s, l, leakBins))
		y = append(y, c)
		perClass[c]++
	}
	if folds := minCount(perClass, len(classes)); folds >= 2 && len(classes) >= 2 {
		res := leak.CrossValidateForest(x, y, len(classes), min(folds, 5), forestTrees, cfg.Seed)
		pr.Leakage, pr.Chance = Num(res.Accuracy), Num(res.Chance)
	}
	var idleX, busyX [][]float64
	for _, r := range good {
		s, l := middle(cfg, r)
		f := leak.WindowFeatures(r.Wire, s, l, leakBins)
		if r.Workload == "idle" {
			idleX = append(idleX, f)
		} else {
			busyX = append(busyX, f)
		}
	}
	if len(idleX) >= 2 && len(busyX) >= 2 {
		pr.TargetAUC = Num(leak.Distinguish(idleX, busyX, min(len(idleX), 5), forestTrees, cfg.Seed))
	}
	if kindOf(name) == "bitcoin" && name != ReferenceProfile {
		var refX, ourX [][]float64
		for _, r := range ok(ref) {
			refX = append(refX, leak.WindowFeatures(r.Wire, wireStart(r), cfg.Duration, leakBins))
		}
		for _, r := range good {
			ourX = append(ourX, leak.WindowFeatures(r.Wire, wireStart(r), cfg.Duration, leakBins))
		}
		if len(refX) >= 2 && len(ourX) >= 2 {
			pr.CoreAUC = Num(leak.Distinguish(refX, ourX, min(len(refX), 5), forestTrees, cfg.Seed))
		}
	}
	// Website fingerprinting on the web runs, labelled by site.
	var inst [][]schedule.TraceEvent
	var site []int
	sites := map[int]int{}
	for _, r := range good {
		if r.Workload == "web" && r.Site >= 0 {
			inst = append(inst, window(r.Wire, wireStart(r), cfg.Duration))
			site = append(site, r.Site)
			sites[r.Site]++
		}
	}
	if n, k := minCount(sites, len(sites)), len(sites); n >= 2 && k >= 2 {
		labels, nsites := relabel(site)
		res := leak.Fingerprint(inst, labels, nsites, min(n, 5), min(wfCUMULk, n-1), cfg.Seed)
		pr.WF, pr.WFChance, pr.WFInstances = Num(res.Accuracy), Num(res.Chance), n
	}
	return pr
}

// runGaps returns downstream inter-arrival times in the middle of the
// idle runs (target) or of the others, gaps computed within each run.
func runGaps(cfg Config, runs []*RunResult, idle bool) []float64 {
	var out []float64
	for _, r := range runs {
		if (r.Workload == "idle") != idle {
			continue
		}
		s, l := middle(cfg, r)
		out = append(out, metrics.Gaps(window(r.Wire, s, l), schedule.DirReceived)...)
	}
	return out
}

// undefendedWF is the fingerprinting accuracy on the sites the web runs
// replayed, without a tunnel: as many augmented instances of each
// site's trace as a profile's web runs have, each cut to the runs'
// duration, as the tunnels' wire is.
func undefendedWF(cfg Config, runs []*RunResult, traces [][]schedule.TraceEvent) Num {
	if len(traces) == 0 {
		return nan()
	}
	n := map[string]int{}
	most := 0
	for _, r := range ok(runs) {
		if r.Workload == "web" && r.Site >= 0 {
			n[r.Profile]++
			most = max(most, n[r.Profile])
		}
	}
	s := webSites(cfg.Runs, len(traces))
	per := most / max(s, 1)
	if per < 2 || s < 2 {
		return nan()
	}
	var inst [][]schedule.TraceEvent
	var site []int
	for i := range s {
		for _, tr := range leak.Augment(traces[i], per, cfg.Seed+uint64(i)) {
			inst = append(inst, window(tr, 0, cfg.Duration))
			site = append(site, i)
		}
	}
	res := leak.Fingerprint(inst, site, s, min(per, 5), min(wfCUMULk, per-1), cfg.Seed)
	return Num(res.Accuracy)
}

// relabel maps site numbers to 0..n-1.
func relabel(site []int) ([]int, int) {
	ids := map[int]int{}
	out := make([]int, len(site))
	for i, s := range site {
		if _, ok := ids[s]; !ok {
			ids[s] = len(ids)
		}
		out[i] = ids[s]
	}
	return out, len(ids)
}

// minCount is the smallest count over classes 0..n-1 (0 if one is
// missing).
func minCount(counts map[int]int, n int) int {
	if n == 0 {
		return 0
	}
	m := math.MaxInt
	for c := range n {
		m = min(m, counts[c])
	}
	if len(counts) < n {
		return 0
	}
	return m
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func meanOrNaN(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	return mean(xs)
}

// notes are what a reader of the report must know to trust it.
func notes(cfg Config, runs []*RunResult) []string {
	out := []string{
		"Runs are real TCP on loopback" + linkNote(cfg.Link) + ", several at once: the seed fixes the workloads and each end's shaping decisions (the bridge's through the run's seed); keys and the bridge's handshake garbage are fresh each run, as in service, and times carry scheduler noise, so figures derived from them vary from one campaign to the next.",
		"Targets are the profile's idle runs (what it sends carrying nothing); a profile without idle runs has no shape figures.",
		"Classifiers use one sample per run (the middle half of its workload, a quarter of the duration in), cross-validated over runs: with few runs their figures are coarse; --runs 20 or more for a campaign.",
	}
	if slices.Contains(cfg.Workloads, "web") {
		out = append(out, fmt.Sprintf("Web runs replay real page loads of 8-78 s, cut at the duration (%v): a first page counts as complete only when it ends before; website fingerprinting needs at least 2 runs per site (%d sites over %d runs).",
			cfg.Duration, webSites(cfg.Runs, 42), cfg.Runs))
	}
	failed := 0
	for _, r := range runs {
		if r.Err != "" {
			failed++
		}
	}
	if failed > 0 {
		out = append(out, fmt.Sprintf("%d runs failed and are left out (see results.json).", failed))
	}
	return out
}

func linkNote(l Link) string {
	if l.IsZero() {
		return ""
	}
	return " through an emulated link of " + l.String() + " (in-process relay)"
}

// Write writes report.md, results.json and the plots under dir.
func (rep *Report) Write(dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, "plots"), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), b, 0o644); err != nil {
		return err
	}
	if err := rep.plot(filepath.Join(dir, "plots")); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.md"), []byte(rep.Markdown()), 0o644)
}

// plot draws the figures: per profile, the size and gap CDFs of the
// wire against its idle target and bytes per window of its first busy
// run; for the campaign, overhead against leakage.
func (rep *Report) plot(dir string) error {
	byProfile := map[string][]*RunResult{}
	for _, r := range ok(rep.runs) {
		byProfile[r.Profile] = append(byProfile[r.Profile], r)
	}
	var pts []plots.Point
	chance := math.NaN()
	for _, pr := range rep.Profiles {
		runs := byProfile[pr.Profile]
		stem := filepath.Join(dir, profileStem(pr.Profile))
		var busy, target []float64
		for _, r := range runs {
			s, l := middle(rep.cfg, r)
			sz := metrics.Sizes(window(r.Wire, s, l), schedule.DirReceived)
			if r.Workload == "idle" {
				target = append(target, sz...)
			} else {
				busy = append(busy, sz...)
			}
		}
		if len(busy) > 0 {
			if err := plots.CDF(stem+"-sizes", pr.Profile+": downstream write sizes", "bytes", true,
				plots.Series{Name: "busy workloads", Values: busy}, plots.Series{Name: "idle (target)", Values: target}); err != nil {
				return err
			}
			bg, tg := runGaps(rep.cfg, runs, false), runGaps(rep.cfg, runs, true)
			if len(bg) > 0 {
				if err := plots.CDF(stem+"-gaps", pr.Profile+": downstream inter-arrival times", "seconds", true,
					plots.Series{Name: "busy workloads", Values: bg}, plots.Series{Name: "idle (target)", Values: tg}); err != nil {
					return err
				}
			}
		}
		for _, r := range runs {
			if r.Workload == "idle" {
				continue
			}
			win := 100 * time.Millisecond
			end := wireStart(r) + rep.cfg.Duration
			if err := plots.Windows(stem+"-windows", fmt.Sprintf("%s: %s run %d, bytes per 100 ms", pr.Profile, r.Workload, r.Run), win,
				plots.Series{Name: "up", Values: metrics.WindowBytes(r.Wire, schedule.DirSent, win, end)},
				plots.Series{Name: "down", Values: metrics.WindowBytes(r.Wire, schedule.DirReceived, win, end)}); err != nil {
				return err
			}
			break
		}
		if !math.IsNaN(float64(pr.Leakage)) {
			ov := (float64(pr.OverheadUp) + float64(pr.OverheadDown)) / 2
			if !math.IsNaN(ov) && !math.IsInf(ov, 0) {
				pts = append(pts, plots.Point{Label: pr.Profile, X: ov, Y: float64(pr.Leakage)})
				chance = float64(pr.Chance)
			}
		}
	}
	if len(pts) > 0 {
		return plots.Scatter(filepath.Join(dir, "overhead-vs-leakage"), "bandwidth overhead against workload leakage",
			"overhead (wire/data - 1, mean of both ways)", "classifier accuracy", chance, pts...)
	}
	return nil
}

// Markdown renders the report: a table per group of metrics, profiles
// as columns.
func (rep *Report) Markdown() string {
	var b bytes.Buffer
	c := rep.Config
	fmt.Fprintf(&b, "# bip324-pt eval\n\n")
	fmt.Fprintf(&b, "Profiles %s; workloads %s; %d runs each of %s; seed %d; link %s", strings.Join(c.Profiles, ", "),
		strings.Join(c.Workloads, ", "), c.Runs, c.Duration, c.Seed, c.Link)
	if rep.Elapsed != "" {
		fmt.Fprintf(&b, "; took %s", rep.Elapsed)
	}
	fmt.Fprintf(&b, ".\n\n")
	for _, n := range rep.Notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	b.WriteString("\n")
	table := func(title string, rows []row) {
		fmt.Fprintf(&b, "## %s\n\n| |", title)
		for _, p := range rep.Profiles {
			fmt.Fprintf(&b, " %s |", p.Profile)
		}
		b.WriteString("\n|---|")
		for range rep.Profiles {
			b.WriteString("---:|")
		}
		b.WriteString("\n")
		for _, r := range rows {
			fmt.Fprintf(&b, "| %s |", r.name)
			for _, p := range rep.Profiles {
				fmt.Fprintf(&b, " %s |", r.f(p))
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	table("Runs", []row{
		{"runs (failed)", func(p *ProfileReport) string { return fmt.Sprintf("%d (%d)", p.Runs, p.Failed) }},
		{"bytes dropped at close", func(p *ProfileReport) string { return strconv.FormatInt(p.Dropped, 10) }},
	})
	table("Cost", []row{
		{"bulk goodput, both ways (MB/s)", numf(func(p *ProfileReport) Num { return p.GoodputBulk / 1e6 }, "%.2f")},
		{"overhead up (wire/data - 1)", numf(func(p *ProfileReport) Num { return p.OverheadUp }, "%.2f")},
		{"overhead down", numf(func(p *ProfileReport) Num { return p.OverheadDown }, "%.2f")},
		{"decoy share of the wire", numf(func(p *ProfileReport) Num { return p.DecoyShare }, "%.2f")},
		{"one-way delay up p50 / p90 (ms)", pair(func(p *ProfileReport) (Num, Num) { return p.DelayUpP50 * 1e3, p.DelayUpP90 * 1e3 }, "%.0f")},
		{"one-way delay down p50 / p90 (ms)", pair(func(p *ProfileReport) (Num, Num) { return p.DelayDownP50 * 1e3, p.DelayDownP90 * 1e3 }, "%.0f")},
		{"web: first page (s) / against none", pair(func(p *ProfileReport) (Num, Num) { return get(p.Completion, "web"), get(p.CompletionVsNone, "web") }, "%.2f")},
		{"bulk: done (s) / against none", pair(func(p *ProfileReport) (Num, Num) { return get(p.Completion, "bulk"), get(p.CompletionVsNone, "bulk") }, "%.2f")},
	})
	table("Shape against the target (downstream, busy workloads against idle runs)", []row{
		{"KS distance, write sizes", numf(func(p *ProfileReport) Num { return p.KSSize }, "%.3f")},
		{"Wasserstein-1, write sizes (bytes)", numf(func(p *ProfileReport) Num { return p.W1Size }, "%.0f")},
		{"KS distance, inter-arrival times", numf(func(p *ProfileReport) Num { return p.KSGap }, "%.3f")},
		{"Wasserstein-1, inter-arrival (ms)", numf(func(p *ProfileReport) Num { return p.W1Gap * 1e3 }, "%.2f")},
		{"rate CV per window, up / down", pair(func(p *ProfileReport) (Num, Num) { return p.RateCVUp, p.RateCVDn }, "%.2f")},
		{"burst bytes p50 / gap p50 (s)", pair(func(p *ProfileReport) (Num, Num) { return p.BurstP50, p.BurstGap }, "%.3g")},
	})
	table("Handshake", []row{
		{"first flights exempt from the FET rule", func(p *ProfileReport) string { return fmt.Sprintf("%d of %d", p.FETExempt, p.FETTotal) }},
		{"chi-square p, first 64 bytes (uniform: not tiny)", numf(func(p *ProfileReport) Num { return p.ChiP }, "%.3g")},
	})
	table("The censor's classifiers", []row{
		{"workload named right (chance)", pair(func(p *ProfileReport) (Num, Num) { return p.Leakage, p.Chance }, "%.2f")},
		{"AUC busy against idle (0.5: the same)", numf(func(p *ProfileReport) Num { return p.TargetAUC }, "%.2f")},
		{"AUC against Core's link model (bitcoin)", numf(func(p *ProfileReport) Num { return p.CoreAUC }, "%.2f")},
		{"website named right, web runs (chance)", pair(func(p *ProfileReport) (Num, Num) { return p.WF, p.WFChance }, "%.2f")},
		{"block arrivals detected (bitcoin workload)", numf(func(p *ProfileReport) Num { return p.Blocks }, "%.2f")},
	})
	fmt.Fprintf(&b, "Chi-square control (ASCII flights, must be tiny): p = %s. Website fingerprinting without a tunnel on the same sites: %s.\n\n",
		fmtNum(rep.ChiControlP, "%.3g"), fmtNum(rep.WFUndefended, "%.2f"))
	b.WriteString("Plots: `plots/` (PNG and SVG).\n")
	return b.String()
}

type row struct {
	name string
	f    func(*ProfileReport) string
}

func fmtNum(n Num, format string) string {
	if math.IsNaN(float64(n)) || math.IsInf(float64(n), 0) {
		return "n/a"
	}
	return fmt.Sprintf(format, float64(n))
}

func numf(get func(*ProfileReport) Num, format string) func(*ProfileReport) string {
	return func(p *ProfileReport) string { return fmtNum(get(p), format) }
}

func pair(get func(*ProfileReport) (Num, Num), format string) func(*ProfileReport) string {
	return func(p *ProfileReport) string {
		a, b := get(p)
		return fmtNum(a, format) + " / " + fmtNum(b, format)
	}
}

func get(m map[string]Num, k string) Num {
	if v, ok := m[k]; ok {
		return v
	}
	return nan()
}
