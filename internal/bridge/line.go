package bridge

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bip324pt/bip324-pt/internal/bridgeauth"
	"github.com/bip324pt/bip324-pt/internal/stats"
	"github.com/bip324pt/bip324-pt/profiles"
	"github.com/bip324pt/bip324-pt/shaper"
	"github.com/bip324pt/bip324-pt/v2core"
)

// This file is the bridge as an operator configures it: the bridge line a
// client is given (ParseBridgeLine, ClientFactory) and the bridge's own
// settings (ServerOptions). Arguments are plain maps from key to values,
// the shape of goptlib's pt.Args, so that this package needs no Tor
// library: ptspec and the command hand their pt.Args straight in.

// The keys bip324-pt reads, in the order errors list them. Every other
// key is refused, so that a misspelt setting is an error rather than a
// connection that silently runs without it.
var (
	// bridgeLineKeys are a bridge line's: what tor passes in each SOCKS
	// request, and the client's --bridge.
	bridgeLineKeys = []string{"secret", "profile", "seed", "network"}
	// serverOptionKeys are a managed bridge's ServerTransportOptions.
	serverOptionKeys = []string{"profile", "allow", "node", "fallback"}
)

// checkKeys returns an error naming the first key of args, in sorted
// order, that is not in known or that is given more than once.
func checkKeys(args map[string][]string, known []string) error {
	for _, k := range slices.Sorted(maps.Keys(args)) {
		if !slices.Contains(known, k) {
			return fmt.Errorf("unknown key %q (known: %s)", k, strings.Join(known, ", "))
		}
		if len(args[k]) > 1 {
			return fmt.Errorf("key %q given %d times", k, len(args[k]))
		}
	}
	return nil
}

// get returns the first value of key in args, as goptlib's Args.Get does.
func get(args map[string][]string, key string) (string, bool) {
	if v := args[key]; len(v) > 0 {
		return v[0], true
	}
	return "", false
}

// CheckHostPort checks that s is HOST:PORT with a host and a port in
// 1..65535: the form of a bridge's address, of fallback= and of the
// command's --forward and --fallback.
func CheckHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return fmt.Errorf("%q is not HOST:PORT (%s)", s, ae.Err)
		}
		return fmt.Errorf("%q is not HOST:PORT", s)
	}
	if host == "" {
		return fmt.Errorf("%q is not HOST:PORT (no host)", s)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("%q is not HOST:PORT (port %q, want 1..65535)", s, port)
	}
	return nil
}

// ParseBridgeLine splits "HOST:PORT k=v k=v" into the bridge's address
// and its arguments. It also takes a whole torrc line ("Bridge bip324
// HOST:PORT FINGERPRINT k=v ..."), and arguments alone (addr is then "").
// The address must be HOST:PORT, and the keys those of a bridge line
// (secret, profile, seed), each once.
func ParseBridgeLine(s string) (addr string, args map[string][]string, err error) {
	args = map[string][]string{}
	fields := strings.Fields(s)
	if len(fields) > 0 && strings.EqualFold(fields[0], "bridge") {
		fields = fields[1:]
	}
	if len(fields) > 0 && fields[0] == "bip324" {
		fields = fields[1:]
	}
	for _, f := range fields {
		if k, v, ok := strings.Cut(f, "="); ok {
			args[k] = append(args[k], v)
			continue
		}
		if addr == "" {
			if err := CheckHostPort(f); err != nil {
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

// profileCache holds each profile loaded and compiled once per process:
// a Shape is shared by every connection, client or bridge, that uses it.
var profileCache sync.Map // name -> compiledProfile

type compiledProfile struct {
	shape   *shaper.Shape
	request bool // the profile sends a version-packet request
}

// compileProfile returns the profile name (a built-in, or for the
// bridge's own default a file) compiled, once, and whether it sends a
// version-packet request.
// forgetProfile drops name from the cache, so that a file is read again.
func forgetProfile(name string) { profileCache.Delete(name) }

func compileProfile(name string) (*shaper.Shape, bool, error) {
	if e, ok := profileCache.Load(name); ok {
		return e.(compiledProfile).shape, e.(compiledProfile).request, nil
	}
	p, err := profiles.Load(name)
	if err != nil {
		return nil, false, err
	}
	shape, err := p.Compile()
	if err != nil {
		return nil, false, err
	}
	e, _ := profileCache.LoadOrStore(name, compiledProfile{shape, p.WantsVersionRequest()})
	return e.(compiledProfile).shape, e.(compiledProfile).request, nil
}

// parseSeed decodes seed= (64 hex digits; empty is the zero seed).
func parseSeed(s string) ([32]byte, error) {
	var seed [32]byte
	if s == "" {
		return seed, nil
	}
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return seed, errors.New("seed= wants 64 hex digits")
	}
	copy(seed[:], b)
	return seed, nil
}

// ClientFactory makes client configurations from bridge-line arguments,
// with defaults for the arguments a line leaves out. The zero value has
// no defaults and logs nothing.
type ClientFactory struct {
	// Defaults supplies the arguments a bridge line leaves out (the
	// command's --bridge, for SOCKS requests that carry fewer). Nil
	// means none.
	Defaults map[string][]string
	// Logger becomes each ClientConfig's Logger (a warning when the
	// bridge applies another profile than the one asked for). Nil means
	// silent.
	Logger *slog.Logger
	// Stats becomes each ClientConfig's Stats. Nil means none.
	Stats *stats.Counters
}

// NewClient makes a client configuration from a bridge line's arguments
// (tor passes them in each SOCKS request); f.Defaults supplies those it
// leaves out. An unknown or repeated key is an error naming it and the
// known keys; so is a missing secret=, a profile= that is not a
// built-in, or a bad seed=.
//
// NewClient may be called from many goroutines at once.
func (f ClientFactory) NewClient(args map[string][]string) (*ClientConfig, error) {
	if err := checkKeys(args, bridgeLineKeys); err != nil {
		return nil, fmt.Errorf("bridge line: %w", err)
	}
	cc, err := clientConfig(func(k string) string {
		if v, ok := get(args, k); ok {
			return v
		}
		v, _ := get(f.Defaults, k)
		return v
	}, true)
	if err != nil {
		return nil, err
	}
	cc.Logger = f.Logger
	cc.Stats = f.Stats
	return cc, nil
}

// CheckDefaults checks f.Defaults as NewClient would, at start, except
// that the secret may be left to each bridge line.
func (f ClientFactory) CheckDefaults() error {
	if err := checkKeys(f.Defaults, bridgeLineKeys); err != nil {
		return err
	}
	_, err := clientConfig(func(k string) string {
		v, _ := get(f.Defaults, k)
		return v
	}, false)
	return err
}

// clientConfig builds a bridge client from the bridge-line arguments get
// returns ("" for one not given). Without needSecret, a missing secret=
// is no error, and the result is nil.
func clientConfig(get func(key string) string, needSecret bool) (*ClientConfig, error) {
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
	name := profile
	if name == "" {
		name = "none"
	}
	// Only built-in names: a bridge line, which tor passes to us, never
	// names a file on this machine.
	if _, ok := profiles.BuiltinSource(name); !ok {
		return nil, fmt.Errorf("profile=%q is not a built-in profile (%s)", profile, strings.Join(profiles.Builtins(), ", "))
	}
	seed, err := parseSeed(get("seed"))
	if err != nil {
		return nil, err
	}
	network := v2core.Mainnet
	if n := get("network"); n != "" {
		if network, err = v2core.ParseNetwork(n); err != nil {
			return nil, fmt.Errorf("network=: %w", err)
		}
	}
	shape, wantsRequest, err := compileProfile(name)
	if err != nil {
		return nil, err
	}
	if secretArg == "" {
		return nil, nil
	}
	req := Request{Profile: profile, Seed: seed}
	if !wantsRequest {
		req = Request{}
	}
	return &ClientConfig{Secret: secret, Shape: shape, Seed: seed, Request: req, Network: network, Profile: name}, nil
}

// WrapConn runs the client handshake over raw, as Client does, so that a
// *ClientConfig is the client side of the transport for ptspec.
func (cc *ClientConfig) WrapConn(ctx context.Context, raw net.Conn) (net.Conn, error) {
	c, err := Client(ctx, raw, cc)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ServerOptions are a bridge's settings as an operator gives them: the
// flags of "bip324-pt server", or a managed bridge's
// ServerTransportOptions (ParseServerOptions). The zero value is a
// bridge with every default.
type ServerOptions struct {
	// Profile is the default profile of the bridge's direction: a
	// built-in or a profile file. Empty means "none".
	Profile string
	// Allow lists, comma-separated, the built-in profiles a client may
	// ask for. Empty means every built-in.
	Allow string
	// Node is ServerConfig.Node: HOST:PORT of a real Bitcoin node that
	// serves every peer that does not authenticate (fallback= and
	// --fallback are older names for it). Empty means none.
	Node string
	// Network is the Bitcoin network the bridge poses as a node of.
	// Zero means mainnet.
	Network v2core.Network
	// ProbeCloseMin and ProbeCloseMax are ServerConfig's; zero means
	// its default (Core's 60-61 s after accept).
	ProbeCloseMin, ProbeCloseMax time.Duration
	// Stats is ServerConfig.Stats.
	Stats *stats.Counters
}

// ParseServerOptions reads a managed bridge's ServerTransportOptions:
// profile=, allow= and node=HOST:PORT (or fallback=, its older name). An
// unknown or repeated key, or a bad address, is an error.
func ParseServerOptions(args map[string][]string) (ServerOptions, error) {
	var o ServerOptions
	if err := checkKeys(args, serverOptionKeys); err != nil {
		return o, fmt.Errorf("ServerTransportOptions: %w", err)
	}
	o.Profile, _ = get(args, "profile")
	o.Allow, _ = get(args, "allow")
	for _, key := range []string{"node", "fallback"} {
		addr, ok := get(args, key)
		if !ok {
			continue
		}
		if err := CheckHostPort(addr); err != nil {
			return o, fmt.Errorf("ServerTransportOptions: %s=: %w", key, err)
		}
		if o.Node != "" && o.Node != addr {
			return o, fmt.Errorf("ServerTransportOptions: node=%s and fallback=%s name different nodes", o.Node, addr)
		}
		o.Node = addr
	}
	return o, nil
}

// NewServer returns the bridge o describes, with the secret kept in
// stateDir (made there on first start), and writes a ready bridge line
// to stateDir (BridgeLineFile). log is ServerConfig.Logger.
func (o ServerOptions) NewServer(stateDir string, log *slog.Logger) (*Server, error) {
	secret, err := LoadOrCreateSecret(stateDir)
	if err != nil {
		return nil, err
	}
	if o.Profile == "" {
		o.Profile = "none"
	}
	shape, _, err := compileProfile(o.Profile)
	if err != nil {
		return nil, err
	}
	var allowed []string
	if o.Allow != "" {
		allowed = strings.Split(o.Allow, ",")
	}
	srv, err := NewServer(ServerConfig{
		Secret:        secret,
		Shape:         shape,
		Profile:       o.Profile,
		Allowed:       allowed,
		Node:          o.Node,
		Network:       o.Network,
		ReplayFile:    ReplayPath(stateDir),
		ProbeCloseMin: o.ProbeCloseMin,
		ProbeCloseMax: o.ProbeCloseMax,
		Logger:        log,
		Stats:         o.Stats,
	})
	if err != nil {
		return nil, err
	}
	if err := WriteBridgeLine(stateDir, srv.BridgeArgs()); err != nil {
		srv.Close()
		return nil, err
	}
	return srv, nil
}

// BridgeArgs returns the arguments a client needs in its bridge line
// after the bridge's address ("secret=...").
// A bridge that poses as a node of another network than mainnet adds
// network=NAME: its clients must derive their keys for it too.
func (s *Server) BridgeArgs() string {
	if s.cfg.Network != v2core.Mainnet {
		return BridgeArgs(s.cfg.Secret) + " network=" + s.cfg.Network.String()
	}
	return BridgeArgs(s.cfg.Secret)
}

// Args returns the same arguments as key and values, for the SMETHOD
// line's ARGS: option.
func (s *Server) Args() map[string][]string {
	args := map[string][]string{"secret": {s.cfg.Secret.Encode()}}
	if s.cfg.Network != v2core.Mainnet {
		args["network"] = []string{s.cfg.Network.String()}
	}
	return args
}
