package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	pt "gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/goptlib"

	"github.com/bip324pt/bip324-pt/internal/bridge"
	"github.com/bip324pt/bip324-pt/internal/bridgeauth"
	"github.com/bip324pt/bip324-pt/profiles"
	"github.com/bip324pt/bip324-pt/ptspec"
	"github.com/bip324pt/bip324-pt/shaper"
)

// logFile is the log in the state directory in managed mode.
const logFile = "bip324-pt.log"

// parseLevel maps --log-level to a slog level.
func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// shapes holds each profile compiled once: a Shape is shared by every
// connection that uses it.
var shapes sync.Map // name -> shapeEntry

type shapeEntry struct {
	shape   *shaper.Shape
	request bool // the profile sends a version-packet request
}

// shaping returns the compiled profile name (compiled once), and seedHex
// (64 hex digits or empty) as a seed.
func shaping(name, seedHex string) (*shaper.Shape, bool, [32]byte, error) {
	var seed [32]byte
	if seedHex != "" {
		b, err := hex.DecodeString(seedHex)
		if err != nil || len(b) != 32 {
			return nil, false, seed, errors.New("seed= wants 64 hex digits")
		}
		copy(seed[:], b)
	}
	if e, ok := shapes.Load(name); ok {
		return e.(shapeEntry).shape, e.(shapeEntry).request, seed, nil
	}
	p, err := profiles.Load(name)
	if err != nil {
		return nil, false, seed, err
	}
	shape, err := p.Compile()
	if err != nil {
		return nil, false, seed, err
	}
	e, _ := shapes.LoadOrStore(name, shapeEntry{shape, p.WantsVersionRequest()})
	return e.(shapeEntry).shape, e.(shapeEntry).request, seed, nil
}

// clientFactory makes bridge clients from bridge-line arguments, with
// defaults for arguments a SOCKS request leaves out.
type clientFactory struct {
	defaults pt.Args
	// log gets the client's warnings (a bridge that applied another
	// profile than the one asked for); nil means silent.
	log *slog.Logger
}

type clientWrapper struct{ cc *bridge.ClientConfig }

func (w clientWrapper) WrapConn(ctx context.Context, conn net.Conn) (net.Conn, error) {
	return bridge.Client(ctx, conn, w.cc)
}

// NewClient makes a client from a SOCKS request's bridge-line arguments;
// f.defaults supplies those it leaves out. An unknown key is an error.
func (f clientFactory) NewClient(args pt.Args) (ptspec.Wrapper, error) {
	if err := checkKeys(args, bridgeLineKeys); err != nil {
		return nil, fmt.Errorf("bridge line: %w", err)
	}
	cc, err := clientConfig(func(k string) string {
		if v, ok := args.Get(k); ok {
			return v
		}
		v, _ := f.defaults.Get(k)
		return v
	}, true)
	if err != nil {
		return nil, err
	}
	cc.Logger = f.log
	return clientWrapper{cc}, nil
}

// checkDefaults checks the arguments of --bridge at start, where the
// secret may be left to each SOCKS request.
func (f clientFactory) checkDefaults() error {
	if err := checkKeys(f.defaults, bridgeLineKeys); err != nil {
		return err
	}
	_, err := clientConfig(func(k string) string {
		v, _ := f.defaults.Get(k)
		return v
	}, false)
	return err
}

// clientConfig builds a bridge client from the bridge-line arguments get
// returns ("" for one not given). Without needSecret, a missing secret=
// is no error, and the result is nil.
func clientConfig(get func(key string) string, needSecret bool) (*bridge.ClientConfig, error) {
	secretArg := get("secret")
	var secret bridgeauth.Secret
	if secretArg != "" {
		var err error
		if secret, err = bridgeauth.ParseSecret(secretArg); err != nil {
			return nil, err
		}
	} else if needSecret {
		return nil, errors.New("missing secret= (copy it from the bridge line)")
	}
	// Without profile=, we send unshaped and the bridge uses its own
	// default for its direction.
	profile := get("profile")
	shape := profile
	if shape == "" {
		shape = "none"
	}
	// Only built-in names: a bridge line, which tor passes to us, never
	// names a file on this machine.
	if _, ok := profiles.BuiltinSource(shape); !ok {
		return nil, fmt.Errorf("profile=%q is not a built-in profile (%s)", profile, strings.Join(profiles.Builtins(), ", "))
	}
	cfg, wantsRequest, seed, err := shaping(shape, get("seed"))
	if err != nil {
		return nil, err
	}
	if secretArg == "" {
		return nil, nil
	}
	req := bridge.Request{Profile: profile, Seed: seed}
	if !wantsRequest {
		req = bridge.Request{}
	}
	return &bridge.ClientConfig{Secret: secret, Shape: cfg, Seed: seed, Request: req}, nil
}

// serverFactory is the bridge for one bindaddr.
type serverFactory struct {
	srv  *bridge.Server
	args pt.Args
}

func (f *serverFactory) Args() pt.Args { return f.args }
func (f *serverFactory) WrapConn(ctx context.Context, conn net.Conn) (net.Conn, error) {
	return f.srv.WrapConn(ctx, conn)
}

// serverOptions are the bridge's settings, from flags (standalone) or
// ServerTransportOptions (managed).
type serverOptions struct {
	profile      string
	allow        string
	fallback     string
	probeMin     time.Duration
	probeMax     time.Duration
	firstTimeout time.Duration
}

// managedServerOptions reads a managed bridge's ServerTransportOptions
// (serverOptionKeys); an unknown key or a bad fallback= is an error.
func managedServerOptions(args pt.Args) (serverOptions, error) {
	var o serverOptions
	if err := checkKeys(args, serverOptionKeys); err != nil {
		return o, fmt.Errorf("ServerTransportOptions: %w", err)
	}
	o.profile, _ = args.Get("profile")
	o.allow, _ = args.Get("allow")
	o.fallback, _ = args.Get("fallback")
	if _, ok := args.Get("fallback"); ok {
		if err := checkHostPort(o.fallback); err != nil {
			return o, fmt.Errorf("ServerTransportOptions: fallback=: %w", err)
		}
	}
	return o, nil
}

func newServerFactory(stateDir string, o serverOptions, log *slog.Logger) (*serverFactory, bridgeauth.Secret, error) {
	secret, err := bridge.LoadOrCreateSecret(stateDir)
	if err != nil {
		return nil, secret, err
	}
	if o.profile == "" {
		o.profile = "none"
	}
	cfg, _, _, err := shaping(o.profile, "")
	if err != nil {
		return nil, secret, err
	}
	var allowed []string
	if o.allow != "" {
		allowed = strings.Split(o.allow, ",")
	}
	srv, err := bridge.NewServer(bridge.ServerConfig{
		Secret:           secret,
		Shape:            cfg,
		Profile:          o.profile,
		Allowed:          allowed,
		Fallback:         o.fallback,
		ProbeCloseMin:    o.probeMin,
		ProbeCloseMax:    o.probeMax,
		FirstReadTimeout: o.firstTimeout,
		Logger:           log,
	})
	if err != nil {
		return nil, secret, err
	}
	if err := bridge.WriteBridgeLine(stateDir, secret); err != nil {
		return nil, secret, err
	}
	args := pt.Args{}
	args.Add("secret", secret.Encode())
	return &serverFactory{srv: srv, args: args}, secret, nil
}

// runManaged runs bip324-pt as tor's managed transport: the client side
// when TOR_PT_CLIENT_TRANSPORTS is set, else the server side.
func runManaged(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bip324-pt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	level := fs.String("log-level", "info", "log `level` in <state dir>/"+logFile+": debug, info, warn, error")
	logAddrs := fs.Bool("unsafe-logging", false, "put peer addresses in the log (scrubbed by default)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
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
	cfg := ptspec.Config{Logger: log, LogAddrs: *logAddrs, Stdout: stdout, HandshakeTimeout: 90 * time.Second}
	if ptspec.ManagedClient() {
		log.Info("bip324-pt: managed client starting", "version", version())
		err = ptspec.RunClient(ctx, cfg, clientFactory{log: log})
	} else {
		log.Info("bip324-pt: managed server starting", "version", version())
		var servers []*bridge.Server
		defer func() {
			for _, s := range servers {
				s.Close()
			}
		}()
		err = ptspec.RunServer(ctx, cfg, func(b pt.Bindaddr) (ptspec.ServerFactory, error) {
			o, err := managedServerOptions(b.Options)
			if err != nil {
				return nil, err
			}
			f, _, err := newServerFactory(dir, o, log)
			if err != nil {
				return nil, err
			}
			servers = append(servers, f.srv)
			log.Info("bip324-pt: bridge line written", "file", filepath.Join(dir, bridge.BridgeLineFile))
			return f, nil
		})
	}
	if err != nil {
		log.Error("bip324-pt: managed mode ended", "err", err)
		return exitFailure
	}
	log.Info("bip324-pt: managed mode done")
	return exitOK
}

const serverHelp = `Usage: bip324-pt server --listen ADDR --forward HOST:PORT [flags]

Run a bip324-pt bridge without tor: accept shaped BIP324 connections on
ADDR from clients that hold this bridge's secret, and forward each to
HOST:PORT. The secret is made on first start and kept in --state; the
bridge line clients need is printed at start and written to
<state>/bip324_bridgeline.txt.

Connections that fail authentication get no byte from the bridge: they
are read and dropped for a random time in --probe-close-min..max, then
closed; or, with --fallback HOST:PORT (a real Bitcoin node), handed over
whole, so a prober meets a genuine node.

Flags:
`

func runServer(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	listen := fs.String("listen", "", "`address` to accept clients on (required)")
	forward := fs.String("forward", "", "`HOST:PORT` each client connection is forwarded to (required)")
	state := fs.String("state", "bip324-pt-state", "state `directory` (the secret, the bridge line)")
	var o serverOptions
	fs.StringVar(&o.profile, "profile", "none", "default `profile` of the bridge's direction")
	fs.StringVar(&o.allow, "allow", "", "comma-separated built-in `profiles` clients may ask for (default: all)")
	fs.StringVar(&o.fallback, "fallback", "", "`HOST:PORT` of a real Bitcoin node that gets refused connections")
	fs.DurationVar(&o.probeMin, "probe-close-min", 10*time.Second, "shortest delay before a refused connection is closed")
	fs.DurationVar(&o.probeMax, "probe-close-max", 60*time.Second, "longest delay before a refused connection is closed")
	fs.DurationVar(&o.firstTimeout, "first-read-timeout", 60*time.Second, "how long to wait for a client's first bytes")
	level := fs.String("log-level", "info", "log `level` on stderr")
	fs.Usage = func() { fmt.Fprint(fs.Output(), serverHelp); fs.PrintDefaults() }
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "server", "unexpected argument %q", fs.Arg(0))
	}
	if *listen == "" || *forward == "" {
		return usageError(stderr, "server", "--listen and --forward are required")
	}
	if err := checkHostPort(*forward); err != nil {
		return usageError(stderr, "server", "--forward: %v", err)
	}
	if flagSet(fs, "fallback") {
		if err := checkHostPort(o.fallback); err != nil {
			return usageError(stderr, "server", "--fallback: %v", err)
		}
	}
	lvl, err := parseLevel(*level)
	if err != nil {
		return usageError(stderr, "server", "%v", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	log.Info("bip324-pt: server starting", "version", version())
	f, secret, err := newServerFactory(*state, o, log)
	if err != nil {
		fmt.Fprintf(stderr, "bip324-pt: server: %v\n", err)
		return exitFailure
	}
	defer f.srv.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "bip324-pt: server: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(stdout, "listening: %s\n", ln.Addr())
	fmt.Fprintf(stdout, "bridge: %s %s\n", ln.Addr(), bridge.BridgeArgs(secret))
	cfg := ptspec.Config{Logger: log, HandshakeTimeout: o.firstTimeout + 30*time.Second}
	if err := ptspec.Serve(ctx, cfg, ln, f, *forward); err != nil {
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
	fs.Usage = func() { fmt.Fprint(fs.Output(), clientHelp); fs.PrintDefaults() }
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	// "--forward HOST:PORT": a boolean flag leaves the address behind,
	// and flag parsing stops there.
	if rest := fs.Args(); fwd.on && fwd.addr == "" && len(rest) > 0 {
		if err := fwd.Set(rest[0]); err != nil {
			return usageError(stderr, "client", "--forward: %v", err)
		}
		if code, done := parseFlags(fs, rest[1:], stdout, stderr); done {
			return code
		}
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "client", "unexpected argument %q", fs.Arg(0))
	}
	lvl, err := parseLevel(*level)
	if err != nil {
		return usageError(stderr, "client", "%v", err)
	}
	addr, bargs, err := parseBridge(*bridgeLine)
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
	f := clientFactory{defaults: bargs, log: log}
	var w ptspec.Wrapper
	if *forward {
		w, err = f.NewClient(pt.Args{})
	} else {
		err = f.checkDefaults()
	}
	if err != nil {
		return usageError(stderr, "client", "--bridge: %v", err)
	}
	log.Info("bip324-pt: client starting", "version", version())
	ln, err := net.Listen("tcp", *listen)
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

// parseBridge splits "HOST:PORT k=v k=v" (a bridge line without the
// "Bridge bip324" and fingerprint words, which it also accepts).
func parseBridge(s string) (string, pt.Args, error) {
	args := pt.Args{}
	fields := strings.Fields(s)
	if len(fields) > 0 && strings.EqualFold(fields[0], "bridge") {
		fields = fields[1:]
	}
	if len(fields) > 0 && fields[0] == "bip324" {
		fields = fields[1:]
	}
	addr := ""
	for _, f := range fields {
		if k, v, ok := strings.Cut(f, "="); ok {
			args.Add(k, v)
			continue
		}
		if addr == "" {
			if err := checkHostPort(f); err != nil {
				return "", nil, err
			}
			addr = f
			continue
		}
		if len(f) == 40 { // a fingerprint
			continue
		}
		return "", nil, fmt.Errorf("unexpected %q", f)
	}
	if err := checkKeys(args, bridgeLineKeys); err != nil {
		return "", nil, err
	}
	return addr, args, nil
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// forwardFlag is the client's --forward: a switch, which may also carry
// the bridge's address (--forward=HOST:PORT, or HOST:PORT after it).
type forwardFlag struct {
	on   bool
	addr string
}

func (f *forwardFlag) String() string {
	if f == nil || !f.on {
		return "false"
	}
	if f.addr != "" {
		return f.addr
	}
	return "true"
}

func (f *forwardFlag) Set(s string) error {
	switch s {
	case "true":
		f.on = true
		return nil
	case "false":
		f.on = false
		return nil
	}
	if err := checkHostPort(s); err != nil {
		return err
	}
	f.on, f.addr = true, s
	return nil
}

func (f *forwardFlag) IsBoolFlag() bool { return true }
