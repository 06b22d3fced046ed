package tortest_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/bip324pt/bip324-pt/internal/tortest"
)

// These tests run real tor and obfs4proxy processes (.ci/install-deps
// installs them). Without tor they skip, unless BIP324PT_REQUIRE_TOR is set,
// when they fail. The bip324 versions are the same calls with
// tortest.Transport{Name: "bip324", Binary: tortest.BuildBip324(t)}.

// TestObfs4Bootstrap15 proves the harness with Debian's obfs4proxy: a client
// reaches its bridge through obfs4 (Bootstrapped 15%, handshake_done).
func TestObfs4Bootstrap15(t *testing.T) {
	t.Parallel()
	tortest.RunBootstrap15(t, tortest.Obfs4(t))
}

// TestObfs4PrivateNetwork proves the harness with obfs4proxy in a private
// Tor network: Bootstrapped 100%, then 10 MiB fetched through bridge, relay
// and exit, checked byte for byte.
func TestObfs4PrivateNetwork(t *testing.T) {
	t.Parallel()
	tortest.RunPrivateNetwork(t, tortest.Obfs4(t), 10<<20)
}

// TestMeasureObfs4 is a measurement tool, not a correctness test: it runs
// only with BIP324PT_MEASURE=1, as
//
//	BIP324PT_MEASURE=1 go test ./internal/tortest -run Measure -v
//
// and logs obfs4proxy's throughput and CPU per MiB (iat-mode=0 and 1) and
// its handshakes per second, run directly in managed mode without tor: the
// reference figures for bip324-pt. BIP324PT_MEASURE_MIB sets the size of
// the iat-mode=0 transfers (default 256); the iat-mode=1 ones move 1 MiB,
// which takes seconds.
func TestMeasureObfs4(t *testing.T) {
	mib := measureMiB(t)
	t.Run("iat0/tunnel", func(t *testing.T) {
		r := tortest.MeasureTunnel(t, tortest.Obfs4(t), mib<<20)
		t.Logf("upload:   %v", r.Upload)
		t.Logf("download: %v", r.Download)
	})
	t.Run("iat0/handshakes", func(t *testing.T) {
		p := tortest.StartPair(t, tortest.Obfs4(t))
		for _, c := range []struct{ n, parallel int }{{200, 1}, {400, 4}} {
			r, err := p.Handshakes(c.n, c.parallel)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%v", r)
		}
	})
	t.Run("iat1/tunnel", func(t *testing.T) {
		r := tortest.MeasureTunnel(t, tortest.Obfs4(t, "iat-mode=1"), 1<<20)
		t.Logf("upload:   %v", r.Upload)
		t.Logf("download: %v", r.Download)
	})
}

// bip324 returns bip324-pt built from this tree, with client arguments
// extra added to the bridge line's (for example "profile=cbr").
func bip324(t *testing.T, extra ...string) tortest.Transport {
	tr := tortest.Transport{Name: "bip324", Binary: tortest.BuildBip324(t), Args: []string{"--log-level", "debug"}}
	if len(extra) > 0 {
		tr.BridgeArgs = func(stateDir string) ([]string, error) {
			args, err := tortest.ReadBridgeLineArgs(filepath.Join(stateDir, "bip324_bridgeline.txt"), "bip324")
			return append(args, extra...), err
		}
	}
	return tr
}

// TestBip324Bootstrap15: a real tor client reaches a real tor bridge
// through bip324-pt as the managed transport on both ends: the Tor link
// handshake runs through shaped BIP324 (Bootstrapped 15%, handshake_done).
func TestBip324Bootstrap15(t *testing.T) {
	t.Parallel()
	bin := tortest.BuildBip324(t)
	for _, profile := range []string{"none", "bitcoin", "cbr", "video", "fet", "jitter"} {
		t.Run(profile, func(t *testing.T) {
			tr := bip324(t, "profile="+profile)
			tr.Binary = bin
			tortest.RunBootstrap15(t, tr)
		})
	}
}

// TestBip324PrivateNetwork: in a private Tor network, a client whose bridge
// speaks bip324-pt bootstraps to 100% and fetches 10 MiB from a local HTTP
// server through its SocksPort, checked byte for byte.
func TestBip324PrivateNetwork(t *testing.T) {
	t.Parallel()
	tortest.RunPrivateNetwork(t, bip324(t), 10<<20)
}

// TestMeasureBip324 measures bip324-pt as TestMeasureObfs4 measures
// obfs4proxy, in the same way, so that the two can be compared run for
// run (BIP324PT_MEASURE=1; BENCHMARKS.md has the figures).
func TestMeasureBip324(t *testing.T) {
	mib := measureMiB(t)
	t.Run("none/tunnel", func(t *testing.T) {
		r := tortest.MeasureTunnel(t, bip324(t, "profile=none"), mib<<20)
		t.Logf("upload:   %v", r.Upload)
		t.Logf("download: %v", r.Download)
	})
	t.Run("none/handshakes", func(t *testing.T) {
		p := tortest.StartPair(t, bip324(t, "profile=none"))
		for _, c := range []struct{ n, parallel int }{{200, 1}, {400, 4}} {
			r, err := p.Handshakes(c.n, c.parallel)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%v", r)
		}
	})
	t.Run("jitter/tunnel", func(t *testing.T) {
		r := tortest.MeasureTunnel(t, bip324(t, "profile=jitter"), 16<<20)
		t.Logf("upload:   %v", r.Upload)
		t.Logf("download: %v", r.Download)
	})
}

// measureMiB skips a measurement tool unless BIP324PT_MEASURE=1, and
// returns the transfer size BIP324PT_MEASURE_MIB asks for (default 256).
func measureMiB(t *testing.T) int64 {
	t.Helper()
	if os.Getenv("BIP324PT_MEASURE") != "1" {
		t.Skip("a measurement tool: set BIP324PT_MEASURE=1 to run it")
	}
	mib := int64(256)
	if s := os.Getenv("BIP324PT_MEASURE_MIB"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			t.Fatalf("BIP324PT_MEASURE_MIB=%q: want a positive integer", s)
		}
		mib = n
	}
	return mib
}
