package nodetest

import (
	"testing"

	"github.com/bip324pt/bip324-pt/internal/testutil"
)

// New starts a fake node for a test and closes it when the test ends.
func New(t testing.TB, cfg Config) *Node {
	t.Helper()
	n, err := Start(cfg)
	if err != nil {
		t.Fatalf("nodetest: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// VerifyNoLeaks is testutil.VerifyNoLeaks, for the node tests. Not for
// parallel tests.
func VerifyNoLeaks(t testing.TB) {
	t.Helper()
	testutil.VerifyNoLeaks(t)
}
