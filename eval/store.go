package eval

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/bip324pt/bip324-pt/profiles"
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

// runName is a run's file name stem: the profile's name, and for a
// profile that is not a built-in a short hash of how it was named, so
// that two files called alike do not share runs.
func runName(r *RunResult) string {
	return fmt.Sprintf("%s_%s_%03d", profileStem(r.Profile), r.Workload, r.Run)
}

// profileStem is a profile's part of file names.
func profileStem(profile string) string {
	if _, ok := profiles.BuiltinSource(profile); ok {
		return profile
	}
	p := strings.TrimSuffix(filepath.Base(strings.TrimPrefix(profile, profiles.ExamplePrefix)), ".toml")
	h := sha256.Sum256([]byte(profile))
	return fmt.Sprintf("%s-%x", unsafeName.ReplaceAllString(p, "-"), h[:3])
}

// writeFile writes a file whole or not at all (through a rename), so
// that shards sharing a directory never read half a file.
func writeFile(name string, b []byte) error {
	tmp := fmt.Sprintf("%s.tmp%d", name, os.Getpid())
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

// claimOut checks that dir holds no other campaign's runs, and records
// this campaign's settings there (config.json) for the shards and for
// "eval merge".
func claimOut(cfg Config) error {
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return err
	}
	prev, err := loadConfig(cfg.Out)
	switch {
	case err == nil:
		if !sameCampaign(prev, cfg) {
			return fmt.Errorf("eval: %s holds runs of another campaign (%s); give another --out or remove it", cfg.Out, describe(prev))
		}
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if runs, _ := filepath.Glob(filepath.Join(cfg.Out, "runs", "*.json")); len(runs) > 0 {
		return fmt.Errorf("eval: %s holds runs but no config.json; give another --out", cfg.Out)
	}
	b, err := json.MarshalIndent(jsonConfig(cfg), "", "  ")
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(cfg.Out, "config.json"), b)
}

// sameCampaign reports whether two configs make the same run matrix and
// runs (the shard, the parallelism and the paths may differ).
func sameCampaign(a, b Config) bool {
	ja, jb := jsonConfig(a), jsonConfig(b)
	ja.Shard, jb.Shard = "", ""
	x, _ := json.Marshal(ja)
	y, _ := json.Marshal(jb)
	return bytes.Equal(x, y)
}

func describe(c Config) string {
	return fmt.Sprintf("profiles %s, workloads %s, %d runs of %v, seed %d, link %v", strings.Join(c.Profiles, ","),
		strings.Join(c.Workloads, ","), c.Runs, c.Duration, c.Seed, c.Link)
}

// saveRun writes a run's traces, then its JSON (so that a run whose
// JSON is there is whole).
func saveRun(dir string, r *RunResult) error {
	for _, sub := range []string{"runs", "traces"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	name := runName(r)
	for _, t := range []struct {
		ext string
		ev  []schedule.TraceEvent
	}{{".wire", r.Wire}, {".app", r.App}} {
		var buf bytes.Buffer
		if err := schedule.WriteTrace(&buf, t.ev); err != nil {
			return err
		}
		if err := writeFile(filepath.Join(dir, "traces", name+t.ext), buf.Bytes()); err != nil {
			return err
		}
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "runs", name+".json"), b)
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
	sort.Strings(files) // by run name: reports do not depend on shard layout
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
// campaign: their config.json must agree), writes them all under out,
// and returns their report. A run found twice is an error: the
// directories were not disjoint slices of one matrix.
func Merge(out string, dirs []string, tracesDir string) (*Report, error) {
	if len(dirs) == 0 {
		return nil, fmt.Errorf("eval: merge: no directories")
	}
	var cfg Config
	seen := map[string]string{}
	var all []*RunResult
	for i, d := range dirs {
		c, err := loadConfig(d)
		if err != nil {
			return nil, fmt.Errorf("eval: merge: %s: %w (want a directory written by \"bip324-pt eval --out\")", d, err)
		}
		if i == 0 {
			cfg = c
		} else if !sameCampaign(cfg, c) {
			return nil, fmt.Errorf("eval: merge: %s is another campaign (%s) than %s (%s)", d, describe(c), dirs[0], describe(cfg))
		}
		runs, err := LoadRuns(d)
		if err != nil {
			return nil, err
		}
		for _, r := range runs {
			n := runName(r)
			if prev, ok := seen[n]; ok {
				return nil, fmt.Errorf("eval: merge: run %s is in both %s and %s", n, prev, d)
			}
			seen[n] = d
			all = append(all, r)
		}
	}
	cfg.Shard, cfg.Shards = 0, 0
	cfg.TracesDir = tracesDir
	cfg = cfg.withDefaults()
	if out != "" {
		cfg.Out = out
		if err := claimOut(cfg); err != nil {
			return nil, err
		}
		for _, r := range all {
			if err := saveRun(out, r); err != nil {
				return nil, err
			}
		}
	}
	traces, _ := loadTraces(cfg) // only for the fingerprinting baseline
	rep := buildReport(cfg, inMatrix(cfg, all), traces, 0)
	if out != "" {
		if err := rep.Write(out); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// loadConfig reads the campaign's settings from dir/config.json.
func loadConfig(dir string) (Config, error) {
	b, err := readLimited(filepath.Join(dir, "config.json"), 1<<20)
	if err != nil {
		return Config{}, err
	}
	var j configJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return Config{}, fmt.Errorf("eval: %s/config.json: %w", dir, err)
	}
	return j.config()
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

func (j configJSON) config() (Config, error) {
	c := Config{Profiles: j.Profiles, Workloads: j.Workloads, Runs: j.Runs, Seed: j.Seed, BulkBytes: j.BulkBytes}
	var err error
	if c.Duration, err = time.ParseDuration(j.Duration); err != nil {
		return Config{}, fmt.Errorf("eval: config: duration: %w", err)
	}
	if j.Link != "loopback" {
		if c.Link, err = ParseLink(j.Link); err != nil {
			return Config{}, err
		}
	}
	if err := c.withDefaults().check(); err != nil {
		return Config{}, err
	}
	return c, nil
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
