package node_test

// node.Ping against btcd's independent BIP324 implementation
// (github.com/btcsuite/btcd/v2transport v1.1.0) as the responder: a minimal
// fake Bitcoin node on TCP loopback runs btcd's handshake and speaks
// Bitcoin messages in btcd's packets, with the contents (message type
// encoding and payload) built and parsed by v2core's message codec.
//
// TCP and not net.Pipe: btcd writes all it has before it reads (its
// responder sends key, garbage, terminator, decoys and version packet
// before it reads our terminator), and an unbuffered pipe would deadlock.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/bip324pt/bip324-pt/internal/node"
	"github.com/bip324pt/bip324-pt/internal/node/nodetest"
	"github.com/bip324pt/bip324-pt/v2core"
	"github.com/btcsuite/btcd/v2transport"
)

// btcdPingTimeout bounds every exchange with the fake, both ends.
const btcdPingTimeout = 10 * time.Second

// What the fake announces in its version message.
const (
	btcdFakeUserAgent = "/btcd-fake:0.25.0/"
	btcdFakeServices  = node.ServiceNetwork | node.ServiceWitness | node.ServiceP2PV2
	btcdFakeProtocol  = 70016
	btcdFakeHeight    = 123456
)

// btcdFakeConfig shapes the fake's side of the handshake and traffic.
type btcdFakeConfig struct {
	network v2core.Network
	garbage int
	// decoys are btcd's handshake decoys, before its version packet.
	decoys []int
	// msgDecoy, when positive, makes the fake send a decoy packet of this
	// many bytes before every message.
	msgDecoy int
}

// btcdFakeResult is what the fake saw on its one connection.
type btcdFakeResult struct {
	sessionID   []byte
	commands    []string
	peerVersion *node.Version
	// pingNonce is the nonce of the fake's own ping; pongNonce that of
	// the pong it got back, if any.
	pingNonce, pongNonce uint64
	gotPong              bool
	err                  error
}

type btcdFake struct {
	ln     net.Listener
	cancel context.CancelFunc
	done   chan btcdFakeResult
	res    *btcdFakeResult
}

// startBtcdFake listens on 127.0.0.1:0 and serves one connection with
// btcd's Peer as the responder. The test must call wait (directly or
// through the cleanup) to collect the goroutine.
func startBtcdFake(t *testing.T, cfg btcdFakeConfig) *btcdFake {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), btcdPingTimeout)
	f := &btcdFake{ln: ln, cancel: cancel, done: make(chan btcdFakeResult, 1)}
	go func() {
		f.done <- serveBtcdFake(ctx, ln, cfg)
	}()
	t.Cleanup(func() { f.stop(); f.wait() })
	return f
}

// stop makes the fake give up: it closes the listener and the connection.
func (f *btcdFake) stop() { f.cancel() }

// wait returns what the fake saw, once its goroutine has ended.
func (f *btcdFake) wait() btcdFakeResult {
	if f.res == nil {
		r := <-f.done
		f.res = &r
	}
	return *f.res
}

func (f *btcdFake) addr() string { return f.ln.Addr().String() }

// btcdNetwork converts our network to btcd's BitcoinNet: btcd keeps the
// magic as a little-endian integer of the wire bytes.
func btcdNetwork(n v2core.Network) v2transport.BitcoinNet {
	m := n.Magic()
	return v2transport.BitcoinNet(binary.LittleEndian.Uint32(m[:]))
}

// btcdPeerSessionID reads btcd's session id from the unexported field
// Peer.sessionID (v2transport has no accessor), read-only, by reflection.
func btcdPeerSessionID(p *v2transport.Peer) ([]byte, error) {
	f := reflect.ValueOf(p).Elem().FieldByName("sessionID")
	if !f.IsValid() || f.Kind() != reflect.Slice || f.Type().Elem().Kind() != reflect.Uint8 {
		return nil, errors.New("btcd's Peer has no sessionID []byte field any more; update btcdPeerSessionID")
	}
	return bytes.Clone(f.Bytes()), nil
}

// serveBtcdFake accepts one connection and answers like Bitcoin Core does
// for an inbound peer: on the peer's version, version, wtxidrelay,
// sendaddrv2 and verack; on its verack, a ping of ours; a pong for each of
// its pings. It runs until the peer closes, ctx ends or something fails.
func serveBtcdFake(ctx context.Context, ln net.Listener, cfg btcdFakeConfig) (res btcdFakeResult) {
	stopLn := context.AfterFunc(ctx, func() { ln.Close() })
	conn, err := ln.Accept()
	stopLn()
	ln.Close()
	if err != nil {
		res.err = fmt.Errorf("accept: %w", err)
		return res
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stopConn := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopConn()

	bnet := btcdNetwork(cfg.network)
	p := v2transport.NewPeer()
	p.UseReadWriter(conn)
	if err := p.RespondV2Handshake(cfg.garbage, bnet); err != nil {
		res.err = fmt.Errorf("RespondV2Handshake: %w", err)
		return res
	}
	if err := p.CompleteHandshake(false, cfg.decoys, bnet); err != nil {
		res.err = fmt.Errorf("CompleteHandshake: %w", err)
		return res
	}
	if res.sessionID, err = btcdPeerSessionID(p); err != nil {
		res.err = err
		return res
	}

	send := func(cmd string, payload []byte) error {
		if cfg.msgDecoy > 0 {
			if _, _, err := p.V2EncPacket(make([]byte, cfg.msgDecoy), nil, true); err != nil {
				return fmt.Errorf("V2EncPacket(decoy): %w", err)
			}
		}
		contents, err := v2core.AppendMessage(nil, cmd, payload)
		if err != nil {
			return err
		}
		if _, _, err := p.V2EncPacket(contents, nil, false); err != nil {
			return fmt.Errorf("V2EncPacket(%s): %w", cmd, err)
		}
		return nil
	}

	res.pingNonce = 0x0123456789abcdef
	for {
		contents, err := p.V2ReceivePacket(nil)
		if err != nil {
			// The peer hangs up once it has its pong.
			if !errors.Is(err, io.EOF) {
				res.err = fmt.Errorf("V2ReceivePacket: %w", err)
			}
			return res
		}
		cmd, payload, err := v2core.ParseContents(contents)
		if err != nil {
			res.err = fmt.Errorf("contents %x: %w", contents, err)
			return res
		}
		res.commands = append(res.commands, cmd)
		switch cmd {
		case node.CmdVersion:
			if res.peerVersion != nil {
				res.err = errors.New("second version message")
				return res
			}
			v, err := node.ParseVersion(payload)
			if err != nil {
				res.err = fmt.Errorf("peer's version: %w", err)
				return res
			}
			res.peerVersion = &v
			ours, err := node.AppendVersion(nil, &node.Version{
				Protocol:    btcdFakeProtocol,
				Services:    btcdFakeServices,
				Timestamp:   time.Now().Unix(),
				AddrFrom:    node.NetAddr{Services: btcdFakeServices},
				Nonce:       0xfeedfacecafebeef,
				UserAgent:   btcdFakeUserAgent,
				StartHeight: btcdFakeHeight,
				Relay:       true,
			})
			if err != nil {
				res.err = err
				return res
			}
			for _, m := range []struct {
				cmd     string
				payload []byte
			}{
				{node.CmdVersion, ours},
				{node.CmdWtxidRelay, nil},
				{node.CmdSendAddrV2, nil},
				{node.CmdVerack, nil},
			} {
				if err := send(m.cmd, m.payload); err != nil {
					res.err = err
					return res
				}
			}
		case node.CmdVerack:
			// As Core does after verack: a ping of its own, which the
			// peer must answer before it reads the pong to its ping.
			if err := send(node.CmdPing, node.AppendNonce(nil, res.pingNonce)); err != nil {
				res.err = err
				return res
			}
		case node.CmdPing:
			nonce, err := node.ParseNonce(payload)
			if err != nil {
				res.err = fmt.Errorf("peer's ping: %w", err)
				return res
			}
			if err := send(node.CmdPong, node.AppendNonce(nil, nonce)); err != nil {
				res.err = err
				return res
			}
		case node.CmdPong:
			if res.pongNonce, err = node.ParseNonce(payload); err != nil {
				res.err = fmt.Errorf("peer's pong: %w", err)
				return res
			}
			res.gotPong = true
		}
	}
}

// TestPing_Btcd runs node.Ping, as `bip324-pt node ping` does, against the
// btcd-based fake node and checks the result against what the fake sent
// and computed.
func TestPing_Btcd(t *testing.T) {
	cases := []struct {
		name string
		cfg  btcdFakeConfig
	}{
		{"mainnet/garbage=100", btcdFakeConfig{network: v2core.Mainnet, garbage: 100}},
		{"mainnet/garbage=100,decoys", btcdFakeConfig{
			network: v2core.Mainnet, garbage: 100,
			decoys: []int{0, 1, 300, 5000}, msgDecoy: 17,
		}},
		{"mainnet/garbage=0", btcdFakeConfig{network: v2core.Mainnet}},
		{"regtest/garbage=100", btcdFakeConfig{network: v2core.Regtest, garbage: 100}},
		{"regtest/garbage=4095,decoys", btcdFakeConfig{
			network: v2core.Regtest, garbage: v2core.MaxGarbageLen,
			decoys: []int{2, 0}, msgDecoy: 1,
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			nodetest.VerifyNoLeaks(t)
			fake := startBtcdFake(t, c.cfg)
			res, err := node.Ping(context.Background(), node.Options{
				Addr:    fake.addr(),
				Network: c.cfg.network,
				Timeout: btcdPingTimeout,
				V2Only:  true,
			})
			if err != nil {
				fake.stop()
			}
			got := fake.wait()
			if err != nil {
				t.Fatalf("Ping: %v (fake: %v)", err, got.err)
			}
			if got.err != nil {
				t.Fatalf("fake: %v", got.err)
			}

			if res.V1 {
				t.Error("Result.V1 is set")
			}
			if res.Addr != fake.addr() {
				t.Errorf("Result.Addr %q, want %q", res.Addr, fake.addr())
			}
			if res.RTT <= 0 || res.RTT > btcdPingTimeout {
				t.Errorf("RTT %v", res.RTT)
			}
			if res.SessionID == ([32]byte{}) {
				t.Error("zero session id")
			}
			if !bytes.Equal(res.SessionID[:], got.sessionID) {
				t.Errorf("session ids differ:\nours %x\nbtcd %x", res.SessionID, got.sessionID)
			}
			pv := res.Peer
			if pv.UserAgent != btcdFakeUserAgent || pv.Services != btcdFakeServices ||
				pv.Protocol != btcdFakeProtocol || pv.StartHeight != btcdFakeHeight ||
				pv.Nonce != 0xfeedfacecafebeef || !pv.Relay {
				t.Errorf("peer version %+v", pv)
			}

			// What btcd decrypted from us: our version as Core's
			// outbound side sends it, BIP339/BIP155 before verack, our
			// ping; and our pong to the fake's ping.
			ours := got.peerVersion
			if ours == nil {
				t.Fatal("fake got no version")
			}
			if ours.Protocol != node.ProtocolVersion || ours.UserAgent != node.DefaultUserAgent ||
				ours.Services != 0 || ours.Relay || ours.StartHeight != 0 || ours.AddrRecv != (node.NetAddr{}) {
				t.Errorf("our version %+v", ours)
			}
			want := []string{"version", "wtxidrelay", "sendaddrv2", "verack", "ping", "pong"}
			if !slices.Equal(got.commands, want) {
				t.Errorf("fake received %v, want %v", got.commands, want)
			}
			if !got.gotPong || got.pongNonce != got.pingNonce {
				t.Errorf("pong to the fake's ping: got %v nonce %#x, want %#x", got.gotPong, got.pongNonce, got.pingNonce)
			}
		})
	}
}

// TestPing_BtcdWrongNetwork shows the network takes part on both sides:
// btcd on regtest and Ping on mainnet derive different keys, so neither
// finds the other's garbage terminator and Ping times out in the
// handshake.
func TestPing_BtcdWrongNetwork(t *testing.T) {
	nodetest.VerifyNoLeaks(t)
	fake := startBtcdFake(t, btcdFakeConfig{network: v2core.Regtest, garbage: 100})
	const timeout = 500 * time.Millisecond
	res, err := node.Ping(context.Background(), node.Options{
		Addr:    fake.addr(),
		Network: v2core.Mainnet,
		Timeout: timeout,
		V2Only:  true,
	})
	fake.stop()
	got := fake.wait()
	if err == nil {
		t.Fatalf("Ping succeeded across networks: %+v", res)
	}
	var pe *node.PingError
	if !errors.As(err, &pe) || pe.Stage != node.StageHandshake {
		t.Fatalf("Ping: %v, want a failure in the %q stage", err, node.StageHandshake)
	}
	// Neither end finds the other's terminator: we time out, unless
	// btcd gives up first and resets the connection (it does so now and
	// then, depending on the garbage lengths drawn).
	var te *node.TimeoutError
	if !errors.As(err, &te) && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Ping: %v, want a *node.TimeoutError or a close", err)
	}
	var nt *node.NoTerminatorError
	if !errors.As(err, &nt) {
		t.Errorf("Ping: %v, want a *node.NoTerminatorError (the --network hint)", err)
	}
	if got.err == nil || got.commands != nil {
		t.Errorf("btcd's fake completed across networks: %+v", got)
	}
}
