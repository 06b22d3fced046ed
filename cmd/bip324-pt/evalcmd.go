package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bip324pt/bip324-pt/eval"
)

func init() {
	commands = append(commands,
		command{name: "eval", summary: "measure profiles: run workloads through real tunnels, report cost and what a censor's classifiers tell", run: runEval},
		command{name: "eval merge", summary: "combine the runs of several eval --shard directories into one report", run: runEvalMerge})
}

const evalHelp = `Usage: bip324-pt eval [flags]

Run every workload through every profile over real TCP on loopback (a
bip324-pt bridge and client, both sockets recorded), then report what each
profile costs (goodput, overhead, delays, decoys) and what a censor learns
(workload classifier, distance from the profile's target, Bitcoin Core
model, website fingerprinting, the fully-encrypted-traffic rule, handshake
uniformity). With no flags: every built-in profile on web, interactive and
idle, 3 runs of 3 s each, in under a minute.

Writes DIR/report.md, DIR/results.json, DIR/traces/ (Maybenot
time_ns,direction,size: NAME.wire both sockets, NAME.app the application),
DIR/runs/ and DIR/plots/ (PNG and SVG). The same --seed gives the same
shaping decisions and workloads; times vary by scheduler noise.

Workloads: bulk, web, interactive, idle, bitcoin.

Flags:
`

func runEval(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	profs := fs.String("profiles", "", "comma-separated profile names or files (default: every built-in)")
	works := fs.String("workload", strings.Join(eval.DefaultWorkloads, ","), "comma-separated workloads")
	runs := fs.Int("runs", 3, "runs per profile and workload")
	seed := fs.Uint64("seed", 1, "seed of every run's shaping and workload")
	out := fs.String("out", "eval-report", "output `directory`")
	duration := fs.Duration("duration", 3*time.Second, "how long each run's workload runs")
	bulk := fs.Int64("bulk", 1<<20, "bytes the bulk workload moves each way")
	shard := fs.String("shard", "", "run only the k-th of n slices of the run matrix (`k/n`); combine with \"eval merge\"")
	link := fs.String("link", "", "emulate a path between client and bridge: `rate,delay` (\"20mbit,40ms\")")
	parallel := fs.Int("parallel", 6, "runs at once")
	traces := fs.String("traces", filepath.Join("testdata", "traces"), "`directory` of the web workload's page-load traces")
	quiet := fs.Bool("quiet", false, "no progress on stderr")
	fs.Usage = func() { fmt.Fprint(fs.Output(), evalHelp); printFlags(fs) }
	pos, code, done := parseFlags(fs, args, stdout, stderr)
	if done {
		return code
	}
	if len(pos) > 0 {
		return usageError(stderr, "eval", "unexpected argument %q", pos[0])
	}
	// Zero in eval.Config means a default; on the command line it is a
	// mistake.
	switch {
	case *runs < 1:
		return usageError(stderr, "eval", "--runs %d, want 1 or more", *runs)
	case *duration <= 0:
		return usageError(stderr, "eval", "--duration %v, want more than 0", *duration)
	case *bulk < 1:
		return usageError(stderr, "eval", "--bulk %d, want 1 or more bytes", *bulk)
	case *parallel < 1:
		return usageError(stderr, "eval", "--parallel %d, want 1 or more", *parallel)
	case *out == "":
		return usageError(stderr, "eval", "--out is empty")
	}
	cfg := eval.Config{Runs: *runs, Seed: *seed, Duration: *duration, BulkBytes: *bulk, Parallel: *parallel, TracesDir: *traces, Out: *out}
	if *seed == 0 {
		return usageError(stderr, "eval", "--seed 0; give a seed of 1 or more")
	}
	cfg.Profiles = splitList(*profs)
	cfg.Workloads = splitList(*works)
	if len(cfg.Workloads) == 0 {
		return usageError(stderr, "eval", "--workload is empty")
	}
	if *shard != "" {
		k, n, err := parseShard(*shard)
		if err != nil {
			return usageError(stderr, "eval", "%v", err)
		}
		cfg.Shard, cfg.Shards = k, n
	}
	l, err := eval.ParseLink(*link)
	if err != nil {
		return usageError(stderr, "eval", "%v", err)
	}
	cfg.Link = l
	if !*quiet {
		cfg.Progress = stderr
	}
	rep, err := eval.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "bip324-pt: eval: %v\n", err)
		return exitFailure
	}
	printSummary(stdout, rep, *out)
	return exitOK
}

func runEvalMerge(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("eval merge", flag.ContinueOnError)
	out := fs.String("out", "eval-merged", "output `directory` for the combined runs and report")
	traces := fs.String("traces", filepath.Join("testdata", "traces"), "`directory` of the web workload's traces (for the undefended fingerprinting baseline)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: bip324-pt eval merge [flags] DIR...\n\nCombine the runs of \"eval --shard k/n --out DIR\" directories into one report.\n\nFlags:\n")
		printFlags(fs)
	}
	pos, code, done := parseFlags(fs, args, stdout, stderr)
	if done {
		return code
	}
	if len(pos) == 0 {
		return usageError(stderr, "eval merge", "no directories to merge")
	}
	rep, err := eval.Merge(*out, pos, *traces)
	if err != nil {
		fmt.Fprintf(stderr, "bip324-pt: eval merge: %v\n", err)
		return exitFailure
	}
	printSummary(stdout, rep, *out)
	return exitOK
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// parseShard reads "k/n" with 1 <= k <= n.
func parseShard(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "/")
	k, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || k < 1 || k > n || n > 10000 {
		return 0, 0, fmt.Errorf("--shard %q, want k/n with 1 <= k <= n (\"2/4\")", s)
	}
	return k, n, nil
}

// printSummary prints the headline figures and where the report is.
func printSummary(w io.Writer, rep *eval.Report, dir string) {
	f := func(n eval.Num, format string) string {
		if math.IsNaN(float64(n)) || math.IsInf(float64(n), 0) {
			return "n/a"
		}
		return fmt.Sprintf(format, float64(n))
	}
	fmt.Fprintf(w, "%-12s %5s %9s %9s %12s %10s %8s\n", "profile", "runs", "ovh up", "ovh down", "up p90 ms", "leakage", "chance")
	for _, p := range rep.Profiles {
		fmt.Fprintf(w, "%-12s %5d %9s %9s %12s %10s %8s\n", filepath.Base(p.Profile), p.Runs-p.Failed,
			f(p.OverheadUp, "%.2f"), f(p.OverheadDown, "%.2f"), f(p.DelayUpP90*1000, "%.0f"), f(p.Leakage, "%.2f"), f(p.Chance, "%.2f"))
	}
	fmt.Fprintf(w, "report: %s\n", filepath.Join(dir, "report.md"))
}
