package tortest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// bridgeStartTimeout bounds how long a bridge may take to register its
// transport and write its bridge line.
const bridgeStartTimeout = 60 * time.Second

// Bridge starts a tor bridge on 127.0.0.1 that serves tr (a managed
// transport server, run by tor with an ExtORPort), with no directory
// authority (a placeholder DirAuthority keeps it off the real ones). It
// returns once tor has registered the transport and the bridge line is
// known ([Tor.BridgeLine]); a failure fails the test.
func Bridge(tb testing.TB, tr Transport) *Tor {
	tb.Helper()
	return startBridge(tb, tr, nil)
}

// Client starts a tor client on 127.0.0.1 that reaches the bridge only
// through tr, with bridgeLine as its Bridge option (a [Tor.BridgeLine]),
// and a SocksPort. It does not wait: call [Tor.WaitBootstrap]. With a
// bridge from [Bridge], the client reaches 15% (handshake_done) and stops
// around 30% for want of a consensus.
func Client(tb testing.TB, tr Transport, bridgeLine string) *Tor {
	tb.Helper()
	return startClient(tb, tr, bridgeLine, nil)
}

// startBridge starts a bridge, joined to n when n is not nil.
func startBridge(tb testing.TB, tr Transport, n *Network) *Tor {
	tb.Helper()
	checkTransport(tb, tr)
	dir := tempDir(tb, "bridge")
	t := &Tor{ORPort: FreePort(tb), TransportPort: FreePort(tb)}
	torrc := relayTorrc(dir, "bridge", t.ORPort)
	torrc = append(torrc,
		"BridgeRelay 1",
		"PublishServerDescriptor 0",
		"BridgeDistribution none",
		"ExitRelay 0",
		// No GeoIP lookups, no warnings about the missing file.
		"BridgeRecordUsageByCountry 0",
		"DirReqStatistics 0",
		"ExtORPort auto",
		"ServerTransportPlugin "+tr.pluginLine(),
		fmt.Sprintf("ServerTransportListenAddr %s 127.0.0.1:%d", tr.Name, t.TransportPort),
	)
	if len(tr.ServerOptions) > 0 {
		torrc = append(torrc, "ServerTransportOptions "+tr.Name+" "+strings.Join(tr.ServerOptions, " "))
	}
	torrc = append(torrc, n.torrc()...)
	torrc = append(torrc, tr.BridgeTorrc...)
	startTorIn(tb, dir, "bridge", torrc, t)

	ctx, cancel := context.WithTimeout(context.Background(), bridgeStartTimeout)
	defer cancel()
	fp, err := t.readFingerprint(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	t.Fingerprint = fp
	// tor logs this once the transport said SMETHOD (pt-spec 3.3.3).
	if _, err := t.WaitLog(ctx, "Registered server transport '"+tr.Name+"'"); err != nil {
		tb.Fatalf("tortest: bridge: transport %s did not start: %v", tr.Name, err)
	}
	args, err := waitBridgeArgs(ctx, tr, filepath.Join(t.DataDir, "pt_state"), t.proc.exited)
	if err != nil {
		tb.Fatal(err)
	}
	t.BridgeLine = strings.TrimSpace(fmt.Sprintf("%s 127.0.0.1:%d %s %s", tr.Name, t.TransportPort, fp, strings.Join(args, " ")))
	tb.Logf("tortest: bridge up in %v: Bridge %s", time.Since(t.Started).Round(time.Millisecond), t.BridgeLine)
	return t
}

// TorBridgeLine waits for tor's own bridge line for transport name in
// <DataDirectory>/bridgelines (tor writes it once the transport has
// reported its method and arguments) and returns it, without "Bridge ".
func (t *Tor) TorBridgeLine(ctx context.Context, name string) (string, error) {
	path := filepath.Join(t.DataDir, "bridgelines")
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "Bridge "+name+" "); ok {
					return name + " " + rest, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("tortest: no %s line in %s: %w (last error: %v)", name, path, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// waitBridgeArgs polls tr's bridge arguments from stateDir until they can
// be read (the transport writes its bridge line file at start-up, maybe
// just after reporting its method), ctx ends, or exited is closed.
func waitBridgeArgs(ctx context.Context, tr Transport, stateDir string, exited <-chan struct{}) ([]string, error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		args, err := tr.bridgeArgs(stateDir)
		if err == nil {
			return args, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("tortest: %s bridge arguments from %s: %w (last error: %v)", tr.Name, stateDir, ctx.Err(), err)
		case <-exited:
			return nil, fmt.Errorf("tortest: %s bridge arguments from %s: process exited (last error: %v)", tr.Name, stateDir, err)
		case <-tick.C:
		}
	}
}

// startClient starts a client, joined to n when n is not nil.
func startClient(tb testing.TB, tr Transport, bridgeLine string, n *Network) *Tor {
	tb.Helper()
	checkTransport(tb, tr)
	t := &Tor{SOCKSPort: FreePort(tb)}
	torrc := []string{
		"SocksPort 127.0.0.1:" + strconv.Itoa(t.SOCKSPort),
		"UseBridges 1",
		"Bridge " + bridgeLine,
		"ClientTransportPlugin " + tr.pluginLine(),
		"ClientUseIPv6 0",
	}
	torrc = append(torrc, n.torrc()...)
	torrc = append(torrc, tr.ClientTorrc...)
	return startTorIn(tb, tempDir(tb, "client"), "client", torrc, t)
}

// checkTransport fails the test on a Transport that cannot run.
func checkTransport(tb testing.TB, tr Transport) {
	tb.Helper()
	if tr.Name == "" || tr.Binary == "" {
		tb.Fatalf("tortest: Transport needs a Name and a Binary: %+v", tr)
	}
	if strings.ContainsAny(tr.Binary, " \t\n") {
		tb.Fatalf("tortest: tor cannot exec a transport path with spaces: %q", tr.Binary)
	}
}
