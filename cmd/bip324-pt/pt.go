package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	pt "gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/goptlib"

	"github.com/bip324pt/bip324-pt/internal/bridge"
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
	fs.Usage = func() { fmt.Fprint(fs.Output(), managedHelp); printFlags(fs) }
	pos, code, done := parseFlags(fs, args, stdout, stderr)
	if done {
		return code
	}
	if len(pos) > 0 {
		return usageError(stderr, "", "unexpected argument %q", pos[0])
	}
	lvl, err := parseLevel(*level)
	if err != nil {
		fmt.Fprintf(stdout, "ENV-ERROR %v\n", err)
		return exitFailure
	}
	dir, err := ptspec.StateDir()
	if err != nil {
		return exitFailure
	}
	lf, err := os.OpenFile(filepath.Join(dir, logFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		fmt.Fprintf(stdout, "ENV-ERROR cannot open the log in the state directory: %v\n", err)
		return exitFailure
	}
	defer lf.Close()
	log := slog.New(slog.NewTextHandler(lf, &slog.HandlerOptions{Level: lvl}))
	// The bridge waits up to a minute for a client's first bytes, so the
	// setup of a connection may take a little longer than that.
	cfg := ptspec.Config{Logger: log, LogAddrs: *logAddrs, Stdout: stdout, HandshakeTimeout: 90 * time.Second, MaxHandshakes: 4096}
	if ptspec.ManagedClient() {
		log.Info("bip324-pt: managed client starting", "version", version())
		err = ptspec.RunClient(ctx, cfg, clientFactory{bridge.ClientFactory{Logger: log}})
	} else {
		log.Info("bip324-pt: managed server starting", "version", version())
		var servers []*bridge.Server
		defer func() {
			for _, s := range servers {
				s.Close()
			}
		}()
		err = ptspec.RunServer(ctx, cfg, func(b pt.Bindaddr) (ptspec.ServerFactory, error) {
			o, err := bridge.ParseServerOptions(b.Options)
			if err != nil {
				return nil, err
			}
			srv, err := o.NewServer(dir, log)
			if err != nil {
				return nil, err
			}
			servers = append(servers, srv)
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

const managedHelp = `Usage: bip324-pt [--log-level LEVEL] [--unsafe-logging]

With tor's TOR_PT_* variables in the environment, bip324-pt is tor's
managed transport (ClientTransportPlugin or ServerTransportPlugin): no
subcommand, only these flags. A bridge takes profile=, allow= and
node= (fallback= is its older name) in ServerTransportOptions.

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
	level := fs.String("log-level", "info", "log `level` on stderr")
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
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	log.Info("bip324-pt: server starting", "version", version())
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
	cfg := ptspec.Config{Logger: log, HandshakeTimeout: o.ProbeCloseMax + 30*time.Second, MaxHandshakes: 4096}
	if err := ptspec.Serve(ctx, cfg, ln, srv, *forward); err != nil {
		fmt.Fprintf(stderr, "bip324-pt: server: %v\n", err)
		return exitFailure
	}
	return exitOK
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
	level := fs.String("log-level", "info", "log `level` on stderr")
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
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	f := clientFactory{bridge.ClientFactory{Defaults: bargs, Logger: log}}
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
	ln, err := ptspec.Listen(ctx, *listen)
	if err != nil {
		fmt.Fprintf(stderr, "bip324-pt: client: %v\n", err)
		return exitFailure
	}
	cfg := ptspec.Config{Logger: log}
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
