package tortest_test

import (
	"context"
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
