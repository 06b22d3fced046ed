package node_test

import (
	"context"
	"strings"
	"testing"

	"github.com/bip324pt/bip324-pt/internal/node"
	"github.com/bip324pt/bip324-pt/internal/node/nodetest"
)

// TestPing_BtcdDaemon runs node.Ping against btcd 0.25.0 itself, started
// with --v2transport on regtest (nodetest.StartBtcd; skipped without btcd
// on PATH unless BIP324PT_REQUIRE_BTCD is set): a BIP324 handshake, the
// version exchange and a ping with an independent node, not a fake. The
// pong matching our nonce shows both ends derived the same keys.
func TestPing_BtcdDaemon(t *testing.T) {
	nodetest.VerifyNoLeaks(t)
	b := nodetest.StartBtcd(t, nodetest.BtcdConfig{})
	res, err := node.Ping(context.Background(), node.Options{
		Addr:    b.Addr,
		Network: b.Network,
		Timeout: btcdPingTimeout,
		V2Only:  true,
	})
	if err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if res.V1 || res.SessionID == ([32]byte{}) {
		t.Errorf("no BIP324 session: %+v", res)
	}
	if !strings.Contains(res.Peer.UserAgent, "btcd:") || res.Peer.Services&node.ServiceP2PV2 == 0 {
		t.Errorf("btcd's version %+v", res.Peer)
	}
}
