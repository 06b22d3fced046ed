package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/bip324pt/bip324-pt/internal/nodeproxy"
	"github.com/bip324pt/bip324-pt/profiles"
	"github.com/bip324pt/bip324-pt/v2core"
)

func init() {
	commands = append(commands, command{name: "node proxy", summary: "a SOCKS5 proxy for bitcoind (proxy=) that makes its peer connections shaped BIP324", run: runNodeProxy})
}

const nodeProxyHelp = `Usage: bip324-pt node proxy [flags]

A SOCKS5 proxy for a Bitcoin node: give bitcoind proxy=127.0.0.1:9050 and
every outbound peer connection leaves as shaped BIP324.

  * bitcoind speaks v1 (v2transport=0, recommended): the proxy runs the v2
    handshake with the peer, shaped by --profile, and translates messages;
    a peer that closes the v2 attempt without a byte is retried with v1
    (not with --v2-only), as Core does.
  * bitcoind speaks v2 itself: its bytes pass through; only how they are
    cut into writes follows the profile.
  * a destination named by --bridge: an authenticated bip324-pt tunnel to
    that bridge, both directions shaped (the bridge fronts a friendly
    node).
  * .onion and .i2p: to --tor (tor's SocksPort), or refused.

Every connection logs its peer (scrubbed unless --unsafe-logging), its
transport, its session id (compare it with the peer's getpeerinfo
session_id) and its profile, at info level.

Flags:
`

func runNodeProxy(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("node proxy", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9050", "`address` bitcoind's proxy= points at")
	networkName := fs.String("network", "main", "the node's `network`: main, test, testnet4, signet or regtest")
	profile := fs.String("profile", "none", "`profile` of our side toward ordinary peers: a built-in name or a file")
	var bridges []string
	fs.Func("bridge", "a bridge `line` (\"HOST:PORT secret=... [profile=...]\"); connections to HOST:PORT go through it (repeatable)", func(s string) error {
		bridges = append(bridges, s)
		return nil
	})
	bridgeFile := fs.String("bridge-file", "", "`file` of bridge lines, one a line (# comments)")
	tor := fs.String("tor", "", "tor's SocksPort `HOST:PORT` for .onion and .i2p destinations")
	v2Only := fs.Bool("v2-only", false, "never retry a peer with v1")
	unsafeLogging := fs.Bool("unsafe-logging", false, "log full addresses")
	level := fs.String("log-level", "info", "log `level` on stderr: debug, info, warn or error")
	fs.Usage = func() { fmt.Fprint(fs.Output(), nodeProxyHelp); printFlags(fs) }
	bad := func(format string, a ...any) int { return usageError(stderr, "node proxy", format, a...) }
	pos, code, done := parseFlags(fs, args, stdout, stderr)
	if done {
		return code
	}
	if len(pos) > 0 {
		return bad("unexpected argument %q", pos[0])
	}
	network, err := v2core.ParseNetwork(*networkName)
	if err != nil {
		return bad("--network: %s", strings.TrimPrefix(err.Error(), "v2core: "))
	}
	lvl, err := parseLevel(*level)
	if err != nil {
		return bad("%v", err)
	}
	if *bridgeFile != "" {
		lines, err := readBridgeFile(*bridgeFile)
		if err != nil {
			return bad("--bridge-file: %v", err)
		}
		bridges = append(bridges, lines...)
	}
	p, err := profiles.Load(*profile)
	if err != nil {
		return bad("--profile: %v", err)
	}
	shape, err := p.Compile()
	if err != nil {
		return bad("--profile: %v", err)
	}
	cfg := nodeproxy.Config{Network: network, Shape: shape, Profile: *profile, Tor: *tor, V2Only: *v2Only, UnsafeLogging: *unsafeLogging}
	for _, line := range bridges {
		b, err := nodeproxy.ParseBridge(line)
		if err != nil {
			return bad("--bridge: %v", err)
		}
		cfg.Bridges = append(cfg.Bridges, b)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	cfg.Logger = log
	px, err := nodeproxy.New(cfg)
	if err != nil {
		return bad("%v", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "bip324-pt: node proxy: %v\n", err)
		return exitFailure
	}
	log.Info("bip324-pt: node proxy listening", "version", version(), "addr", ln.Addr().String(), "network", *networkName,
		"profile", *profile, "bridges", len(cfg.Bridges), "tor", *tor != "", "v2_only", *v2Only)
	if err := px.Serve(ctx, ln); err != nil {
		fmt.Fprintf(stderr, "bip324-pt: node proxy: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// readBridgeFile reads bridge lines: blank lines and # comments skipped.
func readBridgeFile(name string) ([]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	return out, sc.Err()
}
