package tortest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/bip324pt/bip324-pt/internal/tortest"
	"github.com/bip324pt/bip324-pt/profiles"
)

// TestBip324EveryProfile: one private Tor network, one bip324-pt bridge,
// and a client for every built-in profile (profile= in its bridge line):
// each bootstraps to 100% and fetches 1 MiB through the bridge, checked
// byte for byte.
func TestBip324EveryProfile(t *testing.T) {
	t.Parallel()
	bin := tortest.BuildBip324(t)
	tr := tortest.Bip324(bin)
	srv := tortest.StartFileServer(t, 1<<20)
	n := tortest.StartNetwork(t, tortest.NetworkConfig{ExitPorts: []int{srv.Port}})
	b := n.Bridge(t, tr)
	// The bridge line an operator hands out comes from tor's own
	// <DataDirectory>/bridgelines (README, "With tor"): it carries our
	// secret= and the bridge's fingerprint.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	line, err := b.TorBridgeLine(ctx, "bip324")
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(line); len(f) < 4 || f[2] != b.Fingerprint || !strings.HasPrefix(f[3], "secret=") || !strings.Contains(b.BridgeLine, f[3]) {
		t.Fatalf("tor's bridge line %q, ours %q", line, b.BridgeLine)
	}
	for _, p := range profiles.Builtins() {
		t.Run(p, func(t *testing.T) {
			c := n.Client(t, tr, b.BridgeLine+" profile="+p)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			start := time.Now()
			if _, err := c.WaitBootstrap(ctx, 100); err != nil {
				t.Fatalf("profile %s: %v", p, err)
			}
			boot := time.Since(start)
			d := tortest.FetchRetry(t, srv, c)
			t.Logf("tortest: profile %s: Bootstrapped 100%% in %v; fetched %v", p, boot.Round(time.Millisecond), d)
			c.Stop()
		})
	}
}
