package nodeproxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"golang.org/x/crypto/ripemd160"

	"github.com/bip324pt/bip324-pt/eval/fet"
	"github.com/bip324pt/bip324-pt/internal/bridge"
	"github.com/bip324pt/bip324-pt/internal/bridgeauth"
	"github.com/bip324pt/bip324-pt/internal/copyloop"
	"github.com/bip324pt/bip324-pt/internal/node/nodetest"
	"github.com/bip324pt/bip324-pt/profiles"
	"github.com/bip324pt/bip324-pt/v2core"
)

// The key the tests mine to and spend from: private key 1 (a test key,
// known to all), its regtest P2PKH address and script.
var (
	testKey, _ = btcec.PrivKeyFromBytes(append(make([]byte, 31), 1))
	testPKH    = hash160(testKey.PubKey().SerializeCompressed())
	testScript = append(append([]byte{0x76, 0xa9, 0x14}, testPKH...), 0x88, 0xac)
)

func hash160(b []byte) []byte {
	s := sha256.Sum256(b)
	r := ripemd160.New()
	r.Write(s[:])
	return r.Sum(nil)
}

func dsha(b []byte) [32]byte {
	a := sha256.Sum256(b)
	return sha256.Sum256(a[:])
}

// regtestAddr is the base58check P2PKH address (version 0x6f) of pkh.
func regtestAddr(pkh []byte) string {
	b := append([]byte{0x6f}, pkh...)
	sum := dsha(b)
	b = append(b, sum[:4]...)
	const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	n := new(big.Int).SetBytes(b)
	var out []byte
	m, base := new(big.Int), big.NewInt(58)
	for n.Sign() > 0 {
		n.DivMod(n, base, m)
		out = append(out, alphabet[m.Int64()])
	}
	for _, x := range b {
		if x != 0 {
			break
		}
		out = append(out, '1')
	}
	slices.Reverse(out)
	return string(out)
}

// spendTx spends output vout (value sats, paying testScript) of the
// transaction txid (as RPC shows it) back to testScript, less a fee,
// signed with testKey (legacy P2PKH, SIGHASH_ALL).
func spendTx(t *testing.T, txid string, vout uint32, value int64) []byte {
	t.Helper()
	prev, err := hex.DecodeString(txid)
	if err != nil || len(prev) != 32 {
		t.Fatalf("txid %q", txid)
	}
	slices.Reverse(prev) // RPC shows txids reversed
	build := func(scriptSig []byte) []byte {
		var b []byte
		b = binary.LittleEndian.AppendUint32(b, 1) // version
		b = append(b, 1)                           // one input
		b = append(b, prev...)
		b = binary.LittleEndian.AppendUint32(b, vout)
		b = append(b, byte(len(scriptSig)))
		b = append(b, scriptSig...)
		b = binary.LittleEndian.AppendUint32(b, 0xffffffff)
		b = append(b, 1) // one output
		b = binary.LittleEndian.AppendUint64(b, uint64(value-10_000))
		b = append(b, byte(len(testScript)))
		b = append(b, testScript...)
		return binary.LittleEndian.AppendUint32(b, 0) // lock time
	}
	sighash := dsha(binary.LittleEndian.AppendUint32(build(testScript), 1))
	sig := append(ecdsa.Sign(testKey, sighash[:]).Serialize(), 1)
	pub := testKey.PubKey().SerializeCompressed()
	scriptSig := append(append([]byte{byte(len(sig))}, sig...), append([]byte{byte(len(pub))}, pub...)...)
	return build(scriptSig)
}

// btcdPair starts B (mining to testKey's address) and A (connecting only
// to B, through the proxy at proxyAddr).
func btcdPair(t *testing.T, proxyAddr string, aV2, bV2 bool, target func(b *nodetest.Btcd) string) (a, b *nodetest.Btcd) {
	t.Helper()
	b = nodetest.StartBtcd(t, nodetest.BtcdConfig{RPC: true, NoV2: !bV2, Args: []string{"--miningaddr=" + regtestAddr(testPKH)}})
	to := b.Addr
	if target != nil {
		to = target(b)
	}
	a = nodetest.StartBtcd(t, nodetest.BtcdConfig{RPC: true, NoV2: !aV2, Args: []string{"--proxy=" + proxyAddr, "--connect=" + to}})
	return a, b
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type peerInfo struct {
	Addr string `json:"addr"`
	V2   bool   `json:"v2_connection"`
}

// blocksAndTx mines on B and checks the blocks reach A; with tx, mines
// past coinbase maturity and checks a transaction sent to A reaches B's
// mempool.
func blocksAndTx(t *testing.T, a, b *nodetest.Btcd, tx bool) {
	t.Helper()
	n := 3
	if tx {
		n = 101 // coinbase maturity is 100 blocks
	}
	if err := b.RPC("generate", nil, n); err != nil {
		t.Fatal(err)
	}
	waitFor(t, fmt.Sprintf("A at height %d", n), 60*time.Second, func() bool {
		var h int
		return a.RPC("getblockcount", &h) == nil && h == n
	})
	if !tx {
		return
	}
	var hash string
	if err := b.RPC("getblockhash", &hash, 1); err != nil {
		t.Fatal(err)
	}
	var blk struct {
		RawTx []struct {
			Txid string `json:"txid"`
		} `json:"rawtx"`
	}
	if err := b.RPC("getblock", &blk, hash, 2); err != nil || len(blk.RawTx) == 0 {
		t.Fatalf("getblock: %v", err)
	}
	raw := spendTx(t, blk.RawTx[0].Txid, 0, 50*100_000_000)
	var txid string
	if err := a.RPC("sendrawtransaction", &txid, hex.EncodeToString(raw)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the transaction in B's mempool", 60*time.Second, func() bool {
		var pool []string
		return b.RPC("getrawmempool", &pool) == nil && slices.Contains(pool, txid)
	})
}

// TestBtcd_ThroughProxy: two real nodes, A (btcd) through the proxy to B
// (btcd): blocks mined on B reach A, a transaction submitted to A reaches
// B, and B sees what the path promises: v2 from a v1 A (the proxy's
// shaped v2), v2 from a v2 A (passed through), v1 when B has no v2 (the
// proxy's retry).
func TestBtcd_ThroughProxy(t *testing.T) {
	nodetest.LookBtcd(t)
	for _, tc := range []struct {
		name     string
		profile  string
		aV2, bV2 bool
		tx       bool
		wantV2   bool
		log      string
	}{
		{"v1 node, shaped v2", "bitcoin", false, true, true, true, "transport=v2 session_id="},
		{"v1 node, fet", "fet", false, true, false, true, "transport=v2 session_id="},
		{"v2 node, passed through", "bitcoin", true, true, false, true, "the node speaks v2 itself"},
		{"v1-only peer, v1 retry", "bitcoin", false, false, false, false, "transport=v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, _ := profiles.Load(tc.profile)
			shape, _ := p.Compile()
			var firsts firstWrites
			proxy, logs := startProxy(t, Config{Network: v2core.Regtest, Shape: shape, Profile: tc.profile, Dial: firsts.dial})
			a, b := btcdPair(t, proxy, tc.aV2, tc.bV2, nil)
			var peers []peerInfo
			waitFor(t, "B's peer", 30*time.Second, func() bool {
				return b.RPC("getpeerinfo", &peers) == nil && len(peers) == 1
			})
			if peers[0].V2 != tc.wantV2 {
				t.Errorf("B sees v2_connection=%v, want %v", peers[0].V2, tc.wantV2)
			}
			blocksAndTx(t, a, b, tc.tx)
			if !strings.Contains(logs.String(), tc.log) {
				t.Errorf("the proxy's log lacks %q:\n%s", tc.log, logs.String())
			}
			// fet: our first flight passes the fully-encrypted-traffic
			// rule, and B (a real node) took it as BIP324.
			if f := firsts.first(); tc.profile == "fet" && (len(f) < v2core.EllswiftKeySize || !fet.Exempt(f)) {
				t.Errorf("first flight of %d bytes is not exempt from the FET rule: %s", len(f), fet.Check(f))
			}
		})
	}
}

// firstWrites records the first write on the first connection dialled.
type firstWrites struct {
	mu sync.Mutex
	b  []byte
}

func (f *firstWrites) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &recordFirst{Conn: c, f: f}, nil
}

func (f *firstWrites) first() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.b
}

type recordFirst struct {
	net.Conn
	f    *firstWrites
	done bool
}

func (c *recordFirst) Write(p []byte) (int, error) {
	if !c.done {
		c.done = true
		c.f.mu.Lock()
		if c.f.b == nil {
			c.f.b = append([]byte(nil), p...)
		}
		c.f.mu.Unlock()
	}
	return c.Conn.Write(p)
}

// TestBtcd_ThroughBridge: A reaches B through the proxy and a bip324-pt
// bridge in front of B (--bridge): both directions shaped, blocks and a
// transaction pass; B sees the bridge's forward (v1, the node's own
// bytes).
func TestBtcd_ThroughBridge(t *testing.T) {
	nodetest.LookBtcd(t)
	secret, err := bridgeauth.NewSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b := nodetest.StartBtcd(t, nodetest.BtcdConfig{RPC: true, Args: []string{"--miningaddr=" + regtestAddr(testPKH)}})
	// The bridge in front of B: clients' streams go to B, others are
	// relayed to B as Core would serve them.
	srv, err := bridge.NewServer(bridge.ServerConfig{Secret: secret, Node: b.Addr, Network: v2core.Regtest, Allowed: []string{"cbr"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	bridgeAddr := ln.Addr().String()
	go func() {
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				c, err := srv.WrapConn(ctx, raw)
				if err != nil || c == nil {
					return
				}
				defer c.Close()
				up, err := net.Dial("tcp", b.Addr)
				if err != nil {
					return
				}
				copyloop.Join(c, up)
			}()
		}
	}()
	line := fmt.Sprintf("%s secret=%s profile=cbr network=regtest", bridgeAddr, secret.Encode())
	br, err := ParseBridge(line)
	if err != nil {
		t.Fatal(err)
	}
	proxy, logs := startProxy(t, Config{Network: v2core.Regtest, Bridges: []Bridge{br}})
	a := nodetest.StartBtcd(t, nodetest.BtcdConfig{RPC: true, NoV2: true, Args: []string{"--proxy=" + proxy, "--connect=" + bridgeAddr}})
	var peers []peerInfo
	waitFor(t, "B's peer", 30*time.Second, func() bool {
		return b.RPC("getpeerinfo", &peers) == nil && len(peers) == 1
	})
	blocksAndTx(t, a, b, true)
	if !strings.Contains(logs.String(), "transport=bridge profile=cbr session_id=") {
		t.Errorf("the proxy's log:\n%s", logs.String())
	}
	if !bytes.Contains([]byte(logs.String()), []byte(bridgeAddr)) {
		t.Errorf("no peer address in the unsafe log:\n%s", logs.String())
	}
}
