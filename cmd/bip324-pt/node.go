package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/bip324pt/bip324-pt/internal/node"
	"github.com/bip324pt/bip324-pt/v2core"
)

const nodePingHelp = `Usage: bip324-pt node ping [flags] HOST[:PORT]

Connect to a Bitcoin node, do the BIP324 (v2) handshake, exchange version
and verack, send a ping and time the pong. PORT defaults to the network's
(8333 on main).

The session id printed is derived by both ends of the v2 connection from
their key exchange. Two operators who compare it out of band (by phone,
say) and find equal values know that no machine in the middle terminated
the encryption: a machine in the middle would hold two sessions with two
different ids. On a Bitcoin Core node, "bitcoin-cli getpeerinfo" shows it
as "session_id".

A node without v2 support closes the v2 attempt without sending a byte;
ping then reconnects with v1, as Bitcoin Core does, and says so. v1 is
unencrypted and has no session id. --v2-only turns the retry off.

Exit status: 0 when the exchange completed, 1 when it failed, 2 on a usage
error.

Flags:
`

func runNodePing(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("node ping", flag.ContinueOnError)
	networkName := fs.String("network", "main", "the peer's `network`: main, test, testnet4, signet or regtest")
	timeout := fs.Duration("timeout", node.DefaultTimeout, "bound on the whole exchange, v1 retry included")
	v2Only := fs.Bool("v2-only", false, "fail rather than retry with v1 when the peer closes the v2 attempt")
	logLevel := fs.String("log-level", "warn", "log `level` on stderr: debug, info, warn or error")
	fs.Usage = func() { fmt.Fprint(fs.Output(), nodePingHelp); printFlags(fs) }
	bad := func(format string, a ...any) int { return usageError(stderr, "node ping", format, a...) }
	pos, code, done := parseFlags(fs, args, stdout, stderr)
	if done {
		return code
	}
	if len(pos) != 1 {
		return bad("want one HOST[:PORT], got %d arguments", len(pos))
	}
	network, err := v2core.ParseNetwork(*networkName)
	if err != nil {
		return bad("%s", strings.TrimPrefix(err.Error(), "v2core: "))
	}
	if *timeout <= 0 {
		return bad("--timeout must be positive, got %v", *timeout)
	}
	level, err := parseLevel(*logLevel)
	if err != nil {
		return bad("%v", err)
	}
	addr, err := node.AddrWithPort(pos[0], network.DefaultPort())
	if err != nil {
		return bad("%s", strings.TrimPrefix(err.Error(), "node: "))
	}

	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	res, err := node.Ping(ctx, node.Options{
		Addr:    addr,
		Network: network,
		Timeout: *timeout,
		V2Only:  *v2Only,
		Logger:  logger,
	})
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "node: ")
		if *v2Only && errors.Is(err, node.ErrPeerClosedEarly) {
			msg += " (the peer may not support v2; without --v2-only, ping retries with v1)"
		}
		fmt.Fprintf(stderr, "bip324-pt: node ping: %s\n", msg)
		return exitFailure
	}

	if res.V1 {
		fmt.Fprintln(stderr, "bip324-pt: node ping: no session id: the peer spoke v1, which is unencrypted")
		fmt.Fprintln(stdout, "transport: v1 (peer closed the v2 attempt without a byte; reconnected with v1)")
	} else {
		fmt.Fprintf(stdout, "session id: %x\n", res.SessionID)
		fmt.Fprintln(stdout, "transport: v2")
	}
	fmt.Fprintf(stdout, "peer user agent: %s\n", node.SanitizeString(res.Peer.UserAgent))
	fmt.Fprintf(stdout, "peer services: 0x%016x (%s)\n", uint64(res.Peer.Services), res.Peer.Services)
	fmt.Fprintf(stdout, "peer protocol version: %d\n", res.Peer.Protocol)
	fmt.Fprintf(stdout, "round-trip time: %.3f ms\n", float64(res.RTT.Nanoseconds())/1e6)
	return exitOK
}
