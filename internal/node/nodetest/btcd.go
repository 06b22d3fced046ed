package nodetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bip324pt/bip324-pt/internal/testutil"
	"github.com/bip324pt/bip324-pt/v2core"
)

// Btcd as a real, independent node for interop tests.
const (
	// RequireBtcdEnv turns a missing btcd from a skip into a failure. CI
	// sets it (.ci/install-deps installs btcd), so the btcd tests cannot
	// pass by being skipped.
	RequireBtcdEnv = "BIP324PT_REQUIRE_BTCD"
	// BtcdVersion is the btcd release the tests are written against:
	// `go install github.com/btcsuite/btcd@v0.25.0`.
	BtcdVersion = "0.25.0"
	// btcdStartTimeout bounds btcd's start, up to its P2P port listening.
	btcdStartTimeout = 30 * time.Second
)

// BtcdConfig configures a btcd for a test.
type BtcdConfig struct {
	// Simnet runs btcd on simnet; the default is regtest, whose magic is
	// Bitcoin Core's regtest magic ([v2core.Regtest]).
	Simnet bool
	// NoV2 leaves out --v2transport: btcd then speaks v1 only.
	NoV2 bool
	// RPC turns btcd's JSON-RPC server on, on a free loopback port
	// without TLS, for [Btcd.RPC].
	RPC bool
	// Args are more command-line arguments.
	Args []string
}

// Btcd is a btcd process run by a test.
type Btcd struct {
	// Addr is its P2P address on loopback, HOST:PORT.
	Addr string
	// Network is its network.
	Network v2core.Network
	// Version is what `btcd --version` printed.
	Version string
	// RPCAddr is its JSON-RPC address, with BtcdConfig.RPC.
	RPCAddr string

	cmd  *exec.Cmd
	log  *testutil.SyncBuffer
	dir  string
	once sync.Once
	done chan struct{}
}

// btcdSimnet is btcd's simnet magic, 0x12141c16 as btcd's BitcoinNet
// (little-endian), on the wire 16 1c 14 12.
const btcdSimnet v2core.Network = 0x161c1412

// LookBtcd returns the path of btcd on PATH. When it is missing, the test
// is skipped, or fails if [RequireBtcdEnv] is set.
func LookBtcd(tb testing.TB) string {
	tb.Helper()
	p, err := exec.LookPath("btcd")
	if err == nil {
		return p
	}
	if os.Getenv(RequireBtcdEnv) != "" {
		tb.Fatalf("nodetest: btcd not found on PATH and %s is set (run .ci/install-deps): %v", RequireBtcdEnv, err)
	}
	tb.Skipf("nodetest: btcd not found on PATH (go install github.com/btcsuite/btcd@v%s, or run .ci/install-deps; set %s=1 to fail instead of skipping)", BtcdVersion, RequireBtcdEnv)
	return ""
}

// StartBtcd starts btcd on a free loopback port with a temporary data
// directory, no RPC, no DNS seeds (so no outbound peers), no compact
// filters and a small UTXO cache, waits until its
// P2P port accepts, and stops it when the test ends. On failure the test
// fails with btcd's output.
func StartBtcd(tb testing.TB, cfg BtcdConfig) *Btcd {
	tb.Helper()
	bin := LookBtcd(tb)
	ver, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		tb.Fatalf("nodetest: btcd --version: %v\n%s", err, ver)
	}
	version := strings.TrimSpace(string(ver))
	if !strings.Contains(version, BtcdVersion) {
		tb.Logf("nodetest: %s; the tests are written against btcd %s", version, BtcdVersion)
	}

	port, err := freePort()
	if err != nil {
		tb.Fatalf("nodetest: %v", err)
	}
	dir := tb.TempDir()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	b := &Btcd{Addr: addr, Network: v2core.Regtest, Version: version, dir: dir, log: &testutil.SyncBuffer{}, done: make(chan struct{})}
	args := []string{
		"--datadir=" + filepath.Join(dir, "data"),
		"--logdir=" + filepath.Join(dir, "logs"),
		"--configfile=" + filepath.Join(dir, "btcd.conf"),
		"--listen=" + addr,
		"--nodnsseed", "--noonion", "--nocfilters",
		"--utxocachemaxsize=10",
		"--debuglevel=BTCD=info,CMGR=info,SRVR=debug,PEER=debug",
	}
	if cfg.RPC {
		rport, err := freePort()
		if err != nil {
			tb.Fatalf("nodetest: %v", err)
		}
		b.RPCAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(rport))
		args = append(args, "--rpclisten="+b.RPCAddr, "--rpcuser="+rpcUser, "--rpcpass="+rpcPass, "--notls")
	} else {
		args = append(args, "--norpc")
	}
	if cfg.Simnet {
		args = append(args, "--simnet")
		b.Network = btcdSimnet
	} else {
		args = append(args, "--regtest")
	}
	if !cfg.NoV2 {
		args = append(args, "--v2transport")
	}
	args = append(args, cfg.Args...)
	if err := os.WriteFile(filepath.Join(dir, "btcd.conf"), nil, 0o600); err != nil {
		tb.Fatal(err)
	}
	b.cmd = exec.Command(bin, args...)
	b.cmd.Stdout = b.log
	b.cmd.Stderr = b.log
	if err := b.cmd.Start(); err != nil {
		tb.Fatalf("nodetest: start btcd: %v", err)
	}
	go func() {
		b.cmd.Wait()
		close(b.done)
	}()
	tb.Cleanup(func() {
		b.Stop()
		if tb.Failed() {
			tb.Logf("btcd output:\n%s", b.Output())
		}
	})

	deadline := time.Now().Add(btcdStartTimeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-b.done:
			tb.Fatalf("nodetest: btcd exited at start: %v\n%s", b.cmd.ProcessState, b.Output())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("nodetest: btcd not listening on %s after %v: %v\n%s", addr, btcdStartTimeout, err, b.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return b
}

// The JSON-RPC credentials of test btcds (loopback only, for a test's
// life).
const (
	rpcUser = "bip324pt"
	rpcPass = "bip324pt-test"
)

// RPC calls a JSON-RPC method of btcd (started with BtcdConfig.RPC) and
// decodes its result into out (nil: ignored).
func (b *Btcd) RPC(method string, out any, params ...any) error {
	if b.RPCAddr == "" {
		return errors.New("nodetest: btcd started without RPC")
	}
	if params == nil {
		params = []any{}
	}
	body, err := json.Marshal(map[string]any{"jsonrpc": "1.0", "id": 1, "method": method, "params": params})
	if err != nil {
		return err
	}
	req, err := http.NewRequest("POST", "http://"+b.RPCAddr+"/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.SetBasicAuth(rpcUser, rpcPass)
	client := http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("nodetest: btcd %s: %w", method, err)
	}
	defer resp.Body.Close()
	var res struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&res); err != nil {
		return fmt.Errorf("nodetest: btcd %s: %s: %w", method, resp.Status, err)
	}
	if res.Error != nil {
		return fmt.Errorf("nodetest: btcd %s: %d %s", method, res.Error.Code, res.Error.Message)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(res.Result, out)
}

// Stop stops btcd (interrupt, then kill after 10 s) and waits for it.
// Safe to call more than once.
func (b *Btcd) Stop() {
	b.once.Do(func() {
		b.cmd.Process.Signal(os.Interrupt)
		select {
		case <-b.done:
		case <-time.After(10 * time.Second):
			b.cmd.Process.Kill()
			<-b.done
		}
	})
}

// Output returns what btcd printed so far (its log at debug level).
func (b *Btcd) Output() string { return b.log.String() }

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
