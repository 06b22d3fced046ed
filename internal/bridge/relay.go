package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/bip324pt/bip324-pt/internal/node"
	"github.com/bip324pt/bip324-pt/v2core"
)

// Tunables of the relay. Everything else is the node's to decide.
const (
	// relayDialTimeout bounds the dial to the node, which sits next to
	// the bridge and answers at once or not at all.
	relayDialTimeout = 10 * time.Second
	// relayHalfCloseTimeout bounds how long the relay waits, after the
	// peer's FIN has been passed to the node, for the node to close in
	// turn. Bitcoin Core closes within its next socket-loop pass (about
	// 50 ms); the bound only reclaims a connection from a node that
	// never does.
	relayHalfCloseTimeout = 30 * time.Second
	// relayMaxKeptBuf is the largest write buffer a relay keeps between
	// messages: one that grew for a large message (a block, say) is
	// given back afterwards, so an idle relayed connection holds little.
	relayMaxKeptBuf = 256 << 10
)

// Relay serves peers that failed authentication by relaying them, message
// by message, to a real Bitcoin node, so that they meet the node itself:
// its version message, its timers, its closes.
//
// Toward the node the relay speaks v1 (plain TCP, each message a 24-byte
// header with magic, command, length and checksum, then the payload),
// whatever the peer speaks: v1 needs no handshake of its own, so every
// byte the node sends is an answer to the peer and the node's own timing
// (how long it takes to answer a version, when its 60 s and 20 min timers
// fire) reaches the peer unchanged but for a loopback round trip.
//
// Each message is decoded in full on one side (v1: magic, length at most
// Core's 4,000,000 bytes, checksum; v2: BIP324 packet and
// [v2core.ParseContents]), encoded for the other and written with one
// Write, as Bitcoin Core writes each message: the node's answer to a
// version (version, wtxidrelay, sendaddrv2, verack) leaves as four
// segments, never as one. Go's TCP connections have Nagle off
// (TCP_NODELAY), so one write is one segment when it fits.
//
// What the relay changes, and what it cannot hide:
//
//   - The node sees every relayed peer coming from the relay's address
//     (127.0.0.1 for a node on the same host). The one field that shows
//     this view to the peer is addr_recv of the node's version message;
//     the relay rewrites it to what the node would have put there for
//     the peer's real address (see [Relay.ServeV2]). addr_from is the
//     node's own (zero) address and the nonce, timestamp, user agent and
//     height are the node's, so they pass unchanged; so does the peer's
//     version, whose addr_recv is the peer's view of the bridge, as the
//     node would get it directly.
//   - Bitcoin Core advertises its own address to inbound peers in addr or
//     addrv2 messages (GetLocalAddrForPeer): its discovered or -externalip
//     address with its listening port, or the address the peer's version
//     says it sees. None of them is the loopback view, so they pass, but
//     the operator should give the node -externalip=<the bridge's
//     address> and make it listen on the bridge's port number, or the
//     announcement names another port than the one the peer reached.
//   - Inside the node, every relayed peer shares one netgroup and the
//     loopback address: they share Core's getaddr response cache (keyed by
//     the local socket), count as "localhost" for eviction protection and
//     against -maxconnections together. Point the relay at the node's
//     ordinary P2P port, not at an onion bind (127.0.0.1:8334 by default,
//     whose peers Core treats as Tor peers), and do not whitelist
//     127.0.0.1.
//   - Core's 60 s timer for the version handshake counts from the
//     connection's accept; the node's counts from the relay's dial, which
//     for ServeV2 comes after the bridge's BIP324 handshake, so a peer
//     that stalls after the handshake is cut that much later than by Core.
//
// Messages Bitcoin Core itself would drop without disconnecting are
// dropped here too, from either side: a v1 message with a bad checksum or
// an invalid command, v2 contents with an unknown short id or a bad long
// command, and a v2 message whose payload is longer than v1 can carry to
// the node (a short id and more than 4,000,000 bytes). A v1 message of
// another network or longer than 4,000,000 bytes, a v2 packet with a bad
// tag or a length over Core's limit, closes both sides at once, as Core
// closes the connection.
//
// Closes pass through: the node's close (FIN) closes the peer side, the
// node's reset resets it; the peer's close is passed to the node as a
// half-close, and the peer side is closed when the node closes in turn,
// at the node's moment; the peer's reset closes the node side.
//
// A Relay is safe for concurrent use; each call serves one peer. Its
// fields must not change while it serves. The zero value has no node and
// fails every call.
type Relay struct {
	// Node is the node's address, HOST:PORT.
	Node string
	// Network is the bridge's network: the magic of the v1 messages on
	// both v1 sides. Zero means Mainnet.
	Network v2core.Network
	// Dial connects to the node. Nil means a net.Dialer. The dial is
	// bounded to 10 s.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Logger gets one debug line per relayed connection when it ends,
	// with the messages relayed each way and dropped; what ended it is
	// the caller's to log. Nil means silent.
	Logger *slog.Logger
}

// ServeV2 relays a peer whose BIP324 handshake with the bridge is done (vc
// came from v2core.Server(...).HandshakeContext succeeding) to the node.
// peer is the peer's real address, which goes into addr_recv of the
// node's version message where the node put its own view of the relay:
// the node's addr_recv, when not zero, becomes peer (a node that shows
// every peer its address, as btcd does); a zero addr_recv, which is what
// Bitcoin Core sends for an unroutable address such as 127.0.0.1, becomes
// peer only if Core would count peer routable ([node.IsRoutable]). The
// services of the field are the node's.
//
// ServeV2 clears the deadlines of vc's inner conn, relays until either
// side closes or ctx is done, and returns nil after an orderly close by
// either side, else what ended the relay. It closes vc in every case,
// failure to reach the node included. It must not be mixed with other
// reads and writes on vc.
func (r *Relay) ServeV2(ctx context.Context, vc *v2core.Conn, peer netip.AddrPort) error {
	return r.serve(ctx, &v2End{vc: vc, raw: vc.NetConn()}, peer, nil)
}

// ServeV2Conn is ServeV2 over nodeConn, a connection to the node the
// caller dialed itself: a bridge dials the node when it accepts the peer,
// so the node's timers run from the peer's accept, as Core's would.
func (r *Relay) ServeV2Conn(ctx context.Context, vc *v2core.Conn, nodeConn net.Conn, peer netip.AddrPort) error {
	return r.serve(ctx, &v2End{vc: vc, raw: vc.NetConn()}, peer, nodeConn)
}

// ServeV1Conn is ServeV1 over nodeConn, as ServeV2Conn.
func (r *Relay) ServeV1Conn(ctx context.Context, raw net.Conn, first []byte, nodeConn net.Conn, peer netip.AddrPort) error {
	return r.serve(ctx, newV1End(raw, r.network(), first), peer, nodeConn)
}

// Connect dials the node, within the relay's dial timeout.
func (r *Relay) Connect(ctx context.Context) (net.Conn, error) {
	dial := r.Dial
	if dial == nil {
		d := net.Dialer{KeepAlive: -1}
		dial = d.DialContext
	}
	dctx, cancel := context.WithTimeout(ctx, relayDialTimeout)
	defer cancel()
	c, err := dial(dctx, "tcp", r.Node)
	if err != nil {
		return nil, fmt.Errorf("bridge: relay: dial node %s: %w", r.Node, err)
	}
	return c, nil
}

// ServeV1 relays a peer that opened with the 16-byte v1 prefix of the
// bridge's network to the node. first holds the bytes the bridge already
// read from raw (the prefix and whatever followed it); they are relayed
// first. peer and the rest are as for [Relay.ServeV2]; ServeV1 closes raw.
func (r *Relay) ServeV1(ctx context.Context, raw net.Conn, first []byte, peer netip.AddrPort) error {
	return r.serve(ctx, newV1End(raw, r.network(), first), peer, nil)
}

func (r *Relay) network() v2core.Network {
	if r.Network == 0 {
		return v2core.Mainnet
	}
	return r.Network
}

// relayEnd is one side of a relayed connection, as messages.
type relayEnd interface {
	// read returns the next message. A *node.DroppedMessageError
	// concerns that message alone; any other error is final.
	read() (cmd string, payload []byte, err error)
	// write sends one message with one write on the TCP conn. errDrop
	// means the message cannot be carried on this side and was not sent.
	write(cmd string, payload []byte) error
	// conn is the TCP connection, to close, half-close or reset.
	conn() net.Conn
}

// errDrop is a message that one side cannot carry.
var errDrop = errors.New("bridge: relay: message cannot be carried on v1")

type v2End struct {
	vc   *v2core.Conn
	raw  net.Conn
	hdr  [1 + v2core.CommandSize]byte
	wbuf []byte
}

func (e *v2End) conn() net.Conn { return e.raw }

func (e *v2End) read() (string, []byte, error) {
	contents, err := e.vc.ReadPacket()
	if err != nil {
		return "", nil, err
	}
	cmd, payload, err := v2core.ParseContents(contents)
	if err != nil {
		return "", nil, &node.DroppedMessageError{Err: err}
	}
	return cmd, payload, nil
}

func (e *v2End) write(cmd string, payload []byte) error {
	hdr, err := v2core.AppendMessage(e.hdr[:0], cmd, nil)
	if err != nil {
		return err
	}
	b, err := e.vc.AppendPacket(e.wbuf[:0], hdr, payload)
	if err != nil {
		return err
	}
	e.wbuf = keepBuf(b)
	_, err = e.raw.Write(b)
	return err
}

type v1End struct {
	mc      *node.V1Conn
	raw     net.Conn
	network v2core.Network
	wbuf    []byte
}

func newV1End(raw net.Conn, network v2core.Network, readAhead []byte) *v1End {
	return &v1End{mc: node.NewV1Conn(raw, network, readAhead), raw: raw, network: network}
}

func (e *v1End) conn() net.Conn { return e.raw }

func (e *v1End) read() (string, []byte, error) { return e.mc.ReadMessage() }

func (e *v1End) write(cmd string, payload []byte) error {
	if len(payload) > v2core.MaxV1PayloadLen {
		return errDrop
	}
	b, err := v2core.AppendV1Message(e.wbuf[:0], e.network, cmd, payload)
	if err != nil {
		return err
	}
	e.wbuf = keepBuf(b)
	_, err = e.raw.Write(b)
	return err
}

// keepBuf returns b for reuse, or nil when it grew too large to keep.
func keepBuf(b []byte) []byte {
	if cap(b) > relayMaxKeptBuf {
		return nil
	}
	return b
}

// pumpResult is how one direction of the relay ended.
type pumpResult struct {
	up bool // peer to node
	// readErr is set when reading the source failed, writeErr when
	// writing to the destination did.
	readErr, writeErr error
	msgs, dropped     int
}

// pump relays messages from src to dst until one fails. rewrite, if not
// nil, may change a message's payload in place before it is written.
func pump(src, dst relayEnd, up bool, rewrite func(cmd string, payload []byte)) (res pumpResult) {
	res.up = up
	for {
		cmd, payload, err := src.read()
		var dropped *node.DroppedMessageError
		if errors.As(err, &dropped) {
			res.dropped++
			continue
		}
		if err != nil {
			res.readErr = err
			return res
		}
		if rewrite != nil {
			rewrite(cmd, payload)
		}
		if err := dst.write(cmd, payload); err != nil {
			if errors.Is(err, errDrop) {
				res.dropped++
				continue
			}
			res.writeErr = err
			return res
		}
		res.msgs++
	}
}

// addrRecvRewriter returns the rewrite for the node's messages: the
// addr_recv of its first version message, as [Relay.ServeV2] says.
func addrRecvRewriter(peer netip.AddrPort) func(cmd string, payload []byte) {
	done := false
	return func(cmd string, payload []byte) {
		if done || cmd != node.CmdVersion {
			return
		}
		done = true
		got, ok := node.VersionAddrRecv(payload)
		if !ok {
			return
		}
		want := node.NetAddrFrom(peer, got.Services)
		if got.IP == ([16]byte{}) && got.Port == 0 {
			// Core hides an unroutable address; would it have shown
			// the peer's?
			want = node.AddrRecvFor(peer)
			want.Services = got.Services
		}
		node.SetVersionAddrRecv(payload, want)
	}
}

func (r *Relay) serve(ctx context.Context, pe relayEnd, peer netip.AddrPort, nraw net.Conn) error {
	praw := pe.conn()
	if r.Node == "" && nraw == nil {
		praw.Close()
		return errors.New("bridge: relay: no node address")
	}
	if nraw == nil {
		var err error
		if nraw, err = r.Connect(ctx); err != nil {
			praw.Close()
			return err
		}
	}
	// From here on the node's timers decide, not deadlines of ours.
	praw.SetDeadline(time.Time{})
	ne := newV1End(nraw, r.network(), nil)

	var closeOnce sync.Once
	closeBoth := func() {
		closeOnce.Do(func() {
			praw.Close()
			nraw.Close()
		})
	}
	stop := context.AfterFunc(ctx, closeBoth)

	done := make(chan pumpResult, 2)
	go func() { done <- pump(pe, ne, true, nil) }()
	go func() { done <- pump(ne, pe, false, addrRecvRewriter(peer)) }()

	first := <-done
	var timer *time.Timer
	ended := r.endFirst(first, praw, nraw, closeBoth)
	if !ended {
		// The peer's FIN went to the node; wait for the node's close.
		timer = time.AfterFunc(relayHalfCloseTimeout, closeBoth)
	}
	second := <-done
	if timer != nil {
		timer.Stop()
	}
	if !ended {
		r.endFirst(second, praw, nraw, closeBoth)
	}
	closeBoth()

	up, down := first, second
	if !first.up {
		up, down = second, first
	}
	err := relayErr(first, ended)
	if !stop() {
		err = fmt.Errorf("bridge: relay: %w", context.Cause(ctx))
	}
	if r.Logger != nil {
		r.Logger.Debug("bridge: relay ended", "peer", peer.String(), "node", r.Node,
			"to_node", up.msgs, "to_peer", down.msgs, "dropped", up.dropped+down.dropped)
	}
	return err
}

// endFirst acts on the end of one direction and reports whether the relay
// is over; false means the peer's close was passed to the node as a
// half-close and the relay waits for the node's close.
func (r *Relay) endFirst(res pumpResult, praw, nraw net.Conn, closeBoth func()) bool {
	switch {
	case !res.up && res.readErr != nil && isReset(res.readErr):
		// The node reset: reset the peer.
		resetConn(praw)
	case res.up && res.writeErr != nil && isReset(res.writeErr):
		resetConn(praw)
	case res.up && res.readErr != nil && (errors.Is(res.readErr, io.EOF) || errors.Is(res.readErr, io.ErrUnexpectedEOF)):
		// The peer's close: pass it on and let the node close at its
		// moment.
		if closeWrite(nraw) == nil {
			return false
		}
	}
	// Everything else closes both at once: the node's FIN (the peer's
	// close is then a FIN too, or a reset when unread bytes remain, as
	// Core's close is), a protocol error of either side, a peer that
	// went away.
	closeBoth()
	return true
}

// relayErr is what serve returns: nil after an orderly close by either
// side, else the error that ended the relay.
func relayErr(first pumpResult, ended bool) error {
	if !ended {
		return nil // the peer closed
	}
	err := first.readErr
	if err == nil {
		err = first.writeErr
	}
	if errors.Is(err, io.EOF) {
		return nil
	}
	side := "node"
	if first.up == (first.readErr != nil) {
		side = "peer"
	}
	return fmt.Errorf("bridge: relay: %s: %w", side, err)
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// tcpConn finds the *net.TCPConn under c, through NetConn methods (as
// crypto/tls.Conn and v2core.Conn have).
func tcpConn(c net.Conn) *net.TCPConn {
	for range 8 {
		switch x := c.(type) {
		case *net.TCPConn:
			return x
		case interface{ NetConn() net.Conn }:
			c = x.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// resetConn closes c with a TCP reset where it can, else plainly.
func resetConn(c net.Conn) {
	if tc := tcpConn(c); tc != nil {
		tc.SetLinger(0)
		tc.Close()
	}
	c.Close()
}

// closeWrite half-closes c: the other end reads EOF.
func closeWrite(c net.Conn) error {
	if tc := tcpConn(c); tc != nil {
		return tc.CloseWrite()
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
