package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	pt "gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/goptlib"

	"github.com/bip324pt/bip324-pt/internal/bridge"
	"github.com/bip324pt/bip324-pt/internal/stats"
	"github.com/bip324pt/bip324-pt/ptspec"
	"github.com/bip324pt/bip324-pt/v2core"
)

// logFile is the log in the state directory in managed mode.
const logFile = "bip324-pt.log"

// clientFactory is bridge.ClientFactory as ptspec's ClientFactory: the
// bridge line's arguments come from each SOCKS request.
type clientFactory struct{ bridge.ClientFactory }

func (f clientFactory) NewClient(args pt.Args) (ptspec.Wrapper, error) {
	cc, err := f.ClientFactory.NewClient(args)
	if err != nil {
		return nil, err
	}
	return cc, nil
}

// serverFactory is a bridge as ptspec's ServerFactory for one bindaddr.
type serverFactory struct{ *bridge.Server }

func (f serverFactory) Args() pt.Args { return f.Server.Args() }

// runManaged runs bip324-pt as tor's managed transport: the client side
// when TOR_PT_CLIENT_TRANSPORTS is set, else the server side.
func runManaged(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	level := fs.String("log-level", "info", "log `level` in <state dir>/"+logFile+": debug, info, warn, error")
	logAddrs := fs.Bool("unsafe-logging", false, "put peer addresses in the log (scrubbed by default)")
	var ops opsFlags
	ops.register(fs, false)
	fs.Usage = func() { fmt.Fprint(fs.Output(), managedHelp); printFlags(fs) }
	pos, code, done := parseFlags(fs, args, stdout, stderr)
	if done {
		return code
	}
	if len(pos) > 0 {
		return usageError(stderr, "", "unexpected argument %q", pos[0])
	}
	lvl, err := parseLevel(*level)
	if err == nil {
		err = ops.check()
	}
	if err != nil {
		fmt.Fprintf(stdout, "ENV-ERROR %v\n", err)
		return exitFailure
	}
	dir, err := ptspec.StateDir()
	if err != nil {
		return exitFailure
	}
	lw, err := openLog(filepath.Join(dir, logFile), nil)
	if err != nil {
		fmt.Fprintf(stdout, "ENV-ERROR cannot open the log in the state directory: %v\n", err)
		return exitFailure
	}
	defer lw.Close()
	log := newLogger(lw, lvl)
	counters := stats.New()
	// The bridge waits up to a minute for a client's first bytes, so the
	// setup of a connection may take a little longer than that.
	cfg := ptspec.Config{Logger: log, LogAddrs: *logAddrs, Stdout: stdout, HandshakeTimeout: 90 * time.Second, MaxHandshakes: 4096,
		Drain: ops.drain, OnUpstreamFail: func() { counters.Refused(stats.RefusedUpstream) }}
	var mu sync.Mutex
	var servers []*bridge.Server
	var options []bridge.ServerOptions
	op := &operator{log: log, counters: counters, flags: ops, reopen: lw.Reopen,
		status: func(kv string) { ptspec.Status(stdout, "bip324", kv) },
		reload: func() error {
			mu.Lock()
			defer mu.Unlock()
			for i, s := range servers {
				if err := s.Reload(options[i].Profile, splitList(options[i].Allow)); err != nil {
					return err
				}
			}
			return nil
		}}
	if err := op.start(ctx); err != nil {
		fmt.Fprintf(stdout, "ENV-ERROR %v\n", err)
		return exitFailure
	}
	defer op.stop()
	if ptspec.ManagedClient() {
		log.Info("bip324-pt: managed client starting", "version", version())
		log.Info("bip324-pt: config", "mode", "managed client", "log_level", *level, "unsafe_logging", *logAddrs,
			"stats_interval", ops.statsInterval, "metrics", ops.metrics, "drain", ops.drain)
		err = ptspec.RunClient(ctx, cfg, clientFactory{bridge.ClientFactory{Logger: log, Stats: counters}})
	} else {
		log.Info("bip324-pt: managed server starting", "version", version())
		log.Info("bip324-pt: config", "mode", "managed server", "state", dir, "log_level", *level, "unsafe_logging", *logAddrs,
			"stats_interval", ops.statsInterval, "metrics", ops.metrics, "drain", ops.drain)
		defer func() {
			mu.Lock()
			defer mu.Unlock()
			for _, s := range servers {
				s.Close()
			}
		}()
		err = ptspec.RunServer(ctx, cfg, func(b pt.Bindaddr) (ptspec.ServerFactory, error) {
			o, err := bridge.ParseServerOptions(b.Options)
			if err != nil {
				return nil, err
			}
			o.Stats = counters
			srv, err := o.NewServer(dir, log)
			if err != nil {
				return nil, err
			}
			mu.Lock()
			servers, options = append(servers, srv), append(options, o)
			mu.Unlock()
			log.Info("bip324-pt: bridge options", "method", b.MethodName, "profile", o.Profile, "allow", orAll(o.Allow), "node", o.Node != "")
			log.Info("bip324-pt: bridge line written", "file", filepath.Join(dir, bridge.BridgeLineFile))
			return serverFactory{srv}, nil
		})
	}
	if err != nil {
		log.Error("bip324-pt: managed mode ended", "err", err)
		return exitFailure
	}
	log.Info("bip324-pt: managed mode done")
	return exitOK
}

const managedHelp = `Usage: bip324-pt [--log-level LEVEL] [--unsafe-logging] [--stats-interval D] [--metrics ADDR] [--drain D]

With tor's TOR_PT_* variables in the environment, bip324-pt is tor's
managed transport (ClientTransportPlugin or ServerTransportPlugin): no
subcommand, only these flags. A bridge takes profile=, allow= and
node= (fallback= is its older name) in ServerTransportOptions. The log
is <state dir>/bip324-pt.log; a "stats" line goes there every
--stats-interval, and tor gets the same figures as a STATUS line.

Flags:
`

const serverHelp = `Usage: bip324-pt server --listen ADDR --forward HOST:PORT [flags]

Run a bip324-pt bridge without tor: accept shaped BIP324 connections on
ADDR from clients that hold this bridge's secret, and forward each to
HOST:PORT. The secret is made on first start and kept in --state; the
bridge line clients need is printed at start and written to
<state>/bip324_bridgeline.txt.

To everyone else the bridge is a Bitcoin Core node: it answers the first
byte with its BIP324 key and garbage, as Core does, closes where Core
closes, and completes the handshake. A peer that does not authenticate is
then served as a Bitcoin peer: with --node HOST:PORT (a real node; even a
pruned one is enough) relayed to it message by message, otherwise left
silent and closed 60-61 s after accept, as Core closes a peer that never
sends its version (--probe-close-min..max).

Flags:
`

func runServer(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	listen := fs.String("listen", "", "`address` to accept clients on (required)")
	forward := fs.String("forward", "", "`HOST:PORT` each client connection is forwarded to (required)")
	state := fs.String("state", "bip324-pt-state", "state `directory` (the secret, the bridge line)")
	var o bridge.ServerOptions
	fs.StringVar(&o.Profile, "profile", "none", "default `profile` of the bridge's direction")
	fs.StringVar(&o.Allow, "allow", "", "comma-separated built-in `profiles` clients may ask for (default: all)")
	fs.StringVar(&o.Node, "node", "", "`HOST:PORT` of a real Bitcoin node that serves every peer that does not authenticate")
	fallback := fs.String("fallback", "", "older name of --node")
	network := fs.String("network", "main", "Bitcoin `network` the bridge poses as a node of: main, test, testnet4, signet, regtest")
	fs.DurationVar(&o.ProbeCloseMin, "probe-close-min", 60*time.Second, "earliest close, after accept, of a connection that has not authenticated (Core: 60 s)")
	fs.DurationVar(&o.ProbeCloseMax, "probe-close-max", 61*time.Second, "latest such close (Core: 61 s)")
	allowFile := fs.String("allow-file", "", "read the allow-list from `file` (names separated by commas or lines; re-read on SIGHUP) instead of --allow")
	level := fs.String("log-level", "info", "log `level`")
	unsafeLogging := fs.Bool("unsafe-logging", false, "put peer addresses in the log (scrubbed by default)")
	var ops opsFlags
	ops.register(fs, true)
	fs.Usage = func() { fmt.Fprint(fs.Output(), serverHelp); printFlags(fs) }
	pos, code, done := parseFlags(fs, args, stdout, stderr)
	if done {
		return code
	}
	if len(pos) > 0 {
		return usageError(stderr, "server", "unexpected argument %q", pos[0])
	}
	if *listen == "" || *forward == "" {
		return usageError(stderr, "server", "--listen and --forward are required")
	}
	if err := bridge.CheckHostPort(*forward); err != nil {
		return usageError(stderr, "server", "--forward: %v", err)
	}
	if flagSet(fs, "fallback") {
		if err := bridge.CheckHostPort(*fallback); err != nil {
			return usageError(stderr, "server", "--fallback: %v", err)
		}
		if o.Node != "" && o.Node != *fallback {
			return usageError(stderr, "server", "--node %s and --fallback %s name different nodes", o.Node, *fallback)
		}
		o.Node = *fallback
	}
	if flagSet(fs, "node") {
		if err := bridge.CheckHostPort(o.Node); err != nil {
			return usageError(stderr, "server", "--node: %v", err)
		}
	}
	nw, err := v2core.ParseNetwork(*network)
	if err != nil {
		return usageError(stderr, "server", "--network: %v", err)
	}
	o.Network = nw
	if o.ProbeCloseMax < o.ProbeCloseMin {
		return usageError(stderr, "server", "--probe-close-max %v is below --probe-close-min %v", o.ProbeCloseMax, o.ProbeCloseMin)
	}
	lvl, err := parseLevel(*level)
	if err != nil {
		return usageError(stderr, "server", "%v", err)
	}
	if err := ops.check(); err != nil {
		return usageError(stderr, "server", "%v", err)
	}
	if *allowFile != "" {
		if o.Allow, err = readAllowFile(*allowFile); err != nil {
			return usageError(stderr, "server", "--allow-file: %v", err)
		}
	}
	lw, err := openLog(ops.logFile, stderr)
	if err != nil {
		return usageError(stderr, "server", "--log-file: %v", err)
	}
	defer lw.Close()
	log := newLogger(lw, lvl)
	log.Info("bip324-pt: server starting", "version", version())
	log.Info("bip324-pt: config", "listen", *listen, "forward", *forward, "state", *state, "profile", o.Profile, "allow", orAll(o.Allow),
		"node", o.Node, "network", *network, "probe_close", fmt.Sprintf("%v..%v", o.ProbeCloseMin, o.ProbeCloseMax),
		"stats_interval", ops.statsInterval, "metrics", ops.metrics, "drain", ops.drain, "log_file", ops.logFile, "unsafe_logging", *unsafeLogging)
	counters := stats.New()
	o.Stats = counters
	srv, err := o.NewServer(*state, log)
	if err != nil {
		fmt.Fprintf(stderr, "bip324-pt: server: %v\n", err)
		return exitFailure
	}
	defer srv.Close()
	ln, err := ptspec.Listen(ctx, *listen)
	if err != nil {
		fmt.Fprintf(stderr, "bip324-pt: server: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(stdout, "listening: %s\n", ln.Addr())
	fmt.Fprintf(stdout, "bridge: %s %s\n", ln.Addr(), srv.BridgeArgs())
	// The bridge closes what has not authenticated by probe-close-max
	// itself; the setup bound only catches what it misses.
	cfg := ptspec.Config{Logger: log, LogAddrs: *unsafeLogging, HandshakeTimeout: o.ProbeCloseMax + 30*time.Second, MaxHandshakes: 4096,
		Drain: ops.drain, OnUpstreamFail: func() { counters.Refused(stats.RefusedUpstream) }}
	op := &operator{log: log, counters: counters, flags: ops, reopen: lw.Reopen, reload: func() error {
		allow := o.Allow
		if *allowFile != "" {
			var err error
			if allow, err = readAllowFile(*allowFile); err != nil {
				return err
			}
		}
		if err := srv.Reload(o.Profile, splitList(allow)); err != nil {
			return err
		}
		log.Info("bip324-pt: config reloaded", "profile", o.Profile, "allow", orAll(allow))
		return nil
	}}
	if err := op.start(ctx); err != nil {
		ln.Close()
		fmt.Fprintf(stderr, "bip324-pt: server: %v\n", err)
		return exitFailure
	}
	defer op.stop()
	if err := ptspec.Serve(ctx, cfg, ln, srv, *forward); err != nil {
		fmt.Fprintf(stderr, "bip324-pt: server: %v\n", err)
		return exitFailure
	}
	log.Info("bip324-pt: server stopped")
	return exitOK
}

// readAllowFile reads an allow-list: names separated by commas, spaces
// or lines; # starts a comment.
func readAllowFile(name string) (string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return "", err
	}
	var names []string
	for _, line := range strings.Split(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#")
		names = append(names, strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\r' })...)
	}
	if len(names) == 0 {
		return "", fmt.Errorf("%s names no profile", name)
	}
	return strings.Join(names, ","), nil
}

// orAll shows an empty allow-list as what it means.
func orAll(allow string) string {
	if allow == "" {
		return "every built-in"
	}
	return allow
}

const clientHelp = `Usage: bip324-pt client --listen 127.0.0.1:PORT --bridge 'HOST:PORT secret=... [profile=...] [seed=...]' [flags]

Run a bip324-pt client without tor. By default --listen is a SOCKS5 proxy
in tor's style: each request names the bridge to reach, and may carry the
bridge's arguments in its username/password (key=value;...); --bridge
supplies the arguments a request leaves out. With --forward, --listen is a
plain TCP port and every connection goes through the --bridge (the bridge's
HOST:PORT may also follow: --forward HOST:PORT).

profile= names the built-in profile that shapes both directions (the
bridge applies it to its side if its allow-list has it); default none.

Flags:
`

func runClient(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "`address` to listen on")
	bridgeLine := fs.String("bridge", "", "the bridge: 'HOST:PORT secret=... profile=...'")
	var fwd forwardFlag
	fs.Var(&fwd, "forward", "plain TCP forwarding to the bridge instead of SOCKS5 (optionally =HOST:PORT of the bridge)")
	forward := &fwd.on
	level := fs.String("log-level", "info", "log `level`")
	unsafeLogging := fs.Bool("unsafe-logging", false, "put bridge and peer addresses in the log (scrubbed by default)")
	check := fs.Bool("check", false, "check the --bridge and exit: connect, authenticate, one round trip, print the profiles and the time")
	timeout := fs.Duration("timeout", 30*time.Second, "with --check, the bound on the whole check")
	var ops opsFlags
	ops.register(fs, true)
	fs.Usage = func() { fmt.Fprint(fs.Output(), clientHelp); printFlags(fs) }
	pos, code, done := parseFlags(fs, args, stdout, stderr)
	if done {
		return code
	}
	if len(pos) > 0 {
		return usageError(stderr, "client", "unexpected argument %q", pos[0])
	}
	lvl, err := parseLevel(*level)
	if err != nil {
		return usageError(stderr, "client", "%v", err)
	}
	addr, bargs, err := bridge.ParseBridgeLine(*bridgeLine)
	if err != nil {
		return usageError(stderr, "client", "--bridge: %v", err)
	}
	if fwd.addr != "" {
		if addr != "" && addr != fwd.addr {
			return usageError(stderr, "client", "--forward %s and --bridge %s name different bridges", fwd.addr, addr)
		}
		addr = fwd.addr
	}
	if *forward && addr == "" {
		return usageError(stderr, "client", "--forward needs the bridge's HOST:PORT (in --bridge or after --forward)")
	}
	if *check {
		return runClientCheck(ctx, addr, bargs, *timeout, stdout, stderr)
	}
	if err := ops.check(); err != nil {
		return usageError(stderr, "client", "%v", err)
	}
	lw, err := openLog(ops.logFile, stderr)
	if err != nil {
		return usageError(stderr, "client", "--log-file: %v", err)
	}
	defer lw.Close()
	log := newLogger(lw, lvl)
	counters := stats.New()
	f := clientFactory{bridge.ClientFactory{Defaults: bargs, Logger: log, Stats: counters}}
	var w ptspec.Wrapper
	if *forward {
		w, err = f.NewClient(nil)
	} else {
		err = f.CheckDefaults()
	}
	if err != nil {
		return usageError(stderr, "client", "--bridge: %v", err)
	}
	log.Info("bip324-pt: client starting", "version", version())
	log.Info("bip324-pt: config", "listen", *listen, "mode", map[bool]string{true: "forward", false: "socks5"}[*forward],
		"bridge", redactLine(*bridgeLine, *unsafeLogging), "stats_interval", ops.statsInterval, "metrics", ops.metrics,
		"drain", ops.drain, "log_file", ops.logFile, "unsafe_logging", *unsafeLogging)
	ln, err := ptspec.Listen(ctx, *listen)
	if err != nil {
		fmt.Fprintf(stderr, "bip324-pt: client: %v\n", err)
		return exitFailure
	}
	cfg := ptspec.Config{Logger: log, LogAddrs: *unsafeLogging, Drain: ops.drain}
	op := &operator{log: log, counters: counters, flags: ops, reopen: lw.Reopen}
	if err := op.start(ctx); err != nil {
		ln.Close()
		fmt.Fprintf(stderr, "bip324-pt: client: %v\n", err)
		return exitFailure
	}
	defer op.stop()
	if *forward {
		fmt.Fprintf(stdout, "forwarding: %s -> %s\n", ln.Addr(), addr)
		err = ptspec.Forward(ctx, cfg, ln, w, addr)
	} else {
		fmt.Fprintf(stdout, "socks5: %s\n", ln.Addr())
		err = ptspec.ServeSOCKS(ctx, cfg, ln, f)
	}
	if err != nil {
		fmt.Fprintf(stderr, "bip324-pt: client: %v\n", err)
		return exitFailure
	}
	return exitOK
}
