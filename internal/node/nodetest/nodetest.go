// Package nodetest runs a fake Bitcoin node on loopback for tests: it
// accepts BIP324 like Bitcoin Core (v1 too, when the peer opens with the v1
// prefix), answers version, verack and ping as Core does for an inbound
// peer, and records what it saw, the session id included. It can also play
// a node without v2 support, or one that never answers. StartBtcd runs a
// real btcd for interop tests.
package nodetest

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/bip324pt/bip324-pt/internal/node"
	"github.com/bip324pt/bip324-pt/v2core"
)

var errNotV1 = errors.New("nodetest: first bytes are not a v1 version message")

// Mode says how the fake node treats a connection.
type Mode int

const (
	// ModeV2 accepts v2, and v1 when the peer opens with the v1 prefix,
	// as Bitcoin Core 26 and later do.
	ModeV2 Mode = iota
	// ModeV1Only plays a node without v2 support: it closes, without
	// sending a byte, a connection whose first 16 bytes are not the v1
	// prefix of its network.
	ModeV1Only
	// ModeMute accepts, reads and never sends anything.
	ModeMute
)

// Defaults for [Config].
const (
	DefaultUserAgent   = "/Satoshi:28.1.0/"
	DefaultServices    = node.ServiceNetwork | node.ServiceWitness | node.ServiceNetworkLimited | node.ServiceP2PV2
	DefaultStartHeight = 870000
	DefaultConnTimeout = 10 * time.Second
)

// Config configures a fake node. The zero value is a v2-capable mainnet
// node that looks like Bitcoin Core 28.1.
type Config struct {
	// Network is the node's network. Zero means Mainnet.
	Network v2core.Network
	// Mode is how the node treats connections.
	Mode Mode
	// ResetOnReject makes ModeV1Only close with a TCP reset rather than
	// an orderly close (FIN, then draining until the peer hangs up).
	ResetOnReject bool
	// UserAgent, Services, StartHeight and Protocol fill the node's
	// version message. Zero values mean DefaultUserAgent,
	// DefaultServices, DefaultStartHeight and node.ProtocolVersion.
	UserAgent   string
	Services    node.Services
	StartHeight int32
	Protocol    int32
	// Chatter is how many extra messages (sendheaders) the node sends
	// between its version and its verack.
	Chatter int
	// ConnTimeout bounds each connection's life. Zero means
	// DefaultConnTimeout.
	ConnTimeout time.Duration
	// AddrRecvAlways puts the peer's address, as the node sees it, in
	// the addr_recv of its version message even when it is not routable
	// (a loopback peer, say), as btcd does. By default the node sends it
	// only for a routable peer and the zero address otherwise, as
	// Bitcoin Core does ([node.AddrRecvFor]).
	AddrRecvAlways bool
}

// ConnInfo is what the node saw on one connection.
type ConnInfo struct {
	// Rejected is set when a ModeV1Only node closed the connection
	// because it did not open with the v1 prefix.
	Rejected bool
	// V1 is set when the connection ran over v1.
	V1 bool
	// SessionID is the BIP324 session id the node computed, for v2.
	SessionID    [32]byte
	HasSessionID bool
	// PeerVersion is the peer's version message, once received.
	PeerVersion *node.Version
	// Commands lists the commands received, in order.
	Commands []string
	// Remote is the peer's address as the node sees it.
	Remote netip.AddrPort
	// SentVersion is the version message the node sent, once sent; its
	// AddrRecv is the node's view of the peer.
	SentVersion *node.Version
	// Ended is set once the node has closed the connection.
	Ended bool
	// Err is what ended the connection, if it ended.
	Err error
}

// Node is a running fake node. Its methods are safe for concurrent use.
type Node struct {
	cfg Config
	ln  net.Listener
	wg  sync.WaitGroup

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
	infos  []*ConnInfo
}

// Start starts a fake node listening on 127.0.0.1 on a free port.
func Start(cfg Config) (*Node, error) {
	if cfg.Network == 0 {
		cfg.Network = v2core.Mainnet
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = DefaultUserAgent
	}
	if cfg.Services == 0 {
		cfg.Services = DefaultServices
	}
	if cfg.StartHeight == 0 {
		cfg.StartHeight = DefaultStartHeight
	}
	if cfg.Protocol == 0 {
		cfg.Protocol = node.ProtocolVersion
	}
	if cfg.ConnTimeout == 0 {
		cfg.ConnTimeout = DefaultConnTimeout
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, ln: ln, conns: make(map[net.Conn]struct{})}
	n.wg.Add(1)
	go n.acceptLoop()
	return n, nil
}

// Addr returns the address the node listens on, HOST:PORT.
func (n *Node) Addr() string { return n.ln.Addr().String() }

// Conns returns a copy of what the node saw on each connection so far,
// in the order they were accepted.
func (n *Node) Conns() []ConnInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]ConnInfo, len(n.infos))
	for i, ci := range n.infos {
		out[i] = *ci
		out[i].Commands = append([]string(nil), ci.Commands...)
	}
	return out
}

// Close stops the node, closes every connection and waits for its
// goroutines to end.
func (n *Node) Close() error {
	n.mu.Lock()
	n.closed = true
	for c := range n.conns {
		c.Close()
	}
	n.mu.Unlock()
	err := n.ln.Close()
	n.wg.Wait()
	return err
}

// acceptLoop runs as a goroutine until the listener closes.
func (n *Node) acceptLoop() {
	defer n.wg.Done()
	for {
		c, err := n.ln.Accept()
		if err != nil {
			return
		}
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			c.Close()
			return
		}
		n.conns[c] = struct{}{}
		info := &ConnInfo{}
		if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			info.Remote = ta.AddrPort()
		}
		n.infos = append(n.infos, info)
		n.wg.Add(1)
		n.mu.Unlock()
		go n.serve(c, info)
	}
}

// update changes info under the node's lock.
func (n *Node) update(f func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	f()
}

// serve runs as a goroutine per connection.
func (n *Node) serve(c net.Conn, info *ConnInfo) {
	defer n.wg.Done()
	defer func() {
		n.mu.Lock()
		delete(n.conns, c)
		n.mu.Unlock()
		c.Close()
	}()
	c.SetDeadline(time.Now().Add(n.cfg.ConnTimeout))
	err := n.handle(c, info)
	c.Close()
	n.update(func() { info.Err, info.Ended = err, true })
}

func (n *Node) handle(c net.Conn, info *ConnInfo) error {
	var mc node.MessageConn
	switch n.cfg.Mode {
	case ModeMute:
		_, err := io.Copy(io.Discard, c)
		return err
	case ModeV1Only:
		var first [v2core.V1PrefixSize]byte
		if _, err := io.ReadFull(c, first[:]); err != nil {
			return err
		}
		if first != n.cfg.Network.V1Prefix() {
			n.update(func() { info.Rejected = true })
			if tc, ok := c.(*net.TCPConn); ok {
				if n.cfg.ResetOnReject {
					tc.SetLinger(0)
				} else {
					// An orderly close the peer sees as EOF: FIN
					// first, then drain until it hangs up, so no
					// unread byte turns the close into a reset.
					tc.CloseWrite()
					io.Copy(io.Discard, tc)
				}
			}
			return errNotV1
		}
		n.update(func() { info.V1 = true })
		mc = node.NewV1Conn(c, n.cfg.Network, first[:])
	default:
		vc := v2core.Server(c, &v2core.Config{Network: n.cfg.Network})
		err := vc.Handshake()
		var v1 *v2core.V1Error
		switch {
		case errors.As(err, &v1):
			// Carry on in v1 with every byte the handshake read.
			n.update(func() { info.V1 = true })
			mc = node.NewV1Conn(c, n.cfg.Network, append(v1.Prefix[:], v1.Rest...))
		case err != nil:
			return err
		default:
			id, _ := vc.SessionID()
			n.update(func() { info.SessionID, info.HasSessionID = id, true })
			mc = node.NewV2Conn(vc)
		}
	}
	return n.messages(mc, info)
}

// messages answers the peer like Bitcoin Core answers an inbound peer:
// on its version, our version, wtxidrelay, sendaddrv2 and verack; on its
// verack, sendcmpct, ping and feefilter; a pong for every ping.
func (n *Node) messages(mc node.MessageConn, info *ConnInfo) error {
	gotVersion := false
	for {
		cmd, payload, err := mc.ReadMessage()
		var dropped *node.DroppedMessageError
		if errors.As(err, &dropped) {
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		n.update(func() { info.Commands = append(info.Commands, cmd) })
		switch cmd {
		case node.CmdVersion:
			if gotVersion {
				continue
			}
			v, err := node.ParseVersion(payload)
			if err != nil {
				return err
			}
			gotVersion = true
			n.update(func() { info.PeerVersion = &v })
			if err := n.sendHandshake(mc, info, min(v.Protocol, n.cfg.Protocol)); err != nil {
				return err
			}
		case node.CmdVerack:
			if !gotVersion {
				continue
			}
			var cmpct [9]byte
			cmpct[1] = 2 // low bandwidth, compact blocks version 2
			if err := mc.WriteMessage(node.CmdSendCmpct, cmpct[:]); err != nil {
				return err
			}
			if err := mc.WriteMessage(node.CmdPing, node.AppendNonce(nil, randomNonce())); err != nil {
				return err
			}
			if err := mc.WriteMessage(node.CmdFeeFilter, binary.LittleEndian.AppendUint64(nil, 1000)); err != nil {
				return err
			}
		case node.CmdPing:
			nonce, err := node.ParseNonce(payload)
			if err != nil {
				continue
			}
			if err := mc.WriteMessage(node.CmdPong, node.AppendNonce(nil, nonce)); err != nil {
				return err
			}
		}
	}
}

func (n *Node) sendHandshake(mc node.MessageConn, info *ConnInfo, common int32) error {
	n.mu.Lock()
	remote := info.Remote
	n.mu.Unlock()
	addrRecv := node.AddrRecvFor(remote)
	if n.cfg.AddrRecvAlways {
		addrRecv = node.NetAddrFrom(remote, 0)
	}
	v := node.Version{
		Protocol:    n.cfg.Protocol,
		Services:    n.cfg.Services,
		Timestamp:   time.Now().Unix(),
		AddrRecv:    addrRecv,
		AddrFrom:    node.NetAddr{Services: n.cfg.Services},
		Nonce:       randomNonce(),
		UserAgent:   n.cfg.UserAgent,
		StartHeight: n.cfg.StartHeight,
		Relay:       true,
	}
	payload, err := node.AppendVersion(nil, &v)
	if err != nil {
		return err
	}
	n.update(func() { info.SentVersion = &v })
	if err := mc.WriteMessage(node.CmdVersion, payload); err != nil {
		return err
	}
	if common >= node.ProtocolVersion {
		if err := mc.WriteMessage(node.CmdWtxidRelay, nil); err != nil {
			return err
		}
		if err := mc.WriteMessage(node.CmdSendAddrV2, nil); err != nil {
			return err
		}
	}
	for range n.cfg.Chatter {
		if err := mc.WriteMessage("sendheaders", nil); err != nil {
			return err
		}
	}
	return mc.WriteMessage(node.CmdVerack, nil)
}

func randomNonce() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}
