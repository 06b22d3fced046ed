package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/bip324pt/bip324-pt/eval"
	"github.com/bip324pt/bip324-pt/eval/wiretap"
)

const demoHelp = `Usage: bip324-pt demo [flags]

Start a bip324-pt server and client in this process, talking over real TCP
on loopback, and move a built-in workload through the shaped tunnel: the
server streams data down as fast as the profile lets it, the client sends
1 KiB up every half second. Every byte is checked at the far end. Live
progress goes to stderr each second; a summary to stdout at the end:
goodput, bytes on the wire, overhead, and what the profile promised next to
what the wire showed.

Profiles: none, bitcoin, cbr, video, fet, jitter, or a profile file
(see "bip324-pt profile list").

Flags:
`

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "the server's listen `address` (port 0: a free port)")
	profile := fs.String("profile", "video", "profile `name` or file")
	duration := fs.Duration("duration", 10*time.Second, "how long the workload runs")
	trace := fs.String("trace", "", "write every write on the wire to `file` as time_ns,direction,size lines")
	quiet := fs.Bool("quiet", false, "no live progress")
	fs.Usage = func() { fmt.Fprint(fs.Output(), demoHelp); printFlags(fs) }
	pos, code, done := parseFlags(fs, args, stdout, stderr)
	if done {
		return code
	}
	if len(pos) > 0 {
		return usageError(stderr, "demo", "unexpected argument %q", pos[0])
	}
	if *duration <= 0 || *duration > 24*time.Hour {
		return usageError(stderr, "demo", "--duration %v, want more than 0 and at most 24h", *duration)
	}
	var tf *os.File
	if *trace != "" {
		f, err := os.Create(*trace)
		if err != nil {
			fmt.Fprintf(stderr, "bip324-pt: demo: %v\n", err)
			return exitFailure
		}
		tf = f
		defer f.Close()
	}
	rec := wiretap.New(time.Now(), 0)
	opts := eval.DemoOptions{Addr: *addr, Profile: *profile, Duration: *duration, Recorder: rec}
	if !*quiet {
		opts.Progress = func(p eval.Progress) {
			fmt.Fprintf(stderr, "%5.1fs  down %9s (%9s/s)  up %8s  wire down %9s  decoys %4.1f%%\n",
				p.Elapsed.Seconds(), size(p.Down), size(int64(p.DownRate)), size(p.Up), size(p.WireDown), 100*p.DecoyShareDown)
		}
	}
	fmt.Fprintf(stderr, "demo: profile %s for %v on loopback\n", *profile, *duration)
	res, err := eval.Demo(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "bip324-pt: demo: %v\n", err)
		return exitFailure
	}
	secs := res.Elapsed.Seconds()
	wire := res.Server.WireOut + res.Client.WireOut
	data := res.Down + res.Up
	fmt.Fprintf(stdout, "profile: %s (schedule %s)\n", res.Profile, orImmediate(res.Schedule))
	fmt.Fprintf(stdout, "server: %s\n", res.Addr)
	fmt.Fprintf(stdout, "duration: %.1fs\n", secs)
	fmt.Fprintf(stdout, "goodput down: %s/s (%s checked)\n", size(int64(float64(res.Down)/secs)), size(res.Down))
	fmt.Fprintf(stdout, "goodput up: %s/s (%s checked)\n", size(int64(float64(res.Up)/secs)), size(res.Up))
	fmt.Fprintf(stdout, "wire bytes: %s down, %s up (%d writes down, %d up)\n",
		size(res.Server.WireOut), size(res.Client.WireOut), res.Server.Writes, res.Client.Writes)
	fmt.Fprintf(stdout, "decoy bytes: %s down, %s up\n", size(res.Server.DecoyOut), size(res.Client.DecoyOut))
	if data > 0 {
		fmt.Fprintf(stdout, "overhead: %.1f%% (wire bytes beyond the data delivered)\n", 100*float64(wire-data)/float64(data))
	}
	for _, line := range res.Check {
		fmt.Fprintf(stdout, "check: %s\n", line)
	}
	if tf != nil {
		if err := rec.WriteTrace(tf); err != nil {
			fmt.Fprintf(stderr, "bip324-pt: demo: writing the trace: %v\n", err)
			return exitFailure
		}
		fmt.Fprintf(stdout, "trace: %d writes in %s\n", len(res.Events), *trace)
	}
	return exitOK
}

func orImmediate(s string) string {
	if s == "" {
		return "immediate"
	}
	return s
}

// size formats a byte count with a binary unit.
func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
