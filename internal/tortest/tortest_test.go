package tortest_test

import (
	"testing"

	"github.com/bip324pt/bip324-pt/internal/tortest"
)

// These tests run real tor and obfs4proxy processes (.ci/install-deps
// installs them). Without tor they skip, unless BIP324PT_REQUIRE_TOR is set,
// when they fail. The bip324 versions are the same calls with
// tortest.Bip324(tortest.BuildBip324(t)). The obfs4-against-bip324
// measurements (no tor, just the transports) are in eval/measure.

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

// bip324 returns bip324-pt built from this tree, with client arguments
// extra added to the bridge line's (for example "profile=cbr").
func bip324(t *testing.T, extra ...string) tortest.Transport {
	return tortest.Bip324(tortest.BuildBip324(t), extra...)
}

// TestBip324Bootstrap15: a real tor client reaches a real tor bridge
// through bip324-pt as the managed transport on both ends: the Tor link
// handshake runs through shaped BIP324 (Bootstrapped 15%, handshake_done).
func TestBip324Bootstrap15(t *testing.T) {
	t.Parallel()
	bin := tortest.BuildBip324(t)
	for _, profile := range []string{"none", "bitcoin", "cbr", "video", "fet", "jitter"} {
		t.Run(profile, func(t *testing.T) {
			tortest.RunBootstrap15(t, tortest.Bip324(bin, "profile="+profile))
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
