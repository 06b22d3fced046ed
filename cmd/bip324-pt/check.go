package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"time"

	"github.com/bip324pt/bip324-pt/internal/bridge"
)

// runClientCheck is "client --check": connect to the bridge,
// authenticate, wait for the bridge's word on the profile it applies (a
// round trip only an authenticated client gets), print what happened and
// how long it took. Exit 0 only when the bridge took us as its client.
func runClientCheck(ctx context.Context, addr string, args map[string][]string, timeout time.Duration, stdout, stderr io.Writer) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "bip324-pt: client --check: "+format+"\n", a...)
		return exitFailure
	}
	if addr == "" {
		return usageError(stderr, "client", "--check needs the bridge's HOST:PORT in --bridge")
	}
	if timeout <= 0 {
		return usageError(stderr, "client", "--timeout %v, want more than 0", timeout)
	}
	cc, err := bridge.ClientFactory{}.NewClient(args)
	if err != nil {
		return usageError(stderr, "client", "--bridge: %v", err)
	}
	// Ask for the profile by name even where the profile sends no
	// request (bitcoin): the bridge answers a request with the profile
	// it applies, which is the round trip that proves it took us.
	asked := cc.Request.Profile
	if asked == "" {
		asked = cc.Profile
	}
	cc.Request = bridge.Request{Profile: asked, Seed: cc.Seed}
	applied := make(chan string, 1)
	cc.OnApplied = func(p string) {
		select {
		case applied <- p:
		default:
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fail("cannot connect to %s: %v (a wrong address, or the bridge is down)", addr, err)
	}
	connected := time.Since(start)
	c, err := bridge.Client(ctx, raw, cc)
	if err != nil {
		raw.Close()
		if errors.Is(err, bridge.ErrNoAnswer) {
			return fail("%s took the connection but sent no byte: not a bip324-pt bridge (a wrong address?) or one that refused us (%v)", addr, err)
		}
		return fail("the BIP324 handshake with %s failed: %v (a wrong network= or a wrong address are the usual causes)", addr, err)
	}
	defer c.Close()
	handshake := time.Since(start)
	go io.Copy(io.Discard, c) // reading brings the bridge's first packet in
	select {
	case p := <-applied:
		rtt := time.Since(start)
		fmt.Fprintf(stdout, "bridge: %s\n", addr)
		fmt.Fprintf(stdout, "connect: %v\n", connected.Round(time.Microsecond))
		fmt.Fprintf(stdout, "handshake: %v\n", handshake.Round(time.Microsecond))
		fmt.Fprintf(stdout, "authenticated: %v (the bridge confirmed after one round trip)\n", rtt.Round(time.Microsecond))
		fmt.Fprintf(stdout, "profile: ours %s, the bridge's %s\n", asked, p)
		if p != asked {
			fmt.Fprintf(stdout, "note: the bridge does not allow %s and shapes its side with %s\n", asked, p)
		}
		fmt.Fprintln(stdout, "ok")
		return exitOK
	case <-ctx.Done():
		return fail("the handshake with %s completed but the bridge never confirmed us as its client within %v: the secret= is most likely wrong (a bridge answers everyone else as a Bitcoin node would), or this is a Bitcoin node, not the bridge", addr, timeout)
	}
}

var secretArg = regexp.MustCompile(`secret=[^\s;]*`)

// redactLine hides a bridge line's secret, and its address unless
// unsafe logging is on.
func redactLine(line string, unsafe bool) string {
	line = secretArg.ReplaceAllString(line, "secret=[redacted]")
	if unsafe {
		return line
	}
	addr, _, err := bridge.ParseBridgeLine(line)
	if err != nil || addr == "" {
		return line
	}
	return regexp.MustCompile(regexp.QuoteMeta(addr)).ReplaceAllString(line, "[scrubbed]")
}
