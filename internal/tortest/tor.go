package tortest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Tor is a tor process started by this package, with its own directory
// (torrc, empty defaults file, log, DataDirectory). Its fields are set
// before StartTor returns and never change. Its methods are safe for
// concurrent use.
type Tor struct {
	// Name names the process in logs and paths ("bridge", "relay1").
	Name string
	// Dir holds torrc, defaults-torrc, tor.log and data/.
	Dir string
	// DataDir is tor's DataDirectory; a transport's state is in
	// DataDir/pt_state.
	DataDir string
	// LogPath is the file with everything tor printed (notice level).
	LogPath string
	// ORPort, DirPort and SOCKSPort are on 127.0.0.1; 0 when not used.
	ORPort, DirPort, SOCKSPort int
	// TransportPort is a bridge's ServerTransportListenAddr port.
	TransportPort int
	// Fingerprint is a relay's identity fingerprint (40 hex digits), read
	// from DataDir/fingerprint; empty for a client.
	Fingerprint string
	// BridgeLine is a bridge's line for clients, the value of a client's
	// Bridge option: "<transport> 127.0.0.1:<port> <fingerprint> <args>".
	BridgeLine string
	// Started is when the process started.
	Started time.Time

	proc     *proc
	tb       testing.TB
	stopOnce sync.Once
	stopErr  error
}

// bootstrapRE matches tor's bootstrap progress lines,
// "Bootstrapped 15% (handshake_done): Handshake with a relay done".
var bootstrapRE = regexp.MustCompile(`Bootstrapped (\d+)%`)

// placeholderDirAuthority is a DirAuthority line for a tor that must not
// contact the real directory authorities: nothing listens on its port, and
// it keeps tor from using its built-in authorities and fallbacks.
const placeholderDirAuthority = "DirAuthority placeholder orport=1 no-v2 " +
	"v3ident=0000000000000000000000000000000000000000 127.0.0.1:1 " +
	"0000000000000000000000000000000000000000"

// StartTor starts tor with the torrc lines given plus the ones every tor
// here gets: DataDirectory under dir, notice logging to stdout (captured
// into LogPath), and SafeLogging 0. It adds --defaults-torrc pointing at an
// empty file. It does not wait for anything. Cleanup stops the process (see
// [Tor.Stop]) and, if the test failed, shows the tail of every log under
// the directory. name must be a valid nickname-like word; ports must be
// filled in by the caller.
func StartTor(tb testing.TB, name string, torrc []string) *Tor {
	tb.Helper()
	return startTorIn(tb, tempDir(tb, name), name, torrc, &Tor{})
}

// startTorIn is StartTor in an existing directory, filling t.
func startTorIn(tb testing.TB, dir, name string, torrc []string, t *Tor) *Tor {
	tb.Helper()
	torBin := LookPath(tb, "tor")
	t.Name, t.Dir, t.tb = name, dir, tb
	t.DataDir = filepath.Join(dir, "data")
	t.LogPath = filepath.Join(dir, "tor.log")
	if err := os.MkdirAll(t.DataDir, 0o700); err != nil {
		tb.Fatal(err)
	}
	empty := filepath.Join(dir, "defaults-torrc")
	torrcPath := filepath.Join(dir, "torrc")
	lines := append([]string{
		"DataDirectory " + t.DataDir,
		"Log notice stdout",
		// The transports' stderr and tor's view of them, which notice hides.
		"Log [pt,process]info file " + filepath.Join(dir, "pt-info.log"),
		"SafeLogging 0",
		"RunAsDaemon 0",
	}, torrc...)
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(torrcPath, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(torBin, "--defaults-torrc", empty, "-f", torrcPath)
	cmd.Dir = dir
	cmd.Env = cleanEnv()
	p, err := startProc("tor "+name, cmd, t.LogPath, false)
	if err != nil {
		tb.Fatal(err)
	}
	t.proc, t.Started = p, time.Now()
	tb.Cleanup(func() {
		if err := t.Stop(); err != nil {
			tb.Error(err)
		}
		if tb.Failed() {
			dumpLogs(tb, dir)
		}
	})
	return t
}

// cleanEnv returns the environment for a child: ours without TOR_PT_*
// variables, so a test run under a managed transport leaks nothing.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TOR_PT_") {
			env = append(env, kv)
		}
	}
	return env
}

// PID returns the tor process's id.
func (t *Tor) PID() int { return t.proc.pid() }

// SOCKS returns a SOCKS5 client for the tor's SocksPort.
func (t *Tor) SOCKS() *SOCKS5 {
	return &SOCKS5{Addr: "127.0.0.1:" + strconv.Itoa(t.SOCKSPort)}
}

// Bootstrapped returns the highest bootstrap percentage tor has logged so
// far (0 before the first progress line).
func (t *Tor) Bootstrapped() int {
	p := t.proc
	p.mu.Lock()
	defer p.mu.Unlock()
	best := 0
	for _, l := range p.lines {
		if m := bootstrapRE.FindStringSubmatch(l.text); m != nil {
			if n, _ := strconv.Atoi(m[1]); n > best {
				best = n
			}
		}
	}
	return best
}

// ptFailRE matches tor's notice-level lines about a transport that died
// or could not start. Tor restarts such a transport every second for ever,
// so waiting on would only end at the timeout.
var ptFailRE = regexp.MustCompile(`Managed proxy .*(terminated with status code|died in state)|Could not launch managed proxy`)

// ErrTransportFailed means tor reported that its transport process died or
// could not start. The error wrapping it quotes tor's line; the transport's
// stderr is in pt-info.log next to tor.log.
var ErrTransportFailed = errors.New("tortest: tor's transport process failed")

// wait returns the first line tor logs for which match is true. It fails
// when ctx ends, when tor exits, and when tor reports a failed transport
// ([ErrTransportFailed]).
func (t *Tor) wait(ctx context.Context, match func(string) bool) (string, error) {
	l, err := t.proc.waitLine(ctx, func(l line) bool { return match(l.text) || ptFailRE.MatchString(l.text) })
	if err != nil {
		return "", err
	}
	if !match(l) {
		return "", fmt.Errorf("%w: %s (its stderr is in %s)", ErrTransportFailed, l, filepath.Join(t.Dir, "pt-info.log"))
	}
	return l, nil
}

// WaitBootstrap waits until tor logs "Bootstrapped N%" with N >= percent
// and returns that line. It fails when ctx ends first (the error then
// says the last percentage reached), when tor exits, or when tor reports
// that its transport failed ([ErrTransportFailed]).
func (t *Tor) WaitBootstrap(ctx context.Context, percent int) (string, error) {
	l, err := t.wait(ctx, func(l string) bool {
		m := bootstrapRE.FindStringSubmatch(l)
		if m == nil {
			return false
		}
		n, _ := strconv.Atoi(m[1])
		return n >= percent
	})
	if err != nil {
		return "", fmt.Errorf("tortest: %s: bootstrap to %d%% (reached %d%%): %w", t.Name, percent, t.Bootstrapped(), err)
	}
	return l, nil
}

// WaitLog waits until tor logs a line containing substr and returns it.
// It fails like [Tor.WaitBootstrap].
func (t *Tor) WaitLog(ctx context.Context, substr string) (string, error) {
	return t.wait(ctx, func(l string) bool { return strings.Contains(l, substr) })
}

// TransportPIDs returns the PIDs of tor's live child processes: the
// managed transports it launched.
func (t *Tor) TransportPIDs() []int {
	if !t.proc.running() {
		return nil
	}
	var pids []int
	for _, id := range childrenOf(t.proc.pid()) {
		pids = append(pids, id.pid)
	}
	return pids
}

// Stop stops tor (SIGTERM to its PID, SIGKILL after a grace period), then
// checks that every child tor had (its transport processes) has gone
// within a few seconds; it kills and reports any that stays. It is
// idempotent and runs at cleanup if the test does not call it.
func (t *Tor) Stop() error {
	t.stopOnce.Do(func() {
		var kids []procID
		if t.proc.running() {
			kids = childrenOf(t.proc.pid())
		}
		errStop := t.proc.stop()
		t.stopErr = errors.Join(errStop, waitGone(kids, childGrace))
	})
	return t.stopErr
}

// waitFile waits until path exists and is not empty, and returns its
// contents; it fails when ctx ends or when tor exits first.
func (t *Tor) waitFile(ctx context.Context, path string) ([]byte, error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return b, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("tortest: %s: waiting for %s: %w", t.Name, path, ctx.Err())
		case <-t.proc.exited:
			return nil, fmt.Errorf("tortest: %s exited (%v) before writing %s", t.Name, t.proc.exitErr(), path)
		case <-tick.C:
		}
	}
}

// readFingerprint waits for DataDir/fingerprint ("nickname FINGERPRINT")
// and returns the fingerprint.
func (t *Tor) readFingerprint(ctx context.Context) (string, error) {
	b, err := t.waitFile(ctx, filepath.Join(t.DataDir, "fingerprint"))
	if err != nil {
		return "", err
	}
	return parseFingerprintFile(b)
}

// parseFingerprintFile returns the fingerprint from a tor fingerprint file
// or a --list-fingerprint line: a nickname and 40 hex digits, maybe in
// groups of four.
func parseFingerprintFile(b []byte) (string, error) {
	f := strings.Fields(strings.TrimSpace(string(b)))
	if len(f) < 2 {
		return "", fmt.Errorf("tortest: malformed fingerprint %q", b)
	}
	fp := strings.Join(f[1:], "")
	if !fingerprintRE.MatchString(fp) {
		return "", fmt.Errorf("tortest: malformed fingerprint %q", b)
	}
	return fp, nil
}

var fingerprintRE = regexp.MustCompile(`^[0-9A-F]{40}$`)

// relayTorrc returns the torrc lines every relay-like tor here gets (bridge,
// relay, authority): loopback addresses only, and DNS kept on loopback (the
// host's resolver is not ours to query).
func relayTorrc(dir, nickname string, orPort int) []string {
	resolv := filepath.Join(dir, "resolv.conf")
	os.WriteFile(resolv, []byte("nameserver 127.0.0.1\n"), 0o600)
	return []string{
		"Nickname " + nickname,
		"Address 127.0.0.1",
		"ORPort 127.0.0.1:" + strconv.Itoa(orPort),
		"OutboundBindAddress 127.0.0.1",
		"SocksPort 0",
		"AssumeReachable 1",
		"ContactInfo tortest@127.0.0.1",
		"ServerDNSResolvConfFile " + resolv,
		"ServerDNSDetectHijacking 0",
		"ServerDNSAllowBrokenConfig 1",
	}
}
