package nodeproxy

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bip324pt/bip324-pt/internal/node"
	"github.com/bip324pt/bip324-pt/internal/node/nodetest"
	"github.com/bip324pt/bip324-pt/internal/socks5"
	"github.com/bip324pt/bip324-pt/profiles"
	"github.com/bip324pt/bip324-pt/v2core"
)

// syncBuf is a log sink safe for concurrent writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startProxy runs a proxy with cfg on loopback until the test ends and
// returns its address and its log.
func startProxy(t *testing.T, cfg Config) (string, *syncBuf) {
	t.Helper()
	logs := &syncBuf{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.UnsafeLogging = true
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String(), logs
}

// dialVia connects to addr through the proxy as bitcoind does: ATYP 3
// with the address as a name, credentials for stream isolation.
func dialVia(t *testing.T, proxy, addr string) net.Conn {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := socks5.Dial(ctx, proxy, host, uint16(p), "0", "0")
	if err != nil {
		t.Fatalf("SOCKS to %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// versionExchange plays bitcoind's side of the version handshake over mc
// and returns the peer's version.
func versionExchange(t *testing.T, mc node.MessageConn) node.Version {
	t.Helper()
	v := &node.Version{Protocol: node.ProtocolVersion, Services: node.ServiceNetwork | node.ServiceWitness, Timestamp: time.Now().Unix(),
		Nonce: 42, UserAgent: "/test:1/", StartHeight: 1, Relay: true}
	payload, err := node.AppendVersion(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	if err := mc.WriteMessage("version", payload); err != nil {
		t.Fatal(err)
	}
	var peer node.Version
	gotVersion, gotVerack := false, false
	for !gotVersion || !gotVerack {
		cmd, p, err := mc.ReadMessage()
		if err != nil {
			t.Fatalf("reading the peer's handshake: %v", err)
		}
		switch cmd {
		case "version":
			if peer, err = node.ParseVersion(p); err != nil {
				t.Fatal(err)
			}
			gotVersion = true
			if err := mc.WriteMessage("verack", nil); err != nil {
				t.Fatal(err)
			}
		case "verack":
			gotVerack = true
		}
	}
	return peer
}

var sessionRE = regexp.MustCompile(`transport=v2 session_id=([0-9a-f]{64})`)

// TestProxy_V1NodeGetsShapedV2: a node speaking v1 through the proxy
// reaches a v2 peer: the peer sees a v2 connection whose session id the
// proxy logs, and the version handshake passes through the translation.
func TestProxy_V1NodeGetsShapedV2(t *testing.T) {
	for _, profile := range []string{"none", "bitcoin", "fet", "cbr"} {
		t.Run(profile, func(t *testing.T) {
			peer := nodetest.New(t, nodetest.Config{})
			p, err := profiles.Load(profile)
			if err != nil {
				t.Fatal(err)
			}
			shape, err := p.Compile()
			if err != nil {
				t.Fatal(err)
			}
			proxy, logs := startProxy(t, Config{Shape: shape, Profile: profile})
			c := dialVia(t, proxy, peer.Addr())
			mc := node.NewV1Conn(c, v2core.Mainnet, nil)
			v := versionExchange(t, mc)
			if v.UserAgent != nodetest.DefaultUserAgent {
				t.Errorf("peer's user agent %q", v.UserAgent)
			}
			c.Close()
			infos := waitConns(t, peer, 1)
			if !infos[0].HasSessionID || infos[0].V1 {
				t.Fatalf("the peer saw %+v, want v2", infos[0])
			}
			m := sessionRE.FindStringSubmatch(logs.String())
			if m == nil || m[1] != hex.EncodeToString(infos[0].SessionID[:]) {
				t.Errorf("logged session id %v, the peer's %x\n%s", m, infos[0].SessionID, logs.String())
			}
			if !strings.Contains(logs.String(), "profile="+profile) {
				t.Errorf("log lacks the profile:\n%s", logs.String())
			}
		})
	}
}

// waitConns waits until the node has seen n connections and returns
// what it saw.
func waitConns(t *testing.T, n *nodetest.Node, want int) []nodetest.ConnInfo {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		infos := n.Conns()
		if len(infos) >= want && (infos[want-1].HasSessionID || infos[want-1].V1 || infos[want-1].Rejected) {
			return infos
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node saw %d connections, want %d: %+v", len(infos), want, infos)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestProxy_V1Fallback: a peer without v2 closes our v2 attempt without
// a byte; the proxy retries with v1 and says so, or with V2Only gives
// up.
func TestProxy_V1Fallback(t *testing.T) {
	t.Run("retry", func(t *testing.T) {
		peer := nodetest.New(t, nodetest.Config{Mode: nodetest.ModeV1Only})
		proxy, logs := startProxy(t, Config{})
		c := dialVia(t, proxy, peer.Addr())
		versionExchange(t, node.NewV1Conn(c, v2core.Mainnet, nil))
		infos := waitConns(t, peer, 2)
		if !infos[0].Rejected || !infos[1].V1 {
			t.Errorf("the peer saw %+v, want a rejected v2 attempt then v1", infos)
		}
		if !strings.Contains(logs.String(), "transport=v1") {
			t.Errorf("no v1 line in the log:\n%s", logs.String())
		}
	})
	t.Run("v2-only", func(t *testing.T) {
		peer := nodetest.New(t, nodetest.Config{Mode: nodetest.ModeV1Only})
		proxy, logs := startProxy(t, Config{V2Only: true})
		c := dialVia(t, proxy, peer.Addr())
		mc := node.NewV1Conn(c, v2core.Mainnet, nil)
		payload, _ := node.AppendVersion(nil, &node.Version{Protocol: node.ProtocolVersion, UserAgent: "/t/"})
		mc.WriteMessage("version", payload)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, _, err := mc.ReadMessage(); err == nil {
			t.Fatal("a message came back; want the connection closed")
		}
		if n := len(peer.Conns()); n != 1 {
			t.Errorf("the peer saw %d connections, want 1 (no v1 retry)", n)
		}
		if !strings.Contains(logs.String(), "not retrying with v1") {
			t.Errorf("log:\n%s", logs.String())
		}
	})
}

// TestProxy_NodeSpeaksV2: a node that speaks v2 itself gets its bytes
// passed through: the session is between it and the peer.
func TestProxy_NodeSpeaksV2(t *testing.T) {
	peer := nodetest.New(t, nodetest.Config{})
	p, _ := profiles.Load("jitter")
	shape, _ := p.Compile()
	proxy, logs := startProxy(t, Config{Shape: shape, Profile: "jitter"})
	c := dialVia(t, proxy, peer.Addr())
	vc := v2core.Client(c, &v2core.Config{Network: v2core.Mainnet})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := vc.HandshakeContext(ctx); err != nil {
		t.Fatal(err)
	}
	versionExchange(t, node.NewV2Conn(vc))
	ours, _ := vc.SessionID()
	infos := waitConns(t, peer, 1)
	if infos[0].SessionID != ours {
		t.Errorf("the peer's session %x, ours %x: not passed through", infos[0].SessionID, ours)
	}
	if !strings.Contains(logs.String(), "set v2transport=0") {
		t.Errorf("no advice in the log:\n%s", logs.String())
	}
}

// TestProxy_Onion: .onion goes to tor's SocksPort with the name
// untouched; without --tor the node gets "host unreachable".
func TestProxy_Onion(t *testing.T) {
	const onion = "2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion"
	t.Run("no tor", func(t *testing.T) {
		proxy, _ := startProxy(t, Config{})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := socks5.Dial(ctx, proxy, onion, 8333, "", "")
		var re socks5.ReplyError
		if !errors.As(err, &re) || byte(re) != socks5.HostUnreachable {
			t.Errorf("dial: %v, want reply 04", err)
		}
	})
	t.Run("tor", func(t *testing.T) {
		tor, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer tor.Close()
		got := make(chan string, 1)
		go func() {
			c, err := tor.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			req, err := socks5.ReadRequest(c)
			if err != nil {
				got <- err.Error()
				return
			}
			socks5.WriteReply(c, socks5.Succeeded, netip.AddrPort{})
			got <- req.Addr()
			c.Write([]byte("from tor"))
		}()
		proxy, _ := startProxy(t, Config{Tor: tor.Addr().String()})
		c := dialVia(t, proxy, net.JoinHostPort(onion, "8333"))
		buf := make([]byte, 8)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(buf); err != nil || string(buf) != "from tor" {
			t.Errorf("read %q, %v", buf, err)
		}
		if a := <-got; a != net.JoinHostPort(onion, "8333") {
			t.Errorf("tor was asked for %q", a)
		}
	})
}

// TestProxy_Unreachable: a closed port gets "connection refused".
func TestProxy_Unreachable(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close()
	proxy, _ := startProxy(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := socks5.Dial(ctx, proxy, "127.0.0.1", uint16(addr.Port), "", "")
	var re socks5.ReplyError
	if !errors.As(err, &re) || byte(re) != socks5.ConnectionRefused {
		t.Errorf("dial: %v, want reply 05", err)
	}
}

// TestProxy_WrongNetwork: a node whose v1 magic is another network's
// than --network is refused with a line that says so, not passed
// through as if it spoke v2.
func TestProxy_WrongNetwork(t *testing.T) {
	peer := nodetest.New(t, nodetest.Config{})
	proxy, logs := startProxy(t, Config{Network: v2core.Regtest})
	c := dialVia(t, proxy, peer.Addr())
	versionMsg, _ := v2core.AppendV1Message(nil, v2core.Mainnet, "version", []byte("v"))
	c.Write(versionMsg)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _ := c.Read(make([]byte, 1)); n != 0 {
		t.Error("the proxy passed a mainnet node through to a regtest proxy")
	}
	if !strings.Contains(logs.String(), "another network than --network") {
		t.Errorf("log:\n%s", logs.String())
	}
}
