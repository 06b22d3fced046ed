package eval

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/bip324pt/bip324-pt/eval/wiretap"
	"github.com/bip324pt/bip324-pt/eval/workload"
	"github.com/bip324pt/bip324-pt/internal/bridge"
	"github.com/bip324pt/bip324-pt/internal/bridgeauth"
	"github.com/bip324pt/bip324-pt/profiles"
	"github.com/bip324pt/bip324-pt/schedule"
)

// Config is a campaign: every profile runs every workload Runs times.
// The zero value (with Out) is the default run: every built-in profile on
// web, interactive and idle, three runs of 3 s each.
type Config struct {
	// Profiles are built-in names or profile files. Nil: every built-in.
	Profiles []string
	// Workloads are names of package workload. Nil: web, interactive,
	// idle.
	Workloads []string
	// Runs per profile and workload. Zero means 3.
	Runs int
	// Seed fixes every run's shaping decisions and workload (each run's
	// seed is derived from it, the profile, the workload and the run's
	// index). Zero means 1.
	Seed uint64
	// Duration of a run's workload. Zero means 3 s.
	Duration time.Duration
	// BulkBytes is what the bulk workload moves each way. Zero means
	// 1 MiB.
	BulkBytes int64
	// Link is the emulated path between client and bridge.
	Link Link
	// Shard and Shards select the Shard-th (1-based) of Shards slices of
	// the run matrix; zero runs it all.
	Shard, Shards int
	// Parallel is how many runs go at once. Zero means 6.
	Parallel int
	// TracesDir holds the Maybenot-format page loads the web workload
	// replays (one subfolder per trace set). Empty means
	// "testdata/traces".
	TracesDir string
	// Out is the directory for runs/, traces/, plots, report.md and
	// results.json. Empty: nothing is written.
	Out string
	// Progress, when not nil, gets a progress line per finished run (a
	// bar on a terminal).
	Progress io.Writer
}

// Defaults of Config.
const (
	defaultRuns     = 3
	defaultDuration = 3 * time.Second
	defaultParallel = 6
	defaultBulk     = 1 << 20
)

// DefaultWorkloads are the workloads of the default run.
var DefaultWorkloads = []string{"web", "interactive", "idle"}

// ReferenceProfile is the model of Bitcoin Core's link that bitcoin
// profiles are compared with: the bitcoin-peer example (Core's opening
// and full-relay cadence, nothing moved by data), run idle.
const ReferenceProfile = "example:bitcoin-peer"

func (c Config) withDefaults() Config {
	if len(c.Profiles) == 0 {
		c.Profiles = profiles.Builtins()
	}
	if len(c.Workloads) == 0 {
		c.Workloads = DefaultWorkloads
	}
	if c.Runs == 0 {
		c.Runs = defaultRuns
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Duration == 0 {
		c.Duration = defaultDuration
	}
	if c.BulkBytes == 0 {
		c.BulkBytes = defaultBulk
	}
	if c.Parallel == 0 {
		c.Parallel = defaultParallel
	}
	if c.TracesDir == "" {
		c.TracesDir = filepath.Join("testdata", "traces")
	}
	return c
}

func (c Config) check() error {
	switch {
	case c.Runs < 1 || c.Runs > 10000:
		return fmt.Errorf("eval: %d runs, want 1..10000", c.Runs)
	case c.Duration < 100*time.Millisecond || c.Duration > 24*time.Hour:
		return fmt.Errorf("eval: duration %v, want 100ms..24h", c.Duration)
	case c.BulkBytes < 1 || c.BulkBytes > 1<<34:
		return fmt.Errorf("eval: bulk of %d bytes, want 1..16 GiB", c.BulkBytes)
	case c.Parallel < 1 || c.Parallel > 256:
		return fmt.Errorf("eval: parallel %d, want 1..256", c.Parallel)
	case c.Shards < 0 || c.Shard < 0 || (c.Shards > 0 && (c.Shard < 1 || c.Shard > c.Shards)) || (c.Shards == 0 && c.Shard != 0):
		return fmt.Errorf("eval: shard %d/%d, want k/n with 1 <= k <= n", c.Shard, c.Shards)
	}
	seen := map[string]bool{}
	for _, p := range c.Profiles {
		if seen[p] {
			return fmt.Errorf("eval: profile %q given twice", p)
		}
		seen[p] = true
		if _, err := profiles.Load(p); err != nil {
			return err
		}
	}
	names := workload.Names()
	for _, w := range c.Workloads {
		if !slices.Contains(names, w) {
			return fmt.Errorf("eval: unknown workload %q (workloads: %s)", w, strings.Join(names, ", "))
		}
		if seen["w:"+w] {
			return fmt.Errorf("eval: workload %q given twice", w)
		}
		seen["w:"+w] = true
	}
	return nil
}

// job is one cell of the run matrix.
type job struct {
	Profile, Workload string
	Run               int
}

// matrix lists the runs in a fixed order: profile, workload, run. When a
// profile of the bitcoin schedule kind is in the campaign, the
// reference model of Core's link runs idle as many times, for the
// comparison with Core.
func (c Config) matrix() []job {
	var out []job
	ref := false
	for _, p := range c.Profiles {
		for _, w := range c.Workloads {
			for r := range c.Runs {
				out = append(out, job{p, w, r})
			}
		}
		if kindOf(p) == "bitcoin" {
			ref = true
		}
	}
	if ref && !slices.Contains(c.Profiles, ReferenceProfile) {
		for r := range c.Runs {
			out = append(out, job{ReferenceProfile, "idle", r})
		}
	}
	return out
}

// shard returns the jobs of this shard: every Shards-th job from the
// Shard-th, so that each slice mixes profiles and workloads.
func (c Config) shard(all []job) []job {
	if c.Shards == 0 {
		return all
	}
	var out []job
	for i, j := range all {
		if i%c.Shards == c.Shard-1 {
			out = append(out, j)
		}
	}
	return out
}

// runOrder shuffles the jobs (by the seed, so that a campaign repeats):
// the runs that share the machine at one time then mix profiles and
// workloads, and a classifier cannot learn a workload from the load its
// own runs put on the machine together.
func runOrder(seed uint64, jobs []job) []job {
	out := slices.Clone(jobs)
	r := rand.New(rand.NewPCG(seed, 0x6576616c))
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// kindOf returns a profile's schedule kind, "" if it does not load.
func kindOf(name string) string {
	p, err := profiles.Load(name)
	if err != nil {
		return ""
	}
	cs, err := p.CompileSchedule()
	if err != nil {
		return ""
	}
	return cs.Kind
}

// seedOf derives a run's seed from the campaign's.
func seedOf(seed uint64, j job) [32]byte {
	h := sha256.New()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seed)
	h.Write([]byte("bip324-pt eval run\x00"))
	h.Write(b[:])
	fmt.Fprintf(h, "%s\x00%s\x00%d", j.Profile, j.Workload, j.Run)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// RunResult is what one run measured. Wire is every write on both
// sockets (client and bridge), App the application's writes and reads
// at the client end; both are saved as traces, not in JSON.
type RunResult struct {
	Profile  string `json:"profile"`
	Workload string `json:"workload"`
	Run      int    `json:"run"`
	Seed     string `json:"seed"` // hex
	Site     int    `json:"site"` // web: the page replayed first; else -1

	Up         int64         `json:"app_up"`
	Down       int64         `json:"app_down"`
	Completion time.Duration `json:"completion_ns"`
	Elapsed    time.Duration `json:"elapsed_ns"`
	// Start is when the workload started, on the wire trace's clock
	// (the handshake before it).
	Start time.Duration `json:"start_ns"`
	// WireDropped counts wire events the recorder could not keep (it
	// keeps 1,000,000); a run with any is failed.
	WireDropped int `json:"wire_dropped,omitempty"`
	// Delays are the one-way delays of the application's messages.
	DelaysUp   []time.Duration `json:"delays_up_ns,omitempty"`
	DelaysDown []time.Duration `json:"delays_down_ns,omitempty"`
	// Blocks are when the bitcoin workload's blocks were sent.
	Blocks []time.Duration `json:"blocks_ns,omitempty"`

	WireUp    int64 `json:"wire_up"`
	WireDown  int64 `json:"wire_down"`
	DecoyUp   int64 `json:"decoy_up"`
	DecoyDown int64 `json:"decoy_down"`
	Dropped   int64 `json:"dropped"`
	// FirstFlight is the client's first write: key and garbage.
	FirstFlight []byte `json:"first_flight"`
	// Err says why the run failed; its figures are then left out.
	Err string `json:"error,omitempty"`

	Wire []schedule.TraceEvent `json:"-"`
	App  []schedule.TraceEvent `json:"-"`
}

// Run runs the campaign's runs (this shard's) and returns the report.
// With Out, each run is saved as it finishes (so a cancelled campaign
// keeps what it did) and the report covers every run of the campaign's
// matrix found under Out: a shard's report grows as shards finish, and
// "eval merge" joins shards run elsewhere. Out must not hold another
// campaign's runs.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	traces, err := loadTraces(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Out != "" {
		if err := claimOut(cfg); err != nil {
			return nil, err
		}
	}
	jobs := runOrder(cfg.Seed, cfg.shard(cfg.matrix()))
	results := make([]*RunResult, len(jobs))
	start := time.Now()
	prog := newProgress(cfg.Progress, len(jobs))
	sem := make(chan struct{}, cfg.Parallel)
	var wg sync.WaitGroup
	var saveMu sync.Mutex
	var saveErr error
	for i, j := range jobs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r := runOne(ctx, cfg, j, traces)
			if ctx.Err() != nil && r.Err != "" {
				return // cut by the cancel: not a result
			}
			if cfg.Out != "" {
				err := saveRun(cfg.Out, r)
				saveMu.Lock()
				saveErr = cmp.Or(saveErr, err)
				saveMu.Unlock()
				// The traces are on disk; the report reads them back.
				r.Wire, r.App = nil, nil
			}
			results[i] = r
			prog.done(r)
		}()
	}
	wg.Wait()
	prog.finish()
	if saveErr != nil {
		return nil, saveErr
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if cfg.Out != "" {
		all, err := LoadRuns(cfg.Out)
		if err != nil {
			return nil, err
		}
		results = inMatrix(cfg, all)
	}
	rep := buildReport(cfg, results, traces, time.Since(start))
	if cfg.Out != "" {
		if err := rep.Write(cfg.Out); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// inMatrix keeps the runs that belong to cfg's matrix.
func inMatrix(cfg Config, runs []*RunResult) []*RunResult {
	want := map[job]bool{}
	for _, j := range cfg.matrix() {
		want[j] = true
	}
	var out []*RunResult
	for _, r := range runs {
		if want[job{r.Profile, r.Workload, r.Run}] {
			out = append(out, r)
		}
	}
	return out
}

// loadTraces reads the web workload's page loads: every *.log under
// TracesDir's data-* folders, in name order. Only needed with web.
func loadTraces(cfg Config) ([][]schedule.TraceEvent, error) {
	if !slices.Contains(cfg.Workloads, "web") {
		return nil, nil
	}
	files, err := filepath.Glob(filepath.Join(cfg.TracesDir, "data-*", "*.log"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("eval: no traces for the web workload under %s (want data-*/N.log in Maybenot format, as in the repository's testdata/traces; run from the repository's root or give --traces DIR)", cfg.TracesDir)
	}
	sort.Strings(files)
	var out [][]schedule.TraceEvent
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		ev, err := schedule.ParseTrace(fh)
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("eval: %s: %w", f, err)
		}
		out = append(out, ev)
	}
	return out, nil
}

// webSites is how many sites the web runs spread over: enough instances
// per site (4) for fingerprinting once there are runs enough, at least
// two sites, at most the traces there are.
func webSites(runs, traces int) int {
	return max(min(runs/4, traces), min(2, traces))
}

// runOne runs one job over real TCP on loopback: a bridge with the
// profile as its default, a client asking for it, the link between,
// both sockets tapped, the workload at the two application ends.
func runOne(ctx context.Context, cfg Config, j job, traces [][]schedule.TraceEvent) *RunResult {
	seed := seedOf(cfg.Seed, j)
	r := &RunResult{Profile: j.Profile, Workload: j.Workload, Run: j.Run, Seed: fmt.Sprintf("%x", seed[:8]), Site: -1}
	if err := runTunnel(ctx, cfg, j, seed, traces, r); err != nil {
		r.Err = err.Error()
	}
	return r
}

func runTunnel(ctx context.Context, cfg Config, j job, seed [32]byte, traces [][]schedule.TraceEvent, r *RunResult) error {
	w, err := workload.New(j.Workload)
	if err != nil {
		return err
	}
	p, err := profiles.Load(j.Profile)
	if err != nil {
		return err
	}
	shape, err := p.Compile()
	if err != nil {
		return err
	}
	secret, err := bridgeauth.NewSecret(crand.Reader)
	if err != nil {
		return err
	}
	srvSeed := sha256.Sum256(append([]byte("bip324-pt eval bridge "), seed[:]...))
	srv, err := bridge.NewServer(bridge.ServerConfig{Secret: secret, Shape: shape, Profile: j.Profile, Seed: srvSeed})
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	addr := ln.Addr().String()
	// A run's deadline: the workload's duration, then time for finite
	// work (bulk through a slow profile) to finish.
	limit := 3*cfg.Duration + time.Minute
	rctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	if !cfg.Link.IsZero() {
		lln, err := listenLink(rctx, cfg.Link, addr)
		if err != nil {
			return err
		}
		defer lln.Close()
		addr = lln.Addr().String()
	}

	rec := wiretap.New(time.Now(), 0)
	type accepted struct {
		c   *bridge.Conn
		err error
	}
	sc := make(chan accepted, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			sc <- accepted{err: err}
			return
		}
		c, err := srv.WrapConn(rctx, wiretap.Tap(raw, rec, false))
		if err != nil {
			raw.Close()
			sc <- accepted{err: err}
			return
		}
		bc, ok := c.(*bridge.Conn)
		if !ok {
			c.Close()
			sc <- accepted{err: errors.New("eval: the bridge did not take the client as its own")}
			return
		}
		sc <- accepted{c: bc}
	}()
	var d net.Dialer
	raw, err := d.DialContext(rctx, "tcp", addr)
	if err != nil {
		return err
	}
	first := &firstWrite{Conn: raw}
	req := bridge.Request{}
	if p.WantsVersionRequest() && slices.Contains(profiles.Builtins(), j.Profile) {
		req = bridge.Request{Profile: j.Profile, Seed: seed}
	}
	// The bridge's side, whenever it comes: closed with the run.
	drain := func() {
		ln.Close()
		if a := <-sc; a.c != nil {
			a.c.Close()
		}
	}
	cli, err := bridge.Client(rctx, wiretap.Tap(first, rec, true), &bridge.ClientConfig{Secret: secret, Shape: shape, Seed: seed, Request: req})
	if err != nil {
		raw.Close()
		drain()
		return fmt.Errorf("eval: client: %w", err)
	}
	var s accepted
	select {
	case s = <-sc:
	case <-rctx.Done():
		cli.Close()
		drain()
		return rctx.Err()
	}
	if s.err != nil {
		cli.Close()
		return fmt.Errorf("eval: bridge: %w", s.err)
	}
	wp := workload.Params{Seed: binary.BigEndian.Uint64(seed[:8]), Duration: cfg.Duration, BulkBytes: cfg.BulkBytes, Traces: traces, Site: -1}
	if j.Workload == "web" && len(traces) > 0 {
		wp.Site = j.Run % webSites(cfg.Runs, len(traces))
	}
	start := time.Now()
	res, werr := w.Run(rctx, cli, s.c, wp)
	r.Elapsed = time.Since(start)
	cli.Close()
	s.c.Close()
	cs, ss := cli.Shaper().Stats(), s.c.Shaper().Stats()
	r.WireUp, r.WireDown = cs.WireOut, ss.WireOut
	r.DecoyUp, r.DecoyDown = cs.DecoyOut, ss.DecoyOut
	r.Dropped = cs.Dropped + ss.Dropped
	r.FirstFlight = first.bytes()
	// Both taps record as their writes return, so two writes a few
	// microseconds apart may be recorded out of order: put them in time
	// order, as a trace is.
	r.Wire = rec.Events()
	sortEvents(r.Wire)
	r.WireDropped = rec.Dropped()
	// The workload's times count from its start; the wire's from the
	// recorder's. Put the application on the wire's clock.
	ws := start
	if !res.Start.IsZero() {
		ws = res.Start
	}
	shift := ws.Sub(rec.Start())
	r.Start = shift
	for _, e := range res.App {
		e.Time += shift
		r.App = append(r.App, e)
	}
	sortEvents(r.App)
	r.Up, r.Down, r.Completion, r.Site = res.Up, res.Down, res.Completion, res.Site
	if j.Workload != "web" {
		r.Site = -1
	}
	blocks := workload.Blocks(res)
	for _, b := range blocks {
		r.Blocks = append(r.Blocks, b.Sent+shift)
	}
	for _, m := range res.Messages {
		switch {
		case m.Recv < m.Sent:
			// never arrived
		case m.Dir == schedule.DirSent:
			r.DelaysUp = append(r.DelaysUp, m.Recv-m.Sent)
		default:
			r.DelaysDown = append(r.DelaysDown, m.Recv-m.Sent)
		}
	}
	if werr != nil {
		return fmt.Errorf("eval: workload %s: %w", j.Workload, werr)
	}
	if r.WireDropped > 0 {
		return fmt.Errorf("eval: the recorder dropped %d wire events (it keeps 1,000,000); shorten the run", r.WireDropped)
	}
	return nil
}

func sortEvents(ev []schedule.TraceEvent) {
	slices.SortStableFunc(ev, func(a, b schedule.TraceEvent) int { return cmp.Compare(a.Time, b.Time) })
}

// firstWrite keeps a copy of the first write on a connection: the
// client's first flight.
type firstWrite struct {
	net.Conn
	mu    sync.Mutex
	first []byte
	done  bool
}

func (c *firstWrite) Write(p []byte) (int, error) {
	c.mu.Lock()
	if !c.done {
		c.first, c.done = append([]byte(nil), p...), true
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *firstWrite) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.first
}
