package bridge

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/bip324pt/bip324-pt/eval/wiretap"
	"github.com/bip324pt/bip324-pt/internal/node"
	"github.com/bip324pt/bip324-pt/internal/node/nodetest"
	"github.com/bip324pt/bip324-pt/internal/testutil"
	"github.com/bip324pt/bip324-pt/v2core"
)

// relayTestTimeout bounds every read and wait of the relay tests.
const relayTestTimeout = 10 * time.Second

// relayRoutablePeer stands for a prober on the Internet: the tests hand it
// to the relay as the peer's real address, since a loopback prober's is
// one Bitcoin Core would not show.
var relayRoutablePeer = netip.MustParseAddrPort("8.8.4.4:39001")

// tapConn is a wiretap.Conn that also lets the relay reach the TCP conn
// (to reset or half-close it) through NetConn, as crypto/tls.Conn does.
type tapConn struct{ *wiretap.Conn }

func (c tapConn) NetConn() net.Conn { return c.Conn.Conn }

// relayHarness plays the bridge: it accepts one connection, taps the
// bridge's writes, runs v2core.Server's handshake and calls ServeV2, or,
// when the peer opens with the v1 prefix, ServeV1 with the bytes read.
type relayHarness struct {
	addr string
	rec  *wiretap.Recorder
	// hsWrites is the number of bridge writes before the relay started
	// (the BIP324 handshake's), ready once started is closed.
	hsWrites int
	started  chan struct{}
	done     chan error
	// peer is the address the relay was given for the peer.
	peer netip.AddrPort
}

// startRelay serves one connection with r. A valid peer overrides the
// peer's real (loopback) address.
func startRelay(t *testing.T, r *Relay, peer netip.AddrPort) *relayHarness {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &relayHarness{
		addr:    ln.Addr().String(),
		rec:     wiretap.New(time.Now(), 0),
		started: make(chan struct{}),
		done:    make(chan error, 1),
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(h.done)
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			close(h.started)
			h.done <- err
			return
		}
		h.peer = peer
		if !peer.IsValid() {
			h.peer = c.RemoteAddr().(*net.TCPAddr).AddrPort()
		}
		tc := tapConn{wiretap.Tap(c, h.rec, false)}
		vc := v2core.Server(tc, &v2core.Config{Network: r.network()})
		err = vc.HandshakeContext(ctx)
		h.hsWrites = len(h.rec.Events())
		close(h.started)
		var v1 *v2core.V1Error
		switch {
		case errors.As(err, &v1):
			h.done <- r.ServeV1(ctx, tc, append(v1.Prefix[:], v1.Rest...), h.peer)
		case err != nil:
			c.Close()
			h.done <- err
		default:
			h.done <- r.ServeV2(ctx, vc, h.peer)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		select {
		case <-h.done:
		case <-time.After(relayTestTimeout):
			t.Error("relay did not end; cancelling")
			cancel()
			<-h.done
		}
		cancel()
	})
	return h
}

// wait returns what the relay returned.
func (h *relayHarness) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-h.done:
		return err
	case <-time.After(relayTestTimeout):
		t.Fatal("relay did not end")
		return nil
	}
}

// relayWrites returns the sizes of the bridge's writes since the relay
// started, once there are at least n of them or a second has passed (the
// tap records a write after it returns, so the prober may read its bytes
// first).
func (h *relayHarness) relayWrites(n int) []int {
	<-h.started
	deadline := time.Now().Add(time.Second)
	for len(h.rec.Events())-h.hsWrites < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	var sizes []int
	for _, ev := range h.rec.Events()[h.hsWrites:] {
		sizes = append(sizes, ev.Size)
	}
	return sizes
}

// prober is a peer of the bridge: v2 (a BIP324 initiator) or v1.
type prober struct {
	raw net.Conn
	mc  node.MessageConn
	v2  bool
}

func dialProber(t *testing.T, addr string, network v2core.Network, v2 bool) *prober {
	t.Helper()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	raw.SetDeadline(time.Now().Add(relayTestTimeout))
	p := &prober{raw: raw, v2: v2}
	if !v2 {
		p.mc = node.NewV1Conn(raw, network, nil)
		return p
	}
	vc := v2core.Client(raw, &v2core.Config{Network: network})
	if err := vc.Handshake(); err != nil {
		t.Fatalf("prober's handshake: %v", err)
	}
	p.mc = node.NewV2Conn(vc)
	return p
}

const proberUserAgent = "/prober:0.1/"

// sendVersion sends a version message as a prober would.
func (p *prober) sendVersion(t *testing.T) {
	t.Helper()
	payload, err := node.AppendVersion(nil, &node.Version{
		Protocol:  node.ProtocolVersion,
		Timestamp: time.Now().Unix(),
		AddrRecv:  node.NetAddrFrom(p.raw.RemoteAddr().(*net.TCPAddr).AddrPort(), 0),
		Nonce:     0x1122334455667788,
		UserAgent: proberUserAgent,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.mc.WriteMessage(node.CmdVersion, payload); err != nil {
		t.Fatalf("send version: %v", err)
	}
}

type relayedMsg struct {
	cmd     string
	payload []byte
}

// wireSize is the size of m on the prober's transport.
func (p *prober) wireSize(m relayedMsg) int {
	if !p.v2 {
		return v2core.V1HeaderSize + len(m.payload)
	}
	hdr, _ := v2core.AppendMessage(nil, m.cmd, nil)
	return v2core.SealedLen(len(hdr) + len(m.payload))
}

// readUntil reads messages up to and including one with command last.
func (p *prober) readUntil(t *testing.T, last string) []relayedMsg {
	t.Helper()
	var got []relayedMsg
	for {
		cmd, payload, err := p.mc.ReadMessage()
		if err != nil {
			t.Fatalf("prober read after %d messages: %v", len(got), err)
		}
		got = append(got, relayedMsg{cmd, slices.Clone(payload)})
		if cmd == last {
			return got
		}
	}
}

// readEnd reads until the connection ends and returns the error.
func (p *prober) readEnd(t *testing.T) error {
	t.Helper()
	for {
		_, _, err := p.mc.ReadMessage()
		var dropped *node.DroppedMessageError
		if err != nil && !errors.As(err, &dropped) {
			return err
		}
	}
}

func commands(msgs []relayedMsg) []string {
	var cmds []string
	for _, m := range msgs {
		cmds = append(cmds, m.cmd)
	}
	return cmds
}

// checkHandshake checks the node's answer to the prober's version: the
// commands, one bridge write per message, and addr_recv's address and
// port (its services are the node's).
func checkHandshake(t *testing.T, h *relayHarness, p *prober, got []relayedMsg, wantCmds []string, wantAddrRecv node.NetAddr) node.Version {
	t.Helper()
	if !slices.Equal(commands(got), wantCmds) {
		t.Errorf("prober got %v, want %v", commands(got), wantCmds)
	}
	var want []int
	for _, m := range got {
		want = append(want, p.wireSize(m))
	}
	if writes := h.relayWrites(len(want)); !slices.Equal(writes, want) {
		t.Errorf("bridge writes %v, want one per message: %v", writes, want)
	}
	v, err := node.ParseVersion(got[0].payload)
	if err != nil {
		t.Fatalf("node's version: %v", err)
	}
	if v.AddrRecv.IP != wantAddrRecv.IP || v.AddrRecv.Port != wantAddrRecv.Port {
		t.Errorf("addr_recv %v (services %v), want %v (services %v)", v.AddrRecv.AddrPort(), v.AddrRecv.Services, wantAddrRecv.AddrPort(), wantAddrRecv.Services)
	}
	return v
}

var fakeNodeAnswer = []string{"version", "wtxidrelay", "sendaddrv2", "verack"}

// TestRelay_Serve relays a v2 and a v1 prober to the fake node: the node's
// answer to version comes back one message per write, with addr_recv as
// the node would have put it for the prober's real address.
func TestRelay_Serve(t *testing.T) {
	for _, v2 := range []bool{true, false} {
		name := "v1"
		if v2 {
			name = "v2"
		}
		cases := []struct {
			name string
			// always is nodetest's AddrRecvAlways (btcd's way).
			always bool
			peer   netip.AddrPort
			// want is addr_recv, from the peer the relay was given.
			want func(peer netip.AddrPort) node.NetAddr
		}{
			{"core/routable", false, relayRoutablePeer, func(p netip.AddrPort) node.NetAddr { return node.NetAddrFrom(p, 0) }},
			{"core/loopback", false, netip.AddrPort{}, func(netip.AddrPort) node.NetAddr { return node.NetAddr{} }},
			{"btcd-like/loopback", true, netip.AddrPort{}, func(p netip.AddrPort) node.NetAddr { return node.NetAddrFrom(p, 0) }},
		}
		for _, c := range cases {
			t.Run(name+"/"+c.name, func(t *testing.T) {
				testutil.VerifyNoLeaks(t)
				fake := nodetest.New(t, nodetest.Config{Network: v2core.Regtest, AddrRecvAlways: c.always})
				h := startRelay(t, &Relay{Node: fake.Addr(), Network: v2core.Regtest}, c.peer)
				p := dialProber(t, h.addr, v2core.Regtest, v2)
				p.sendVersion(t)
				got := p.readUntil(t, node.CmdVerack)
				v := checkHandshake(t, h, p, got, fakeNodeAnswer, c.want(h.peer))
				if v.AddrRecv.Services != 0 {
					t.Errorf("addr_recv services %v, want the node's (none)", v.AddrRecv.Services)
				}
				if v.UserAgent != nodetest.DefaultUserAgent {
					t.Errorf("user agent %q", v.UserAgent)
				}

				// The whole exchange goes on: verack, then the
				// node's sendcmpct, ping and feefilter; a ping of
				// ours gets its pong.
				if err := p.mc.WriteMessage(node.CmdVerack, nil); err != nil {
					t.Fatal(err)
				}
				p.readUntil(t, node.CmdFeeFilter)
				if err := p.mc.WriteMessage(node.CmdPing, node.AppendNonce(nil, 42)); err != nil {
					t.Fatal(err)
				}
				pong := p.readUntil(t, node.CmdPong)
				if n, _ := node.ParseNonce(pong[len(pong)-1].payload); n != 42 {
					t.Errorf("pong nonce %d", n)
				}
				p.raw.Close()
				if err := h.wait(t); err != nil {
					t.Errorf("relay: %v", err)
				}

				ci := []nodetest.ConnInfo{waitNodeEnded(t, fake)}
				if ci[0].V1 != true || ci[0].PeerVersion == nil || ci[0].PeerVersion.UserAgent != proberUserAgent {
					t.Errorf("node saw %+v", ci[0])
				}
				if wantNode := []string{"version", "verack", "ping"}; !slices.Equal(ci[0].Commands, wantNode) {
					t.Errorf("node got %v, want %v", ci[0].Commands, wantNode)
				}
				// The node's own view, which the relay rewrote.
				if sent := ci[0].SentVersion; sent == nil || (c.always && sent.AddrRecv.AddrPort() != ci[0].Remote) {
					t.Errorf("node's version %+v, node saw the relay at %v", sent, ci[0].Remote)
				}
			})
		}
	}
}

// TestRelay_NodeCloses: the node's close reaches the prober as a FIN (EOF
// with no reset), its reset as a reset.
func TestRelay_NodeCloses(t *testing.T) {
	for _, v2 := range []bool{true, false} {
		name := "v1"
		if v2 {
			name = "v2"
		}
		t.Run(name+"/fin", func(t *testing.T) {
			testutil.VerifyNoLeaks(t)
			// The fake node ends the connection after its timeout.
			fake := nodetest.New(t, nodetest.Config{Network: v2core.Regtest, ConnTimeout: 300 * time.Millisecond})
			h := startRelay(t, &Relay{Node: fake.Addr(), Network: v2core.Regtest}, netip.AddrPort{})
			p := dialProber(t, h.addr, v2core.Regtest, v2)
			p.sendVersion(t)
			p.readUntil(t, node.CmdVerack)
			if err := p.readEnd(t); !errors.Is(err, io.EOF) {
				t.Errorf("prober: %v, want EOF", err)
			}
			if err := h.wait(t); err != nil {
				t.Errorf("relay: %v", err)
			}
		})
		t.Run(name+"/reset", func(t *testing.T) {
			testutil.VerifyNoLeaks(t)
			// A node that resets once it has the version message.
			addr := rawNode(t, func(c net.Conn) {
				mc := node.NewV1Conn(c, v2core.Regtest, nil)
				mc.ReadMessage()
				c.(*net.TCPConn).SetLinger(0)
			})
			h := startRelay(t, &Relay{Node: addr, Network: v2core.Regtest}, netip.AddrPort{})
			p := dialProber(t, h.addr, v2core.Regtest, v2)
			p.sendVersion(t)
			if err := p.readEnd(t); !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("prober: %v, want a reset", err)
			}
			if err := h.wait(t); !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("relay: %v, want the node's reset", err)
			}
		})
	}
}

// rawNode runs serve on one connection to a listener on loopback and closes
// the connection after it; it returns the address.
func rawNode(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.SetDeadline(time.Now().Add(relayTestTimeout))
		serve(c)
		c.Close()
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// waitNodeEnded waits until the fake node has ended its one connection,
// and returns what it saw.
func waitNodeEnded(t *testing.T, fake *nodetest.Node) nodetest.ConnInfo {
	t.Helper()
	deadline := time.Now().Add(relayTestTimeout)
	for {
		ci := fake.Conns()
		if len(ci) > 1 {
			t.Fatalf("node saw %d connections", len(ci))
		}
		if len(ci) == 1 && ci[0].Ended {
			return ci[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("node's side still open: %+v", ci)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRelay_PeerCloses: the prober's FIN reaches the node, and the node's
// close in turn reaches the prober as a FIN.
func TestRelay_PeerCloses(t *testing.T) {
	for _, v2 := range []bool{true, false} {
		name := "v1"
		if v2 {
			name = "v2"
		}
		t.Run(name, func(t *testing.T) {
			testutil.VerifyNoLeaks(t)
			fake := nodetest.New(t, nodetest.Config{Network: v2core.Regtest})
			h := startRelay(t, &Relay{Node: fake.Addr(), Network: v2core.Regtest}, netip.AddrPort{})
			p := dialProber(t, h.addr, v2core.Regtest, v2)
			p.sendVersion(t)
			p.readUntil(t, node.CmdVerack)
			p.raw.(*net.TCPConn).CloseWrite()
			if err := p.readEnd(t); !errors.Is(err, io.EOF) {
				t.Errorf("prober: %v, want EOF", err)
			}
			if err := h.wait(t); err != nil {
				t.Errorf("relay: %v", err)
			}
			if ci := waitNodeEnded(t, fake); ci.Err != nil {
				t.Errorf("node: %+v, want an orderly end", ci)
			}
		})
	}
}

// TestRelay_BadMessages: what Bitcoin Core drops (a bad checksum, a bad
// command) is dropped and the connection goes on; what makes Core
// disconnect (another network's magic, a length over 4,000,000 bytes, a
// bad BIP324 tag) closes both sides.
func TestRelay_BadMessages(t *testing.T) {
	t.Run("v1/checksum", func(t *testing.T) {
		testutil.VerifyNoLeaks(t)
		fake := nodetest.New(t, nodetest.Config{Network: v2core.Regtest})
		h := startRelay(t, &Relay{Node: fake.Addr(), Network: v2core.Regtest}, netip.AddrPort{})
		p := dialProber(t, h.addr, v2core.Regtest, false)
		bad, _ := v2core.AppendV1Message(nil, v2core.Regtest, node.CmdVersion, []byte("not a version"))
		bad[20] ^= 0xff // the checksum
		badCmd, _ := v2core.AppendV1Message(nil, v2core.Regtest, "x", nil)
		badCmd[4+2] = 0x01 // a byte after the command's NUL padding
		if _, err := p.raw.Write(append(bad, badCmd...)); err != nil {
			t.Fatal(err)
		}
		p.sendVersion(t)
		p.readUntil(t, node.CmdVerack)
		p.raw.Close()
		if err := h.wait(t); err != nil {
			t.Errorf("relay: %v", err)
		}
		if ci := waitNodeEnded(t, fake); !slices.Equal(ci.Commands, []string{"version"}) {
			t.Errorf("node: %+v, want only the good version", ci)
		}
	})
	closing := []struct {
		name  string
		v2    bool
		bytes func(p *prober) []byte
	}{
		{"v1/oversize", false, func(*prober) []byte {
			b, _ := v2core.AppendV1Message(nil, v2core.Regtest, "tx", nil)
			b[16] = 0x01 // length 4,000,001: 0x003d0901
			b[17], b[18], b[19] = 0x09, 0x3d, 0x00
			return b
		}},
		{"v1/magic", false, func(*prober) []byte {
			b, _ := v2core.AppendV1Message(nil, v2core.Mainnet, node.CmdPing, node.AppendNonce(nil, 1))
			return b
		}},
		{"v2/tag", true, func(p *prober) []byte {
			contents, _ := v2core.AppendMessage(nil, node.CmdPing, node.AppendNonce(nil, 1))
			b, err := p.mc.(*node.V2Conn).Conn().AppendPacket(nil, contents)
			if err != nil {
				panic(err)
			}
			b[len(b)-1] ^= 1 // the tag
			return b
		}},
	}
	for _, c := range closing {
		t.Run(c.name, func(t *testing.T) {
			testutil.VerifyNoLeaks(t)
			fake := nodetest.New(t, nodetest.Config{Network: v2core.Regtest})
			h := startRelay(t, &Relay{Node: fake.Addr(), Network: v2core.Regtest}, netip.AddrPort{})
			p := dialProber(t, h.addr, v2core.Regtest, c.v2)
			p.sendVersion(t)
			p.readUntil(t, node.CmdVerack)
			if _, err := p.raw.Write(c.bytes(p)); err != nil {
				t.Fatal(err)
			}
			err := p.readEnd(t)
			if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("prober: %v, want the connection closed", err)
			}
			if err := h.wait(t); err == nil {
				t.Error("relay returned nil, want the peer's error")
			}
			if ci := waitNodeEnded(t, fake); !slices.Equal(ci.Commands, []string{"version"}) {
				t.Errorf("node got %v", ci.Commands)
			}
		})
	}
}

// TestRelay_NoNode: a node that cannot be reached fails the call, which
// closes the peer.
func TestRelay_NoNode(t *testing.T) {
	testutil.VerifyNoLeaks(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	h := startRelay(t, &Relay{Node: dead, Network: v2core.Regtest}, netip.AddrPort{})
	p := dialProber(t, h.addr, v2core.Regtest, true)
	if err := h.wait(t); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("relay: %v, want connection refused", err)
	}
	if err := p.readEnd(t); !errors.Is(err, io.EOF) {
		t.Errorf("prober: %v, want EOF", err)
	}
}

// TestRelay_Cancel: cancelling the context ends the relay and closes both
// sides.
func TestRelay_Cancel(t *testing.T) {
	testutil.VerifyNoLeaks(t)
	fake := nodetest.New(t, nodetest.Config{Network: v2core.Regtest})
	client, server := testutil.TCPPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	r := &Relay{Node: fake.Addr(), Network: v2core.Regtest}
	go func() { done <- r.ServeV1(ctx, server, nil, netip.AddrPort{}) }()
	p := &prober{raw: client, mc: node.NewV1Conn(client, v2core.Regtest, nil)}
	client.SetDeadline(time.Now().Add(relayTestTimeout))
	p.sendVersion(t)
	p.readUntil(t, node.CmdVerack)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("relay: %v, want context.Canceled", err)
	}
	if err := p.readEnd(t); !errors.Is(err, io.EOF) {
		t.Errorf("prober: %v, want EOF", err)
	}
}

// TestRelay_Btcd relays probers to btcd 0.25.0 as a real, independent
// node (regtest, --v2transport), over v1 as always. btcd puts the address
// it sees (the relay's, on loopback) in addr_recv; the prober gets its own.
func TestRelay_Btcd(t *testing.T) {
	b := nodetest.StartBtcd(t, nodetest.BtcdConfig{})
	t.Logf("%s on %s", b.Version, b.Addr)
	for _, v2 := range []bool{true, false} {
		name := "v1"
		if v2 {
			name = "v2"
		}
		t.Run(name, func(t *testing.T) {
			testutil.VerifyNoLeaks(t)
			h := startRelay(t, &Relay{Node: b.Addr, Network: b.Network}, netip.AddrPort{})
			p := dialProber(t, h.addr, b.Network, v2)
			p.sendVersion(t)
			got := p.readUntil(t, node.CmdVerack)
			// btcd's answer: version, then BIP339 and BIP155
			// (sendaddrv2 and wtxidrelay, whose order it picks), then
			// verack.
			cmds := commands(got)
			if len(cmds) < 2 || cmds[0] != node.CmdVersion || cmds[len(cmds)-1] != node.CmdVerack {
				t.Fatalf("btcd answered %v", cmds)
			}
			v := checkHandshake(t, h, p, got, cmds, node.NetAddrFrom(h.peer, 0))
			t.Logf("btcd answered %v; its version: protocol %d, services %v, user agent %q, height %d, relay %v, addr_recv %v (services %v), addr_from %v (services %v)",
				cmds, v.Protocol, v.Services, node.SanitizeString(v.UserAgent), v.StartHeight, v.Relay,
				v.AddrRecv.AddrPort(), v.AddrRecv.Services, v.AddrFrom.AddrPort(), v.AddrFrom.Services)
			if v.Services&node.ServiceP2PV2 == 0 {
				t.Errorf("btcd --v2transport without NODE_P2P_V2: %v", v.Services)
			}

			// Finish the handshake and ping: the pong comes back.
			if err := p.mc.WriteMessage(node.CmdVerack, nil); err != nil {
				t.Fatal(err)
			}
			if err := p.mc.WriteMessage(node.CmdPing, node.AppendNonce(nil, 7)); err != nil {
				t.Fatal(err)
			}
			pong := p.readUntil(t, node.CmdPong)
			t.Logf("then: %v", commands(pong))
			if n, _ := node.ParseNonce(pong[len(pong)-1].payload); n != 7 {
				t.Errorf("pong nonce %d", n)
			}

			// The prober's FIN reaches btcd, which closes in turn.
			p.raw.(*net.TCPConn).CloseWrite()
			if err := p.readEnd(t); !errors.Is(err, io.EOF) {
				t.Errorf("prober: %v, want EOF", err)
			}
			if err := h.wait(t); err != nil {
				t.Errorf("relay: %v", err)
			}
		})
	}
}
