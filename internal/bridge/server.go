package bridge

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bip324pt/bip324-pt/internal/bridgeauth"
	"github.com/bip324pt/bip324-pt/internal/stats"
	"github.com/bip324pt/bip324-pt/profiles"
	"github.com/bip324pt/bip324-pt/shaper"
	"github.com/bip324pt/bip324-pt/v2core"
)

// ServerConfig configures a bridge.
type ServerConfig struct {
	// Secret is the bridge's secret.
	Secret bridgeauth.Secret
	// Shape shapes the bridge's send direction after the handshake,
	// unless the client asks for an allowed profile. Nil means the zero
	// shaper.Shape. The handshake itself is always Bitcoin Core's
	// (uniform random garbage, no decoys, an empty version packet): the
	// bridge answers before it knows who is asking.
	Shape *shaper.Shape
	// Profile names Shape's profile, for the answer to a client that
	// asks for one outside Allowed. Empty means "none".
	Profile string
	// Allowed lists the built-in profiles a client may ask for. Empty
	// means every built-in. A request outside the list gets Shape.
	Allowed []string
	// Network is the Bitcoin network the bridge poses as a node of: its
	// v1 prefix and its key derivation. Zero means mainnet.
	Network v2core.Network
	// Node, if set, is a real Bitcoin node (HOST:PORT): every peer that
	// does not authenticate is relayed to it message by message (Relay),
	// so a prober meets a genuine node. Fallback is an older name for it.
	Node, Fallback string
	// ReplayFile keeps the replay set across restarts (ReplayPath of
	// the state directory); empty means in memory only.
	ReplayFile string
	// ProbeCloseMin and ProbeCloseMax bound when, counted from accept,
	// a connection that has not authenticated is closed, as Bitcoin Core
	// closes an unfinished or silent connection: zero means 60 s and
	// 61 s (Core: FIN 60-61 s after accept). With a node, its own timers
	// decide once it is relaying.
	ProbeCloseMin, ProbeCloseMax time.Duration
	// MaxPending bounds the connections that have not authenticated yet
	// (handshakes in progress and peers served as Bitcoin peers). When
	// it is reached, the oldest is closed to make room, as Core evicts:
	// new connections are always answered. Zero means 2048.
	MaxPending int
	// Now is the clock for the MAC's hour and the replay filter. Nil
	// means time.Now.
	Now func() time.Time
	// Logger receives one line per refused connection at debug level.
	Logger *slog.Logger
	// Dial reaches the node. Nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Seed, when not zero, fixes the shaping decisions of our direction
	// toward clients that send no seed of their own (an empty version
	// packet, as the bitcoin profile sends), as a client's seed does.
	// For measurements that must repeat (bip324-pt eval); a bridge in
	// service leaves it zero, so that each connection draws afresh.
	Seed [32]byte
	// Stats, if not nil, counts connections (accepted, authenticated,
	// refused by reason), handshakes, profiles and traffic.
	Stats *stats.Counters
}

// Server is a bridge: a Bitcoin Core node's BIP324 responder to everyone,
// and a shaped tunnel to its clients (the package doc draws the decision).
// Safe for concurrent use.
type Server struct {
	cfg      ServerConfig
	verifier *bridgeauth.Verifier
	policy   atomic.Pointer[policy] // the default profile and allow-list; Reload swaps it
	relay    *Relay                 // nil without a node
	keys     *v2core.KeyPool

	mu   sync.Mutex // guards rand
	rand *mrand.Rand

	pending pendingSet

	// Peers served as Bitcoin peers are dealt with by goroutines the
	// Server owns, so WrapConn returns at once; Close ends them. track
	// adds one under life, so that none starts once Close has begun.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	life   sync.Mutex
	closed bool
}

// policy is what a Server applies to clients' requests.
type policy struct {
	shape   *shaper.Shape // the default profile's
	profile string        // its name
	allowed map[string]bool
}

// allowList checks names (empty: every built-in) and returns the set.
func allowList(names []string) (map[string]bool, error) {
	allowed := make(map[string]bool)
	if len(names) == 0 {
		names = profiles.Builtins()
	}
	for _, n := range names {
		if _, ok := profiles.BuiltinSource(n); !ok {
			return nil, fmt.Errorf("bridge: allowed profile %q is not a built-in (built-ins: %v)", n, profiles.Builtins())
		}
		allowed[n] = true
	}
	return allowed, nil
}

// Reload applies a new default profile (a built-in or a file, read
// again) and allow-list (empty: every built-in) to connections from now
// on; connections open keep theirs. On error nothing changes.
func (s *Server) Reload(profile string, allow []string) error {
	if profile == "" {
		profile = "none"
	}
	allowed, err := allowList(allow)
	if err != nil {
		return err
	}
	forgetProfile(profile) // a file may have changed
	shape, _, err := compileProfile(profile)
	if err != nil {
		return err
	}
	s.policy.Store(&policy{shape: shape, profile: profile, allowed: allowed})
	return nil
}

// track registers a goroutine the Server owns, unless it is closing.
func (s *Server) track() bool {
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// keyPoolSize is how many ephemeral keys a bridge keeps ready: Core makes
// its key when it accepts a connection, before any byte arrives, and
// answers a first flight within about 0.1 ms (DESIGN.md); a key made
// only when the first byte is in would add the curve arithmetic, about
// 0.3 ms, to every reply. A burst of more accepts than this meets keys
// made on the spot.
const keyPoolSize = 64

// ErrRefused is returned by WrapConn for a connection that did not
// authenticate; the bridge has already dealt with it (closed it as Core
// would, or serves it as a Bitcoin peer).
var ErrRefused = errors.New("bridge: connection did not authenticate")

// NewServer returns a bridge.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.ProbeCloseMin == 0 {
		cfg.ProbeCloseMin = 60 * time.Second
	}
	if cfg.ProbeCloseMax == 0 {
		cfg.ProbeCloseMax = max(61*time.Second, cfg.ProbeCloseMin)
	}
	if cfg.ProbeCloseMax < cfg.ProbeCloseMin || cfg.ProbeCloseMin < 0 {
		return nil, fmt.Errorf("bridge: probe close window %v..%v is empty", cfg.ProbeCloseMin, cfg.ProbeCloseMax)
	}
	if cfg.Network == 0 {
		cfg.Network = v2core.Mainnet
	}
	if cfg.Node == "" {
		cfg.Node = cfg.Fallback
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 2048
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Dial == nil {
		d := net.Dialer{KeepAlive: -1}
		cfg.Dial = d.DialContext
	}
	allowed, err := allowList(cfg.Allowed)
	if err != nil {
		return nil, err
	}
	var seed [32]byte
	if _, err := io.ReadFull(cryptoRand, seed[:]); err != nil {
		return nil, err
	}
	// The verifier last: it may hold the replay file open.
	var v *bridgeauth.Verifier
	if cfg.ReplayFile != "" {
		v, err = OpenVerifier(cfg.ReplayFile, cfg.Secret, cfg.Logger)
	} else {
		v, err = bridgeauth.NewVerifier(cfg.Secret.Keys())
	}
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg, verifier: v,
		rand: mrand.New(mrand.NewChaCha8(seed)),
		ctx:  ctx, cancel: cancel,
	}
	s.policy.Store(&policy{shape: cfg.Shape, profile: cfg.Profile, allowed: allowed})
	s.pending.max = cfg.MaxPending
	s.keys = v2core.NewKeyPool(keyPoolSize, nil)
	if cfg.Node != "" {
		s.relay = &Relay{Node: cfg.Node, Network: cfg.Network, Dial: cfg.Dial, Logger: cfg.Logger}
	}
	return s, nil
}

// Close ends the peers served as Bitcoin peers, waits for them, and
// closes the replay file.
func (s *Server) Close() error {
	s.life.Lock()
	already := s.closed
	s.closed = true
	s.life.Unlock()
	if already {
		return nil
	}
	s.cancel()
	s.pending.closeAll()
	s.wg.Wait()
	s.keys.Close()
	return s.verifier.Close()
}

// closeDelay draws when, after accept, a connection that has not
// authenticated is closed: Core's 60-61 s.
func (s *Server) closeDelay() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.ProbeCloseMin + time.Duration(s.rand.Int64N(int64(s.cfg.ProbeCloseMax-s.cfg.ProbeCloseMin)+1))
}

// coreHandshake is the handshake every peer meets: Bitcoin Core's. Only
// the send direction after the handshake follows shape.
func coreHandshake(shape *shaper.Shape) *shaper.Shape {
	var sh shaper.Shape
	if shape != nil {
		sh = *shape
	}
	sh.GarbageLen, sh.Garbage, sh.HandshakeDecoys, sh.DecoySize, sh.FirstWriteSize = nil, nil, nil, nil, 0
	return &sh
}

// WrapConn runs the bridge's side of a connection it accepted: the BIP324
// handshake, as Core's responder, then authentication. For its client it
// returns the shaped stream. For anyone else it returns an error that
// wraps ErrRefused, having closed the connection as Core would or handed
// it to a goroutine the Server owns that serves it as a Bitcoin peer.
func (s *Server) WrapConn(ctx context.Context, raw net.Conn) (net.Conn, error) {
	s.life.Lock()
	closed := s.closed
	s.life.Unlock()
	if closed {
		raw.Close()
		return nil, fmt.Errorf("bridge: %w", net.ErrClosed)
	}
	accepted := time.Now()
	pol := s.policy.Load()
	st := s.cfg.Stats
	st.Accepted()
	deadline := accepted.Add(s.closeDelay())
	p := s.pending.add(raw)
	// A client that asked for a profile learns which one shapes our
	// direction; one that asked for nothing (an empty version packet,
	// as Core's) gets no answer, so its wire stays Core's.
	var applied string
	asked := false
	cfg := &shaper.Config{
		Shape:            coreHandshake(pol.shape),
		Network:          s.cfg.Network,
		KeyPool:          s.keys,
		HandshakeTimeout: max(time.Until(deadline), time.Millisecond),
		Admit: func(key *[v2core.EllswiftKeySize]byte, garbage []byte) error {
			flight := make([]byte, 0, len(key)+len(garbage))
			flight = append(append(flight, key[:]...), garbage...)
			return s.verifier.Verify(flight, s.cfg.Now())
		},
		Negotiate: func(v []byte) (*shaper.Shape, [32]byte, error) {
			next, seed, name, ok, err := s.negotiate(pol, v)
			applied, asked = name, ok
			return next, seed, err
		},
	}
	// With a node, it is dialed now, so that its timers run from this
	// accept as Core's own would; a client's connection to it is closed
	// unused.
	var node *nodeDial
	if s.relay != nil {
		node = s.dialNode()
	}
	sc := shaper.Server(raw, cfg)
	err := sc.HandshakeContext(ctx)
	var na *shaper.NotAdmittedError
	var v1 *v2core.V1Error
	switch {
	case err == nil:
		s.pending.remove(p)
		s.discard(node)
	case errors.As(err, &na):
		reason := stats.RefusedProbe
		if errors.Is(na.Err, bridgeauth.ErrReplay) {
			reason = stats.RefusedReplay
		}
		st.Refused(reason)
		s.background(p, raw, func() { defer st.Closed(); s.serveV2Peer(na.Conn, raw, node, deadline) })
		return nil, fmt.Errorf("%w: %v", ErrRefused, na.Err)
	case errors.As(err, &v1):
		st.Refused(stats.RefusedProbe)
		first := append(v1.Prefix[:], v1.Rest...)
		s.background(p, raw, func() { defer st.Closed(); s.serveV1Peer(raw, first, node, deadline) })
		return nil, fmt.Errorf("%w: a v1 peer", ErrRefused)
	default:
		// Closed already: at once on a protocol error, as Core does, or
		// at the deadline.
		st.Refused(stats.RefusedHandshake)
		st.Closed()
		s.pending.remove(p)
		s.discard(node)
		s.cfg.Logger.Debug("bridge: handshake ended", "err", err)
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	st.Handshake()
	st.Authenticated(applied)
	c := NewConn(sc, nil)
	c.countOn(st)
	if asked {
		if err := c.SendControl(recordApplied, appendApplied(nil, applied)); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// background runs serve on a goroutine the Server owns; p stays pending
// (and can be evicted) until serve returns.
func (s *Server) background(p *list.Element, raw net.Conn, serve func()) {
	if !s.track() {
		s.pending.remove(p)
		raw.Close()
		return
	}
	go func() {
		defer s.wg.Done()
		defer s.pending.remove(p)
		stop := context.AfterFunc(s.ctx, func() { raw.Close() })
		defer stop()
		serve()
	}()
}

// peerAddr is raw's remote address, for the node's view of the peer.
func peerAddr(raw net.Conn) netip.AddrPort {
	if a, ok := raw.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(raw.RemoteAddr().String())
	return ap
}

// nodeDial is a connection to the node being dialed.
type nodeDial struct {
	done chan struct{}
	conn net.Conn
	err  error
}

// dialNode starts dialing the node; the Server's Close ends the dial.
func (s *Server) dialNode() *nodeDial {
	d := &nodeDial{done: make(chan struct{})}
	if !s.track() {
		d.err = fmt.Errorf("bridge: %w", net.ErrClosed)
		close(d.done)
		return d
	}
	go func() {
		defer s.wg.Done()
		defer close(d.done)
		d.conn, d.err = s.relay.Connect(s.ctx)
		if d.err != nil {
			s.cfg.Logger.Warn("bridge: node unreachable", "node", s.cfg.Node, "err", d.err)
		}
	}()
	return d
}

// wait returns the node connection once dialed.
func (d *nodeDial) wait() (net.Conn, error) {
	<-d.done
	return d.conn, d.err
}

// discard closes the node connection, unused, once dialed; the Server
// owns the goroutine that waits for it.
func (s *Server) discard(d *nodeDial) {
	if d == nil {
		return
	}
	if !s.track() {
		// Close has begun: the dial ends with the Server's context.
		go func() {
			if c, err := d.wait(); err == nil {
				c.Close()
			}
		}()
		return
	}
	go func() {
		defer s.wg.Done()
		if c, err := d.wait(); err == nil {
			c.Close()
		}
	}()
}

// serveV2Peer serves a peer that completed the handshake without
// authenticating: relayed to the node, or silent until the deadline.
func (s *Server) serveV2Peer(vc *v2core.Conn, raw net.Conn, node *nodeDial, deadline time.Time) {
	if node != nil {
		nc, err := node.wait()
		if err != nil {
			// No node to meet: as silent as a node that got no message.
			silentUntil(raw, deadline)
			return
		}
		err = s.relay.ServeV2Conn(s.ctx, vc, nc, peerAddr(raw))
		s.cfg.Logger.Debug("bridge: relayed a peer that did not authenticate", "err", err)
		return
	}
	silentUntil(raw, deadline)
}

// serveV1Peer serves a peer that opened with our network's v1 prefix.
func (s *Server) serveV1Peer(raw net.Conn, first []byte, node *nodeDial, deadline time.Time) {
	if node != nil {
		nc, err := node.wait()
		if err != nil {
			silentUntil(raw, deadline)
			return
		}
		err = s.relay.ServeV1Conn(s.ctx, raw, first, nc, peerAddr(raw))
		s.cfg.Logger.Debug("bridge: relayed a v1 peer", "err", err)
		return
	}
	silentUntil(raw, deadline)
}

// silentUntil reads and drops what the peer sends, as a node that waits
// for a message it never gets, and closes at the deadline: Core's close
// of a peer that never completed its version handshake. A peer that
// closes first is closed at once.
func silentUntil(raw net.Conn, deadline time.Time) {
	defer raw.Close()
	raw.SetReadDeadline(deadline)
	io.Copy(io.Discard, raw)
}

// pendingSet holds the connections that have not authenticated, oldest
// first, and closes the oldest when a new one would exceed max.
type pendingSet struct {
	mu  sync.Mutex
	l   list.List
	max int
}

func (ps *pendingSet) add(c net.Conn) *list.Element {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for ps.l.Len() >= ps.max {
		oldest := ps.l.Front()
		ps.l.Remove(oldest)
		oldest.Value.(net.Conn).Close()
	}
	return ps.l.PushBack(c)
}

func (ps *pendingSet) remove(e *list.Element) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	// Removing an element already removed (evicted) does nothing.
	ps.l.Remove(e)
}

func (ps *pendingSet) closeAll() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for e := ps.l.Front(); e != nil; e = e.Next() {
		e.Value.(net.Conn).Close()
	}
}
