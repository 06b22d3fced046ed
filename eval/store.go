package eval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/bip324pt/bip324-pt/schedule"
)

// On disk, a campaign's directory holds, per run, runs/NAME.json (the
// RunResult without its traces) and traces/NAME.wire and
// traces/NAME.app (Maybenot time_ns,direction,size lines), NAME being
// profile_workload_run with the profile's path made a file name. Shards
// write disjoint runs; "eval merge" copies them together.

// maxRunFile bounds a run's JSON when it is read back.
const maxRunFile = 64 << 20

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

// runName is a run's file name stem.
func runName(r *RunResult) string {
	p := strings.TrimSuffix(filepath.Base(r.Profile), ".toml")
	if strings.ContainsAny(r.Profile, `/\`) {
		p = "file-" + p
	}
	return fmt.Sprintf("%s_%s_%03d", unsafeName.ReplaceAllString(p, "-"), r.Workload, r.Run)
}

// saveRun writes a run's JSON and traces under dir.
func saveRun(dir string, r *RunResult) error {
	for _, sub := range []string{"runs", "traces"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	name := runName(r)
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "runs", name+".json"), b, 0o644); err != nil {
		return err
	}
	for ext, ev := range map[string][]schedule.TraceEvent{".wire": r.Wire, ".app": r.App} {
		var buf bytes.Buffer
		if err := schedule.WriteTrace(&buf, ev); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "traces", name+ext), buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// LoadRuns reads every run saved under dir, in name order.
func LoadRuns(dir string) ([]*RunResult, error) {
	files, err := filepath.Glob(filepath.Join(dir, "runs", "*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("eval: no runs under %s (want runs/*.json from \"bip324-pt eval --out %s\")", dir, dir)
	}
	sort.Strings(files)
	var out []*RunResult
	for _, f := range files {
		r, err := loadRun(dir, f)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func loadRun(dir, file string) (*RunResult, error) {
	b, err := readLimited(file, maxRunFile)
	if err != nil {
		return nil, err
	}
	r := new(RunResult)
	if err := json.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("eval: %s: %w", file, err)
	}
	if r.Profile == "" || r.Workload == "" || r.Run < 0 {
		return nil, fmt.Errorf("eval: %s: not a run (profile, workload and run are required)", file)
	}
	stem := strings.TrimSuffix(filepath.Base(file), ".json")
	for _, t := range []struct {
		ext string
		ev  *[]schedule.TraceEvent
	}{{".wire", &r.Wire}, {".app", &r.App}} {
		f, err := os.Open(filepath.Join(dir, "traces", stem+t.ext))
		if err != nil {
			return nil, fmt.Errorf("eval: run %s: %w", stem, err)
		}
		var ev []schedule.TraceEvent
		if st, serr := f.Stat(); serr == nil && st.Size() > 0 { // an idle run's application trace is empty
			ev, err = schedule.ParseTrace(f)
		}
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("eval: run %s%s: %w", stem, t.ext, err)
		}
		*t.ev = ev
	}
	return r, nil
}

func readLimited(file string, limit int64) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("eval: %s is larger than %d bytes", file, limit)
	}
	return b, nil
}

// Merge reads the runs of every directory in dirs (shards of one
// campaign), writes them all under out, and returns their report. Two
// shards holding the same run is an error: they were not slices of one
// matrix.
func Merge(out string, dirs []string, tracesDir string) (*Report, error) {
	if len(dirs) == 0 {
		return nil, fmt.Errorf("eval: merge: no directories")
	}
	seen := map[string]string{}
	var all []*RunResult
	var cfg Config
	for _, d := range dirs {
		runs, err := LoadRuns(d)
		if err != nil {
			return nil, err
		}
		for _, r := range runs {
			n := runName(r)
			if prev, ok := seen[n]; ok && prev != d {
				return nil, fmt.Errorf("eval: merge: run %s is in both %s and %s", n, prev, d)
			}
			seen[n] = d
			all = append(all, r)
		}
		if c, err := loadConfig(d); err == nil && cfg.Runs == 0 {
			cfg = c
		}
	}
	cfg.Shard, cfg.Shards = 0, 0
	if tracesDir != "" {
		cfg.TracesDir = tracesDir
	}
	cfg = cfg.withDefaults()
	if out != "" {
		for _, r := range all {
			if err := saveRun(out, r); err != nil {
				return nil, err
			}
		}
	}
	traces, _ := loadTraces(cfg) // for the undefended fingerprinting baseline only
	rep := buildReport(cfg, all, traces, 0)
	if out != "" {
		if err := rep.Write(out); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// loadConfig reads the campaign's settings from a results.json.
func loadConfig(dir string) (Config, error) {
	b, err := readLimited(filepath.Join(dir, "results.json"), maxRunFile)
	if err != nil {
		return Config{}, err
	}
	var res struct {
		Config configJSON `json:"config"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return Config{}, err
	}
	return res.Config.config(), nil
}

// configJSON is Config as results.json records it.
type configJSON struct {
	Profiles  []string `json:"profiles"`
	Workloads []string `json:"workloads"`
	Runs      int      `json:"runs"`
	Seed      uint64   `json:"seed"`
	Duration  string   `json:"duration"`
	BulkBytes int64    `json:"bulk_bytes"`
	Link      string   `json:"link"`
	Shard     string   `json:"shard,omitempty"`
}

func jsonConfig(c Config) configJSON {
	j := configJSON{Profiles: c.Profiles, Workloads: c.Workloads, Runs: c.Runs, Seed: c.Seed,
		Duration: c.Duration.String(), BulkBytes: c.BulkBytes, Link: c.Link.String()}
	if c.Shards > 0 {
		j.Shard = fmt.Sprintf("%d/%d", c.Shard, c.Shards)
	}
	return j
}

func (j configJSON) config() Config {
	c := Config{Profiles: j.Profiles, Workloads: j.Workloads, Runs: j.Runs, Seed: j.Seed, BulkBytes: j.BulkBytes}
	c.Duration, _ = time.ParseDuration(j.Duration)
	if j.Link != "loopback" {
		c.Link, _ = ParseLink(j.Link)
	}
	return c
}

// progress draws a bar of finished runs on w.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool // redraw one line; otherwise a line per run
	total int
	n     int
	fails int
	start time.Time
}

func newProgress(w io.Writer, total int) *progress {
	p := &progress{w: w, total: total, start: time.Now()}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) done(r *RunResult) {
	if p.w == nil {
		return
	}
	// Runs finish on their own goroutines; serialise the bar.
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	if r.Err != "" {
		p.fails++
	}
	const width = 30
	fill := width * p.n / max(p.total, 1)
	el := time.Since(p.start)
	eta := time.Duration(float64(el) / float64(p.n) * float64(p.total-p.n))
	status := "ok"
	if r.Err != "" {
		status = "FAILED: " + r.Err
	}
	start, end := "\r", "\x1b[K"
	if !p.tty {
		start, end = "", "\n"
	}
	fmt.Fprintf(p.w, "%s[%s%s] %d/%d runs, %s elapsed, ~%s left | %s %s #%d %s%s", start,
		strings.Repeat("#", fill), strings.Repeat(".", width-fill), p.n, p.total,
		el.Round(time.Second), eta.Round(time.Second), r.Profile, r.Workload, r.Run, status, end)
}

func (p *progress) finish() {
	if p.w == nil {
		return
	}
	if p.tty {
		fmt.Fprintln(p.w)
	}
	fmt.Fprintf(p.w, "%d runs in %v, %d failed\n", p.n, time.Since(p.start).Round(time.Second), p.fails)
}
