// Package nodeproxy is "bip324-pt node proxy": a SOCKS5 proxy for a
// Bitcoin node (bitcoind's proxy=) that makes every outbound peer
// connection leave the machine as shaped BIP324.
//
// For each SOCKS CONNECT it reaches the destination first, answers the
// SOCKS request, then looks at the node's first bytes:
//
//	node speaks v1 (v2transport=0)  ─► we run the v2 handshake as initiator,
//	                                   shaped by the profile, and translate
//	                                   messages: v1 header and checksum ◄─►
//	                                   BIP324 short ids or 12-byte names
//	                                   peer closes our v2 attempt without a
//	                                   byte ─► redial, pass v1 through (not
//	                                   with V2Only), as Core retries
//	node speaks v2 itself           ─► bytes pass through; only how they are
//	                                   cut into writes is ours
//	destination named by a bridge   ─► an authenticated bip324-pt tunnel to
//	                                   the bridge, both directions shaped;
//	                                   the node's bytes ride inside
//	.onion / .i2p                   ─► to tor's SocksPort untouched, or the
//	                                   SOCKS reply "host unreachable"
//
// Toward an ordinary peer only our side is shaped (our first flight,
// garbage, decoys, the cutting and timing of our writes); the peer's
// side is its own. Through a bridge both sides are.
package nodeproxy

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bip324pt/bip324-pt/internal/bridge"
	"github.com/bip324pt/bip324-pt/internal/copyloop"
	"github.com/bip324pt/bip324-pt/internal/node"
	"github.com/bip324pt/bip324-pt/internal/socks5"
	"github.com/bip324pt/bip324-pt/shaper"
	"github.com/bip324pt/bip324-pt/v2core"
)

// Timeouts of a connection's setup.
const (
	socksTimeout     = 30 * time.Second // the SOCKS exchange
	dialTimeout      = 20 * time.Second // reaching the destination
	firstByteTimeout = 60 * time.Second // the node's first bytes after our reply
	handshakeTimeout = 30 * time.Second // our v2 handshake with the peer
)

// Bridge is a destination reached through a bip324-pt bridge.
type Bridge struct {
	// Addr is the bridge's HOST:PORT, which the node names as the
	// destination (its addnode=).
	Addr string
	// Client makes the authenticated tunnel.
	Client *bridge.ClientConfig
	// Line is the bridge line, for logs (scrubbed unless unsafe).
	Line string
}

// ParseBridge reads a bridge line: "HOST:PORT secret=... [profile=...]
// [seed=...] [network=...]", with or without a leading "Bridge bip324".
func ParseBridge(line string) (Bridge, error) {
	addr, args, err := bridge.ParseBridgeLine(line)
	if err != nil {
		return Bridge{}, err
	}
	cc, err := bridge.ClientFactory{}.NewClient(args)
	if err != nil {
		return Bridge{}, fmt.Errorf("bridge %s: %w", addr, err)
	}
	return Bridge{Addr: addr, Client: cc, Line: line}, nil
}

// Config configures a Proxy.
type Config struct {
	// Network is the node's network: the magic of its v1 messages.
	// Zero means mainnet.
	Network v2core.Network
	// Shape shapes our side toward ordinary peers (the profile).
	// Nil means no shaping beyond BIP324 itself.
	Shape *shaper.Shape
	// Profile names Shape, for logs.
	Profile string
	// Bridges are destinations reached through bip324-pt bridges.
	Bridges []Bridge
	// Tor is tor's SocksPort, HOST:PORT, for .onion and .i2p
	// destinations. Empty: those get "host unreachable".
	Tor string
	// V2Only refuses the v1 retry when a peer closes our v2 attempt.
	V2Only bool
	// Logger gets a line per connection. Nil means silent.
	Logger *slog.Logger
	// UnsafeLogging logs full addresses; otherwise they are scrubbed.
	UnsafeLogging bool
	// Dial reaches destinations and bridges. Nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Resolve looks up host names. Nil means net.DefaultResolver.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
}

// Proxy serves SOCKS5 connections from a node.
type Proxy struct {
	cfg     Config
	bridges map[string]Bridge
	wg      sync.WaitGroup
}

// New checks cfg and returns a Proxy.
func New(cfg Config) (*Proxy, error) {
	if cfg.Network == 0 {
		cfg.Network = v2core.Mainnet
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Profile == "" {
		cfg.Profile = "none"
	}
	if cfg.Dial == nil {
		d := &net.Dialer{KeepAlive: -1}
		cfg.Dial = d.DialContext
	}
	if cfg.Resolve == nil {
		cfg.Resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	if cfg.Tor != "" {
		if err := bridge.CheckHostPort(cfg.Tor); err != nil {
			return nil, fmt.Errorf("nodeproxy: tor: %w", err)
		}
	}
	p := &Proxy{cfg: cfg, bridges: map[string]Bridge{}}
	for _, b := range cfg.Bridges {
		key := normAddr(b.Addr)
		if _, dup := p.bridges[key]; dup {
			return nil, fmt.Errorf("nodeproxy: two bridge lines for %s", b.Addr)
		}
		p.bridges[key] = b
	}
	return p, nil
}

// normAddr puts HOST:PORT in one form: a lower-case host, an IP literal
// in its canonical form.
func normAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return strings.ToLower(addr)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.Unmap().String()
	}
	return net.JoinHostPort(strings.ToLower(strings.TrimSuffix(host, ".")), port)
}

// Serve accepts connections on ln until ctx is done or ln fails, serving
// each, and waits for them to end. It returns nil when ctx ended it.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var err error
	for {
		var c net.Conn
		c, err = ln.Accept()
		if err != nil {
			break
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(ctx, c)
		}()
	}
	p.wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// scrub hides an address unless logging is unsafe.
func (p *Proxy) scrub(addr string) string {
	if p.cfg.UnsafeLogging {
		return addr
	}
	return "[scrubbed]"
}

// serve runs one connection from the node.
func (p *Proxy) serve(ctx context.Context, c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(socksTimeout))
	req, err := socks5.ReadRequest(c)
	if err != nil {
		p.cfg.Logger.Debug("nodeproxy: bad SOCKS request", "err", err)
		return
	}
	c.SetDeadline(time.Time{})
	dest := req.Addr()
	log := p.cfg.Logger.With("peer", p.scrub(dest))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()

	host := strings.ToLower(strings.TrimSuffix(req.Host, "."))
	switch {
	case strings.HasSuffix(host, ".onion") || strings.HasSuffix(host, ".i2p"):
		p.serveTor(ctx, c, req, log)
	default:
		if b, ok := p.bridges[normAddr(dest)]; ok {
			p.serveBridge(ctx, c, b, log)
			return
		}
		p.servePeer(ctx, c, req, log)
	}
}

// reply answers the SOCKS request.
func reply(c net.Conn, code byte, conn net.Conn) {
	var bound netip.AddrPort
	if conn != nil {
		if ap, err := netip.ParseAddrPort(conn.LocalAddr().String()); err == nil {
			bound = ap
		}
	}
	c.SetWriteDeadline(time.Now().Add(socksTimeout))
	socks5.WriteReply(c, code, bound)
	c.SetWriteDeadline(time.Time{})
}

// serveTor passes a .onion or .i2p connection to tor untouched.
func (p *Proxy) serveTor(ctx context.Context, c net.Conn, req *socks5.Request, log *slog.Logger) {
	if p.cfg.Tor == "" {
		log.Warn("nodeproxy: refusing an onion or i2p destination: no --tor given")
		reply(c, socks5.HostUnreachable, nil)
		return
	}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	up, err := socks5.Dial(dctx, p.cfg.Tor, req.Host, req.Port, req.User, req.Pass)
	cancel()
	if err != nil {
		log.Warn("nodeproxy: tor could not connect", "err", err)
		reply(c, socks5.ReplyFor(err), nil)
		return
	}
	defer up.Close()
	reply(c, socks5.Succeeded, up)
	log.Info("nodeproxy: connection through tor", "transport", "tor")
	copyloop.Join(c, up)
}

// serveBridge carries the node's bytes through a tunnel to a bridge.
func (p *Proxy) serveBridge(ctx context.Context, c net.Conn, b Bridge, log *slog.Logger) {
	dctx, cancel := context.WithTimeout(ctx, dialTimeout+handshakeTimeout)
	defer cancel()
	raw, err := p.cfg.Dial(dctx, "tcp", b.Addr)
	if err != nil {
		log.Warn("nodeproxy: cannot reach the bridge", "err", err)
		reply(c, socks5.ReplyFor(err), nil)
		return
	}
	tc, err := b.Client.WrapConn(dctx, raw)
	if err != nil {
		raw.Close()
		log.Warn("nodeproxy: bridge handshake failed", "err", err)
		reply(c, socks5.GeneralFailure, nil)
		return
	}
	defer tc.Close()
	reply(c, socks5.Succeeded, raw)
	profile := b.Client.Request.Profile
	if profile == "" {
		profile = "(the bridge's default)"
	}
	attrs := []any{"transport", "bridge", "profile", profile}
	if bc, ok := tc.(*bridge.Conn); ok {
		if id, ok := bc.Shaper().SessionID(); ok {
			attrs = append(attrs, "session_id", hex.EncodeToString(id[:]))
		}
	}
	log.Info("nodeproxy: connection through a bridge", attrs...)
	up, down, err := copyloop.Join(c, tc)
	log.Debug("nodeproxy: bridge connection closed", "up", up, "down", down, "err", err)
}

// servePeer connects to an ordinary peer and serves the node's v1 or v2.
func (p *Proxy) servePeer(ctx context.Context, c net.Conn, req *socks5.Request, log *slog.Logger) {
	up, err := p.dialPeer(ctx, req)
	if err != nil {
		log.Warn("nodeproxy: cannot reach the peer", "err", err)
		reply(c, socks5.ReplyFor(err), nil)
		return
	}
	reply(c, socks5.Succeeded, up)
	// The node's first bytes say what it speaks: a v1 version message
	// starts with the network magic and "version"; anything else is its
	// v2 handshake (BIP324 makes sure a key never starts so).
	first := make([]byte, 16)
	c.SetReadDeadline(time.Now().Add(firstByteTimeout))
	n, err := io.ReadFull(c, first)
	c.SetReadDeadline(time.Time{})
	first = first[:n]
	if err != nil {
		up.Close()
		if n > 0 {
			log.Debug("nodeproxy: the node closed before 16 bytes", "err", err)
		}
		return
	}
	if bytes.Equal(first, v1Prefix(p.cfg.Network)) {
		p.serveV1(ctx, c, up, first, req, log)
		return
	}
	if bytes.Equal(first[4:], v1Prefix(p.cfg.Network)[4:]) {
		up.Close()
		log.Warn("nodeproxy: the node speaks v1 for another network than --network; closing", "magic", fmt.Sprintf("%x", first[:4]))
		return
	}
	p.serveV2Passthrough(c, up, first, log)
}

// v1Prefix is what a v1 version message starts with: the magic and the
// NUL-padded command.
func v1Prefix(n v2core.Network) []byte {
	b, _ := v2core.AppendV1Message(nil, n, "version", nil)
	return b[:16]
}

// dialPeer resolves (names are resolved here, not by the node) and dials
// the destination.
func (p *Proxy) dialPeer(ctx context.Context, req *socks5.Request) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	if ip, ok := req.IP(); ok {
		return p.cfg.Dial(dctx, "tcp", netip.AddrPortFrom(ip, req.Port).String())
	}
	ips, err := p.cfg.Resolve(dctx, req.Host)
	if err != nil {
		return nil, err
	}
	var last error = fmt.Errorf("nodeproxy: %s has no address", req.Host)
	for _, ip := range ips {
		c, err := p.cfg.Dial(dctx, "tcp", net.JoinHostPort(ip.Unmap().String(), strconv.Itoa(int(req.Port))))
		if err == nil {
			return c, nil
		}
		last = err
	}
	return nil, last
}

// serveV1 speaks shaped v2 to the peer for a node that speaks v1.
func (p *Proxy) serveV1(ctx context.Context, c, up net.Conn, first []byte, req *socks5.Request, log *slog.Logger) {
	sc := shaper.Client(up, &shaper.Config{Shape: p.cfg.Shape, Network: p.cfg.Network, HandshakeTimeout: handshakeTimeout})
	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	err := sc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		if sc.Stats().WireIn == 0 && ctx.Err() == nil {
			// The peer closed our v2 attempt without a byte: a v1-only
			// node. Core retries such a peer with v1.
			sc.Close()
			if p.cfg.V2Only {
				log.Info("nodeproxy: the peer refused v2; not retrying with v1 (--v2-only)", "err", err)
				return
			}
			p.serveV1Retry(ctx, c, first, req, log)
			return
		}
		sc.Close()
		log.Warn("nodeproxy: v2 handshake with the peer failed", "err", err)
		return
	}
	id, _ := sc.SessionID()
	log.Info("nodeproxy: connection", "transport", "v2", "session_id", hex.EncodeToString(id[:]), "profile", p.cfg.Profile)
	peer := node.NewShapedConn(sc)
	local := node.NewV1Conn(c, p.cfg.Network, first)
	res := translate(local, peer, log)
	log.Debug("nodeproxy: connection closed", "transport", "v2", "to_peer", res.up, "to_node", res.down, "dropped", res.dropped, "err", res.err)
}

// serveV1Retry redials the peer and passes the node's v1 through.
func (p *Proxy) serveV1Retry(ctx context.Context, c net.Conn, first []byte, req *socks5.Request, log *slog.Logger) {
	up, err := p.dialPeer(ctx, req)
	if err != nil {
		log.Warn("nodeproxy: the peer refused v2 and cannot be reached again for v1", "err", err)
		return
	}
	defer up.Close()
	log.Info("nodeproxy: connection", "transport", "v1", "reason", "the peer closed our v2 handshake without a byte; retried with v1, as Core does")
	if _, err := up.Write(first); err != nil {
		return
	}
	copyloop.Join(c, up)
}

// serveV2Passthrough passes a node's own v2 through, cutting our writes
// as the profile says; the handshake, garbage and decoys are the node's.
func (p *Proxy) serveV2Passthrough(c, up net.Conn, first []byte, log *slog.Logger) {
	defer up.Close()
	log.Info("nodeproxy: connection", "transport", "v2 (the node's own)",
		"advice", "the node speaks v2 itself, so its garbage and decoys are its own and only the cutting of writes is shaped; set v2transport=0 for full shaping")
	var w net.Conn = up
	if p.cfg.Shape != nil && p.cfg.Shape.WriteSize != nil {
		r := mrand.New(mrand.NewPCG(mrand.Uint64(), mrand.Uint64()))
		w = &cutConn{Conn: up, size: func() int { return p.cfg.Shape.WriteSize.Sample(r) }}
	}
	if _, err := w.Write(first); err != nil {
		return
	}
	copyloop.Join(c, w)
}

// translation counts what one translated connection carried.
type translation struct {
	up, down, dropped int64
	err               error
}

// translate carries messages both ways between the node (v1) and the
// peer (shaped v2) until either ends, then closes both: the peer's side
// after what is queued for it has gone.
func translate(local, peer node.MessageConn, log *slog.Logger) translation {
	var res translation
	var mu sync.Mutex
	done := make(chan error, 2)
	pump := func(src, dst node.MessageConn, n *int64) {
		for {
			cmd, payload, err := src.ReadMessage()
			var dme *node.DroppedMessageError
			if errors.As(err, &dme) {
				mu.Lock()
				res.dropped++
				mu.Unlock()
				log.Debug("nodeproxy: message dropped", "err", err)
				continue
			}
			if err != nil {
				done <- err
				return
			}
			if err := dst.WriteMessage(cmd, payload); err != nil {
				done <- err
				return
			}
			mu.Lock()
			*n++
			mu.Unlock()
		}
	}
	go pump(local, peer, &res.up)
	go pump(peer, local, &res.down)
	err := <-done
	var tooLong *v2core.V1PayloadTooLongError
	var magic *v2core.V1MagicError
	if errors.As(err, &tooLong) || errors.As(err, &magic) {
		log.Warn("nodeproxy: closing: a message Core would refuse", "err", err)
	}
	peer.Close() // delivers what is queued
	local.Close()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if !errors.Is(err, io.EOF) {
		res.err = err
	}
	return res
}

// cutConn cuts each write into pieces whose sizes size draws.
type cutConn struct {
	net.Conn
	size func() int
}

// CloseWrite passes a half close on, so that the copy loop's ends stay
// ends.
func (c *cutConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

func (c *cutConn) Write(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k := min(max(c.size(), 1), len(b)-n)
		m, err := c.Conn.Write(b[n : n+k])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
