package tortest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The authority's voting schedule (it needs TestingTorNetwork).
const (
	// votingInterval is the time between consensuses; a consensus is
	// valid for three of them.
	votingInterval = 20 * time.Second
	// voteDelay and distDelay are the voting and distribution phases
	// before each consensus's valid-after time.
	voteDelay = 4 * time.Second
	distDelay = 4 * time.Second
	// firstVoteLead is how long after the authority's start its first
	// vote comes: enough for the relays to start and publish their
	// descriptors, so that the first consensus already lists them.
	firstVoteLead = 8 * time.Second
)

// votingTorrc makes the authority vote every 20 s from the start, with
// every relay voted Exit, Guard and HSDir. Votes fall on wall-clock
// multiples of the interval, shifted by TestingV3AuthVotingStartOffset, so
// the first one comes firstVoteLead after start: left to chance, it often
// comes before the relays have published, and the first consensus is
// empty.
func votingTorrc(start time.Time) []string {
	validAfter := start.Add(firstVoteLead + voteDelay + distDelay)
	offset := time.Duration(validAfter.Unix()%int64(votingInterval/time.Second)) * time.Second
	secs := func(d time.Duration) string { return strconv.Itoa(int(d / time.Second)) }
	return []string{
		"V3AuthVotingInterval " + secs(votingInterval),
		"V3AuthVoteDelay " + secs(voteDelay),
		"V3AuthDistDelay " + secs(distDelay),
		"TestingV3AuthInitialVotingInterval " + secs(votingInterval),
		"TestingV3AuthInitialVoteDelay " + secs(voteDelay),
		"TestingV3AuthInitialDistDelay " + secs(distDelay),
		"TestingV3AuthVotingStartOffset " + secs(offset),
		"TestingDirAuthVoteExit *",
		"TestingDirAuthVoteGuard *",
		"TestingDirAuthVoteHSDir *",
	}
}

// Network is a private Tor network on 127.0.0.1: one directory authority
// and relays that are exits for the given ports, all with TestingTorNetwork
// 1 and one shared DirAuthority line. Bridges and clients join it with
// [Network.Bridge] and [Network.Client]. Cleanup stops everything.
type Network struct {
	// DirAuthority is the torrc line every member shares.
	DirAuthority string
	// Authority is the directory authority, also a relay (its exit policy
	// rejects everything).
	Authority *Tor
	// Relays are the relays, each an exit for ExitPorts.
	Relays []*Tor
	// ExitPorts are the ports the relays' exit policies accept.
	ExitPorts []int
}

// NetworkConfig configures [StartNetwork]. Its zero value is a network of
// two relays that are exits to no port.
type NetworkConfig struct {
	// Relays is the number of relays besides the authority; 0 means 2.
	Relays int
	// ExitPorts are the ports that the relays let out, to any address
	// ("accept *:PORT": exit-policy summaries in microdescriptors ignore
	// rules on private addresses, so an exit for 127.0.0.0/8 alone looks
	// like a non-exit to clients). Exit connections leave from 127.0.0.1
	// (OutboundBindAddressExit).
	ExitPorts []int
}

// torrc returns the lines a member of n has in common: TestingTorNetwork
// and the DirAuthority. On a nil Network it returns the
// placeholder DirAuthority that keeps a standalone tor off the real one.
func (n *Network) torrc() []string {
	if n == nil {
		return []string{placeholderDirAuthority}
	}
	return []string{"TestingTorNetwork 1", n.DirAuthority}
}

// StartNetwork creates the authority's keys with tor-gencert, learns its
// relay fingerprint with tor --list-fingerprint, and starts the authority
// and the relays. It does not wait for a consensus: [Network.Bridge] does.
// Failures fail the test.
func StartNetwork(tb testing.TB, cfg NetworkConfig) *Network {
	tb.Helper()
	if cfg.Relays == 0 {
		cfg.Relays = 2
	}
	torBin := LookPath(tb, "tor")
	gencert := LookPath(tb, "tor-gencert")
	n := &Network{ExitPorts: cfg.ExitPorts}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The authority: v3 keys first, then its relay identity.
	dir := tempDir(tb, "auth")
	auth := &Tor{ORPort: FreePort(tb), DirPort: FreePort(tb)}
	dataDir := filepath.Join(dir, "data")
	keys := filepath.Join(dataDir, "keys")
	if err := os.MkdirAll(keys, 0o700); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, gencert, "--create-identity-key", "--passphrase-fd", "0",
		"-m", "12", "-a", "127.0.0.1:"+strconv.Itoa(auth.DirPort),
		"-i", filepath.Join(keys, "authority_identity_key"),
		"-s", filepath.Join(keys, "authority_signing_key"),
		"-c", filepath.Join(keys, "authority_certificate"))
	cmd.Stdin = strings.NewReader("")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("tortest: tor-gencert: %v\n%s", err, out)
	}
	cert, err := os.ReadFile(filepath.Join(keys, "authority_certificate"))
	if err != nil {
		tb.Fatal(err)
	}
	v3ident, err := certFingerprint(cert)
	if err != nil {
		tb.Fatal(err)
	}

	authTorrc := append(relayTorrc(dir, "auth", auth.ORPort),
		"DirPort 127.0.0.1:"+strconv.Itoa(auth.DirPort),
		"AuthoritativeDirectory 1",
		"V3AuthoritativeDirectory 1",
		"ExitPolicy reject *:*",
	)
	// TestingTorNetwork wants a DirAuthority even to print a fingerprint.
	listTorrc := append([]string{"DataDirectory " + dataDir, "TestingTorNetwork 1", placeholderDirAuthority}, authTorrc...)
	listPath := filepath.Join(dir, "torrc-list-fingerprint")
	empty := filepath.Join(dir, "defaults-torrc")
	if err := os.WriteFile(listPath, []byte(strings.Join(listTorrc, "\n")+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		tb.Fatal(err)
	}
	cmd = exec.CommandContext(ctx, torBin, "--defaults-torrc", empty, "-f", listPath, "--list-fingerprint")
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("tortest: tor --list-fingerprint: %v\n%s", err, out)
	}
	fp, err := listedFingerprint(out, "auth")
	if err != nil {
		tb.Fatalf("%v\n%s", err, out)
	}
	auth.Fingerprint = fp
	n.DirAuthority = fmt.Sprintf("DirAuthority auth orport=%d no-v2 v3ident=%s 127.0.0.1:%d %s",
		auth.ORPort, v3ident, auth.DirPort, fp)
	authTorrc = append(authTorrc, votingTorrc(time.Now())...)
	n.Authority = startTorIn(tb, dir, "auth", append(n.torrc(), authTorrc...), auth)

	for i := 1; i <= cfg.Relays; i++ {
		name := "relay" + strconv.Itoa(i)
		dir := tempDir(tb, name)
		r := &Tor{ORPort: FreePort(tb)}
		torrc := append(n.torrc(), relayTorrc(dir, name, r.ORPort)...)
		torrc = append(torrc, "ExitRelay 1", "OutboundBindAddressExit 127.0.0.1")
		for _, p := range cfg.ExitPorts {
			torrc = append(torrc, "ExitPolicy accept *:"+strconv.Itoa(p))
		}
		torrc = append(torrc, "ExitPolicy reject *:*")
		n.Relays = append(n.Relays, startTorIn(tb, dir, name, torrc, r))
	}
	for _, r := range n.Relays {
		if r.Fingerprint, err = r.readFingerprint(ctx); err != nil {
			tb.Fatal(err)
		}
	}
	return n
}

// consensusTimeout bounds the wait for a consensus that lists every relay
// (normally one or two 20 s voting rounds after the network starts).
const consensusTimeout = 90 * time.Second

// Bridge starts a bridge for tr that is a member of n (it fetches n's
// consensus, and its clients can build circuits through n). See [Bridge].
// It returns once the bridge holds a consensus that lists every relay of n
// as Running, and their microdescriptors ([Network.WaitConsensus]), so that
// a client started then bootstraps in seconds: a client that gets an earlier consensus (the
// authority's first vote often comes before the relays' descriptors) waits
// most of that consensus's 60 s lifetime before it fetches the next.
func (n *Network) Bridge(tb testing.TB, tr Transport) *Tor {
	tb.Helper()
	b := startBridge(tb, tr, n)
	ctx, cancel := context.WithTimeout(context.Background(), consensusTimeout)
	defer cancel()
	if err := n.WaitConsensus(ctx, b); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("tortest: bridge has the whole network's consensus and microdescriptors %v after its start", time.Since(b.Started).Round(time.Millisecond))
	return b
}

// Client starts a client of n that uses only the bridge of bridgeLine,
// through tr. See [Client]. With a bridge from [Network.Bridge], it
// normally reaches 100% within seconds.
func (n *Network) Client(tb testing.TB, tr Transport, bridgeLine string) *Tor {
	tb.Helper()
	return startClient(tb, tr, bridgeLine, n)
}

// WaitConsensus waits until member has what a client needs from it to
// build circuits: a cached microdescriptor consensus
// (DataDir/cached-microdesc-consensus) that lists the authority and every
// relay of n with the Running flag, and the microdescriptor of each
// (DataDir/cached-microdescs*). It fails when ctx ends or member exits.
func (n *Network) WaitConsensus(ctx context.Context, member *Tor) error {
	want := []string{n.Authority.Name}
	for _, r := range n.Relays {
		want = append(want, r.Name)
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		missing := missingDirInfo(member.DataDir, want)
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("tortest: %s: directory information missing for %v: %w", member.Name, missing, ctx.Err())
		case <-member.proc.exited:
			return fmt.Errorf("tortest: %s exited (%v) while waiting for a consensus", member.Name, member.proc.exitErr())
		case <-tick.C:
		}
	}
}

// missingDirInfo returns the relays of want that the consensus in dataDir
// does not list as Running or whose microdescriptor is not in the cache.
func missingDirInfo(dataDir string, want []string) []string {
	consensus, _ := os.ReadFile(filepath.Join(dataDir, "cached-microdesc-consensus"))
	running := runningRelays(consensus)
	var cache []byte
	for _, f := range []string{"cached-microdescs", "cached-microdescs.new"} {
		b, _ := os.ReadFile(filepath.Join(dataDir, f))
		cache = append(cache, b...)
	}
	have := microdescDigests(cache)
	var missing []string
	for _, name := range want {
		if d, ok := running[name]; !ok || !have[d] {
			missing = append(missing, name)
		}
	}
	return missing
}

// runningRelays returns the relays a microdescriptor consensus lists with
// the Running flag, by nickname, with their microdescriptor digests: each
// router's "r nickname ..." line is followed by its "m digest" and
// "s flags..." lines (dir-spec 3.4.1, 3.9.2).
func runningRelays(consensus []byte) map[string]string {
	running := map[string]string{}
	var name, digest string
	var isRunning bool
	flush := func() {
		if name != "" && isRunning && digest != "" {
			running[name] = digest
		}
		name, digest, isRunning = "", "", false
	}
	sc := bufio.NewScanner(bytes.NewReader(consensus))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch {
		case f[0] == "r" && len(f) >= 2:
			flush()
			name = f[1]
		case f[0] == "m" && len(f) >= 2 && name != "":
			digest = f[1]
		case f[0] == "s" && name != "":
			isRunning = slices.Contains(f[1:], "Running")
		case f[0] == "directory-footer":
			flush()
		}
	}
	flush()
	return running
}

// microdescDigests returns the digests of the microdescriptors in a tor
// microdescriptor cache: SHA-256 of each one from its "onion-key" line to
// its end, base64 without padding (dir-spec 3.9.2). Annotation lines
// ("@last-listed ...") separate them.
func microdescDigests(cache []byte) map[string]bool {
	digests := map[string]bool{}
	start := -1
	flush := func(end int) {
		if start >= 0 {
			sum := sha256.Sum256(cache[start:end])
			digests[base64.RawStdEncoding.EncodeToString(sum[:])] = true
		}
		start = -1
	}
	for off := 0; off < len(cache); {
		end := bytes.IndexByte(cache[off:], '\n')
		if end < 0 {
			end = len(cache)
		} else {
			end += off + 1
		}
		l := cache[off:end]
		switch {
		case bytes.HasPrefix(l, []byte("@")):
			flush(off)
		case bytes.HasPrefix(l, []byte("onion-key")):
			flush(off)
			start = off
		}
		off = end
	}
	flush(len(cache))
	return digests
}

// certFingerprint returns the v3 identity fingerprint from an authority
// certificate's "fingerprint" line (dir-spec 3.1).
func certFingerprint(cert []byte) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(cert))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "fingerprint" && fingerprintRE.MatchString(f[1]) {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("tortest: no fingerprint in the authority certificate")
}

// listedFingerprint returns the fingerprint from tor --list-fingerprint's
// output, whose last line is "nickname XXXX XXXX ... XXXX".
func listedFingerprint(out []byte, nickname string) (string, error) {
	var fp string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 11 && f[0] == nickname {
			if p, err := parseFingerprintFile([]byte(sc.Text())); err == nil {
				fp = p
			}
		}
	}
	if fp == "" {
		return "", fmt.Errorf("tortest: no fingerprint for %s in tor --list-fingerprint's output", nickname)
	}
	return fp, nil
}
