package tortest_test

import (
	"testing"

	"github.com/bip324pt/bip324-pt/internal/tortest"
)

// TestBip324VideoPrivateNetwork: in a private Tor network, a client whose
// bridge line asks for profile=video bootstraps to 100% through the
// video player model and fetches 1 MiB through its SocksPort, checked
// byte for byte.
func TestBip324VideoPrivateNetwork(t *testing.T) {
	t.Parallel()
	tortest.RunPrivateNetwork(t, bip324(t, "profile=video"), 1<<20)
}
