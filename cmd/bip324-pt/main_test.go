package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bip324pt/bip324-pt/internal/node/nodetest"
	"github.com/bip324pt/bip324-pt/v2core"
)

func runArgs(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code = run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestRun_Help(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"node", "--help"}, {"node", "help"}} {
		code, out, errs := runArgs(t, args...)
		if code != exitOK || !strings.Contains(out, "node ping") || errs != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
	code, out, errs := runArgs(t, "node", "ping", "--help")
	if code != exitOK || errs != "" {
		t.Fatalf("node ping --help: exit %d, stderr %q", code, errs)
	}
	for _, want := range []string{"Usage: bip324-pt node ping", "HOST[:PORT]", "session id", "out of band", "no machine in the middle", "--v2-only", "-network", "-timeout", "-log-level"} {
		if !strings.Contains(out, want) {
			t.Errorf("node ping --help lacks %q:\n%s", want, out)
		}
	}
}

func TestRun_UsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"bogus"},
		{"node"},
		{"node", "bogus"},
		{"node", "ping"},
		{"node", "ping", "a", "b"},
		{"node", "ping", "--network", "moon", "127.0.0.1"},
		{"node", "ping", "--bogus", "127.0.0.1"},
		{"node", "ping", "--timeout", "0s", "127.0.0.1"},
		{"node", "ping", "--timeout", "soon", "127.0.0.1"},
		{"node", "ping", "--log-level", "loud", "127.0.0.1"},
		{"node", "ping", "127.0.0.1:99999"},
		{"node", "ping", "[::1"},
		{"node", "ping", ""},
	} {
		code, out, errs := runArgs(t, args...)
		if code != exitUsage || out != "" || !strings.HasPrefix(errs, "bip324-pt: ") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
}

var sessionIDLine = regexp.MustCompile(`^session id: [0-9a-f]{64}$`)

func TestNodePing_V2(t *testing.T) {
	nodetest.VerifyNoLeaks(t)
	fake := nodetest.New(t, nodetest.Config{})
	// Flags after the address work too.
	code, out, errs := runArgs(t, "node", "ping", fake.Addr(), "--timeout", "5s")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	if errs != "" {
		t.Errorf("stderr %q", errs)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 6 {
		t.Fatalf("%d lines:\n%s", len(lines), out)
	}
	if !sessionIDLine.MatchString(lines[0]) {
		t.Errorf("line %q does not match %v", lines[0], sessionIDLine)
	}
	id := fake.Conns()[0].SessionID
	if want := "session id: " + hex.EncodeToString(id[:]); lines[0] != want {
		t.Errorf("got %q, fake computed %q", lines[0], want)
	}
	want := []string{
		"transport: v2",
		"peer user agent: /Satoshi:28.1.0/",
		"peer services: 0x0000000000000c09 (NETWORK, WITNESS, NETWORK_LIMITED, P2P_V2)",
		"peer protocol version: 70016",
	}
	for i, w := range want {
		if lines[1+i] != w {
			t.Errorf("line %d: %q, want %q", 1+i, lines[1+i], w)
		}
	}
	if !regexp.MustCompile(`^round-trip time: [0-9]+\.[0-9]{3} ms$`).MatchString(lines[5]) {
		t.Errorf("line %q", lines[5])
	}
}

func TestNodePing_V1Fallback(t *testing.T) {
	nodetest.VerifyNoLeaks(t)
	fake := nodetest.New(t, nodetest.Config{Network: v2core.Testnet4, Mode: nodetest.ModeV1Only, UserAgent: "/Satoshi:25.0.0/\x1b[2J", Services: 0x409})
	code, out, errs := runArgs(t, "node", "ping", "--network", "testnet4", "--timeout", "5s", fake.Addr())
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	if strings.Contains(out, "session id") {
		t.Errorf("session id printed with v1:\n%s", out)
	}
	want := "transport: v1 (peer closed the v2 attempt without a byte; reconnected with v1)\n" +
		"peer user agent: /Satoshi:25.0.0/2J\n" +
		"peer services: 0x0000000000000409 (NETWORK, WITNESS, NETWORK_LIMITED)\n" +
		"peer protocol version: 70016\n"
	if !strings.HasPrefix(out, want) {
		t.Errorf("stdout\n%s\nwant it to start with\n%s", out, want)
	}
	if !strings.Contains(errs, "no session id") {
		t.Errorf("stderr %q", errs)
	}
}

func TestNodePing_Failures(t *testing.T) {
	nodetest.VerifyNoLeaks(t)
	v1only := nodetest.New(t, nodetest.Config{Mode: nodetest.ModeV1Only, ResetOnReject: true})
	mute := nodetest.New(t, nodetest.Config{Mode: nodetest.ModeMute})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"v2 only", []string{"--v2-only", v1only.Addr()}, "bip324-pt: node ping: v2 handshake: peer closed the connection before sending anything (the peer may not support v2"},
		{"timeout", []string{"--timeout", "300ms", mute.Addr()}, "bip324-pt: node ping: v2 handshake: timed out after 300ms\n"},
		{"refused", []string{refused}, "bip324-pt: node ping: connecting: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runArgs(t, append([]string{"node", "ping"}, tt.args...)...)
			if code != exitFailure || out != "" || !strings.HasPrefix(errs, tt.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and stderr starting %q", code, out, errs, tt.want)
			}
		})
	}
}

func TestNodePing_LogLevel(t *testing.T) {
	nodetest.VerifyNoLeaks(t)
	fake := nodetest.New(t, nodetest.Config{})
	code, _, errs := runArgs(t, "node", "ping", "--log-level", "debug", "--timeout", "5s", fake.Addr())
	if code != exitOK || !strings.Contains(errs, "level=DEBUG") || !strings.Contains(errs, "v2 handshake done") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
}

// TestBinary builds the command and checks exit statuses through main.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	nodetest.VerifyNoLeaks(t)
	bin := filepath.Join(t.TempDir(), "bip324-pt")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	fake := nodetest.New(t, nodetest.Config{})
	for _, tt := range []struct {
		args []string
		code int
	}{
		{[]string{"--help"}, 0},
		{[]string{"--version"}, 0},
		{[]string{"bogus"}, 2},
		{[]string{"node", "ping", "--timeout", "5s", fake.Addr()}, 0},
		{[]string{"node", "ping", "--timeout", "5s", "--v2-only", "127.0.0.1:1"}, 1},
	} {
		cmd := exec.CommandContext(ctx, bin, tt.args...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tt.code {
			t.Errorf("%v: exit %d, want %d; stderr %q", tt.args, code, tt.code, errb.String())
		}
		if tt.code == 0 && len(tt.args) > 1 {
			first, _, _ := strings.Cut(out.String(), "\n")
			if !sessionIDLine.MatchString(first) {
				t.Errorf("first line %q", first)
			}
		}
	}
}

// TestRun_HelpEveryCommand: --help and -h of every subcommand, and of
// each group, print the help once, to stdout, and exit 0.
func TestRun_HelpEveryCommand(t *testing.T) {
	var cases [][]string
	for _, c := range commands {
		for _, h := range []string{"--help", "-h"} {
			cases = append(cases, append(strings.Fields(c.name), h))
		}
	}
	cases = append(cases, []string{"profile", "--help"}, []string{"node", "--help"}, []string{"--help"})
	for _, args := range cases {
		code, out, errs := runArgs(t, args...)
		if code != exitOK || errs != "" || strings.Count(out, "Usage") != 1 {
			t.Errorf("%q: exit %d, %d times \"Usage\" on stdout, stderr %q:\n%s", args, code, strings.Count(out, "Usage"), errs, out)
		}
	}
}

// TestRun_Version: "version" and "--version" print the version, and
// name it as versionOf does.
func TestRun_Version(t *testing.T) {
	want := "bip324-pt " + version() + "\n"
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		code, out, errs := runArgs(t, args...)
		if code != exitOK || out != want || errs != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %q", args, code, out, errs, want)
		}
	}
	if code, _, _ := runArgs(t, "version", "extra"); code != exitUsage {
		t.Errorf("version extra: exit %d", code)
	}
}

// TestRun_BadAddresses: every HOST:PORT setting is checked at start, and
// a bad one is a usage error that names the flag.
func TestRun_BadAddresses(t *testing.T) {
	state := t.TempDir()
	bridgeArgs := "secret=" + testSecret
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"server", "--listen", "127.0.0.1:0", "--forward", "nonsense", "--state", state}, `bip324-pt: server: --forward: "nonsense" is not HOST:PORT`},
		{[]string{"server", "--listen", "127.0.0.1:0", "--forward", "127.0.0.1:1", "--fallback", "nonsense", "--state", state}, `bip324-pt: server: --fallback: "nonsense" is not HOST:PORT`},
		{[]string{"server", "--listen", "127.0.0.1:0", "--forward", "127.0.0.1:1", "--fallback", ":8333", "--state", state}, `bip324-pt: server: --fallback: ":8333" is not HOST:PORT (no host)`},
		{[]string{"server", "--listen", "127.0.0.1:0", "--forward", "127.0.0.1:1", "--fallback", "", "--state", state}, `bip324-pt: server: --fallback: "" is not HOST:PORT`},
		{[]string{"server", "--listen", "127.0.0.1:0", "--forward", "127.0.0.1:99999", "--state", state}, `bip324-pt: server: --forward: "127.0.0.1:99999" is not HOST:PORT (port "99999", want 1..65535)`},
		{[]string{"client", "--forward", "nonsense", "--bridge", bridgeArgs}, `bip324-pt: client: --forward: "nonsense" is not HOST:PORT`},
		{[]string{"client", "--forward=127.0.0.1:0", "--bridge", bridgeArgs}, `bip324-pt: client: invalid boolean value "127.0.0.1:0" for -forward: "127.0.0.1:0" is not HOST:PORT`},
		{[]string{"client", "--forward", "--bridge", "bridge:0 " + bridgeArgs}, `bip324-pt: client: --bridge: "bridge:0" is not HOST:PORT`},
	} {
		code, out, errs := runArgs(t, tt.args...)
		if code != exitUsage || out != "" || !strings.HasPrefix(errs, tt.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and stderr starting %q", tt.args, code, out, errs, tt.want)
		}
	}
}

// TestRun_UnknownBridgeKey: a misspelt key in --bridge is refused at
// start, in SOCKS and in forward mode, naming the key and the known ones.
func TestRun_UnknownBridgeKey(t *testing.T) {
	const want = `bip324-pt: client: --bridge: unknown key "profle" (known: secret, profile, seed, network)`
	for _, args := range [][]string{
		{"client", "--bridge", "127.0.0.1:29333 secret=" + testSecret + " profle=cbr"},
		{"client", "--forward", "--bridge", "127.0.0.1:29333 secret=" + testSecret + " profle=cbr"},
		{"client", "--bridge", "secret=" + testSecret + " profle=cbr"},
	} {
		code, out, errs := runArgs(t, args...)
		if code != exitUsage || out != "" || !strings.HasPrefix(errs, want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and %q", args, code, out, errs, want)
		}
	}
	// SOCKS mode checks the defaults --bridge gives, too.
	code, _, errs := runArgs(t, "client", "--bridge", "secret=short")
	if code != exitUsage || !strings.Contains(errs, "--bridge: bridgeauth: secret= wants 32 bytes") {
		t.Errorf("bad default secret: exit %d, stderr %q", code, errs)
	}
}
