package bridge

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/bip324pt/bip324-pt/internal/bridgeauth"
	"github.com/bip324pt/bip324-pt/internal/copyloop"
	"github.com/bip324pt/bip324-pt/profiles"
	"github.com/bip324pt/bip324-pt/shaper"
	"github.com/bip324pt/bip324-pt/v2core"
)

// maxMarkEnd is where the mark and MAC must end at the latest, counted
// from the start of the flight: one full TCP segment on a 1500-byte path
// (1448 bytes), so the bridge finds them in its first read.
const maxMarkEnd = 1448

// ClientConfig configures a bridge client.
type ClientConfig struct {
	// Secret is the bridge's secret from the bridge line.
	Secret bridgeauth.Secret
	// Shape shapes our send direction and our handshake (garbage length
	// and filler). Nil means the zero shaper.Shape.
	Shape *shaper.Shape
	// Seed fixes our shaping decisions; zero means a fresh one. The
	// bridge's direction follows Request.Seed.
	Seed [32]byte
	// Request is what we ask the bridge to shape its direction with.
	Request Request
	// Now is the clock for the MAC's hour. Nil means time.Now.
	Now func() time.Time
	// Logger gets a warning when the bridge applies another profile
	// than the one asked for. Nil means silent.
	Logger *slog.Logger
}

// ErrNoAnswer is wrapped by Client's error when the bridge sent no byte
// back: it refused the first flight, as it refuses a prober's.
var ErrNoAnswer = errors.New("bridge: the bridge did not answer (no byte back); a wrong secret= or a wrong address are the usual causes")

// Client runs the client handshake over raw, a connection to the bridge,
// and returns the stream.
func Client(ctx context.Context, raw net.Conn, cc *ClientConfig) (*Conn, error) {
	now := cc.Now
	if now == nil {
		now = time.Now
	}
	log := cc.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	keys := cc.Secret.Keys()
	cfg := &shaper.Config{
		Shape:           cc.Shape,
		Seed:            cc.Seed,
		VersionContents: cc.Request.Marshal(),
		// The mark and the MAC need room in the garbage.
		GarbageMin: bridgeauth.Overhead,
		MarkGarbage: func(g []byte, key *[v2core.EllswiftKeySize]byte, r *mrand.Rand) {
			// P || mark || mac || Q, with P and Q the shape's filler
			// and the mark within the first segment of the flight.
			n := len(g)
			off := r.IntN(min(n-bridgeauth.Overhead, maxMarkEnd-v2core.EllswiftKeySize-bridgeauth.Overhead) + 1)
			pq := append([]byte(nil), g[:n-bridgeauth.Overhead]...)
			keys.AppendGarbage(g[:0], key, pq[:off], pq[off:], now())
		},
	}
	if cfg.Shape != nil && cfg.Shape.FirstWriteSize != 0 {
		// The key, the mark and the MAC go in one write.
		shape := *cfg.Shape
		shape.FirstWriteSize = 0
		cfg.Shape = &shape
	}
	sc := shaper.Client(raw, cfg)
	c := NewConn(sc, func(rec byte, body []byte) error {
		if rec != recordApplied {
			// A later version's record: nothing we must act on.
			log.Debug("bridge: ignoring a control record this version does not know", "type", rec)
			return nil
		}
		applied, err := parseApplied(body)
		if err != nil {
			return err
		}
		if applied != cc.Request.Profile {
			log.Warn("bridge: the bridge shapes its direction with another profile than the one asked for (not in its allow-list)",
				"asked", cc.Request.Profile, "applied", applied)
		}
		return nil
	})
	if err := sc.HandshakeContext(ctx); err != nil {
		if sc.Stats().WireIn == 0 {
			return nil, fmt.Errorf("%w: %w", ErrNoAnswer, err)
		}
		return nil, fmt.Errorf("bridge: client handshake: %w", err)
	}
	return c, nil
}

// ServerConfig configures a bridge.
type ServerConfig struct {
	// Secret is the bridge's secret.
	Secret bridgeauth.Secret
	// Shape shapes the bridge's handshake and, unless the client asks
	// for an allowed profile, its send direction. Nil means the zero
	// shaper.Shape.
	Shape *shaper.Shape
	// Profile names Shape's profile, for the answer to a client that
	// asks for one outside Allowed. Empty means "none".
	Profile string
	// Allowed lists the built-in profiles a client may ask for. Empty
	// means every built-in. A request outside the list gets Shaping.
	Allowed []string
	// Fallback, if set, is a real Bitcoin node (HOST:PORT) that gets
	// every connection that fails authentication, with the bytes already
	// read, so a prober meets a genuine node.
	Fallback string
	// ProbeCloseMin and ProbeCloseMax bound the random delay after which a
	// refused connection is closed when there is no fallback. Zero means
	// 10s and 60s.
	ProbeCloseMin, ProbeCloseMax time.Duration
	// FirstReadTimeout is how long the bridge waits for the first bytes.
	// Zero means 60s, when Bitcoin Core closes an unfinished handshake.
	FirstReadTimeout time.Duration
	// Now is the clock for the MAC's hour and the replay filter. Nil means
	// time.Now.
	Now func() time.Time
	// Logger receives one line per refused connection at debug level.
	Logger *slog.Logger
	// Dial reaches the fallback. Nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// MaxRefused bounds the refused connections being drained or handed
	// over at once; beyond it, a refused connection is closed at once.
	// Zero means 1024.
	MaxRefused int
}

// Server is a bridge. Safe for concurrent use.
type Server struct {
	cfg      ServerConfig
	verifier *bridgeauth.Verifier
	allowed  map[string]bool
	mu       sync.Mutex // guards rand
	rand     *mrand.Rand

	// Refused connections are dealt with by goroutines the Server owns,
	// so WrapConn returns at once; Close ends them.
	refusing chan struct{} // semaphore
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// ErrRefused is returned by WrapConn for a connection that failed
// authentication; the bridge has already dealt with it (drained and
// closed it, or handed it to the fallback).
var ErrRefused = errors.New("bridge: connection refused authentication")

// NewServer returns a bridge.
func NewServer(cfg ServerConfig) (*Server, error) {
	v, err := bridgeauth.NewVerifier(cfg.Secret.Keys())
	if err != nil {
		return nil, err
	}
	if cfg.ProbeCloseMin == 0 {
		cfg.ProbeCloseMin = 10 * time.Second
	}
	if cfg.ProbeCloseMax == 0 {
		cfg.ProbeCloseMax = 60 * time.Second
	}
	if cfg.ProbeCloseMax < cfg.ProbeCloseMin {
		return nil, fmt.Errorf("bridge: probe close window %v..%v is empty", cfg.ProbeCloseMin, cfg.ProbeCloseMax)
	}
	if cfg.FirstReadTimeout == 0 {
		cfg.FirstReadTimeout = 60 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Dial == nil {
		var d net.Dialer
		cfg.Dial = d.DialContext
	}
	allowed := make(map[string]bool)
	names := cfg.Allowed
	if len(names) == 0 {
		names = profiles.Builtins()
	}
	for _, n := range names {
		if _, ok := profiles.BuiltinSource(n); !ok {
			return nil, fmt.Errorf("bridge: allowed profile %q is not a built-in (built-ins: %v)", n, profiles.Builtins())
		}
		allowed[n] = true
	}
	var seed [32]byte
	if _, err := io.ReadFull(cryptoRand, seed[:]); err != nil {
		return nil, err
	}
	if cfg.MaxRefused <= 0 {
		cfg.MaxRefused = 1024
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg: cfg, verifier: v, allowed: allowed,
		rand:     mrand.New(mrand.NewChaCha8(seed)),
		refusing: make(chan struct{}, cfg.MaxRefused),
		ctx:      ctx, cancel: cancel,
	}, nil
}

// Close ends the drains and handovers in progress and waits for them.
func (s *Server) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

// WrapConn authenticates a connection accepted by the bridge and runs the
// BIP324 handshake on it. A connection that fails authentication never
// gets a byte from the bridge; WrapConn deals with it and returns an error
// that wraps ErrRefused.
func (s *Server) WrapConn(ctx context.Context, raw net.Conn) (net.Conn, error) {
	start := s.cfg.Now()
	raw.SetReadDeadline(time.Now().Add(s.cfg.FirstReadTimeout))
	buf := make([]byte, v2core.EllswiftKeySize+v2core.MaxGarbageLen+v2core.GarbageTerminatorSize)
	n, err := raw.Read(buf)
	first := buf[:n]
	if n == 0 {
		raw.Close()
		return nil, fmt.Errorf("%w: no bytes before %v (%v)", ErrRefused, s.cfg.FirstReadTimeout, err)
	}
	if verr := s.verifier.Verify(first, start); verr != nil {
		// Deal with it in the background, so a prober's session with
		// the fallback or a long drain holds no handshake slot and no
		// caller's deadline applies to it.
		select {
		case s.refusing <- struct{}{}:
		default:
			raw.Close()
			return nil, fmt.Errorf("%w: %v (too many refused connections; closed at once)", ErrRefused, verr)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-s.refusing }()
			s.refuse(s.ctx, raw, first, verr)
		}()
		return nil, fmt.Errorf("%w: %v", ErrRefused, verr)
	}
	raw.SetReadDeadline(time.Time{})
	// A client that asked for a profile learns which one shapes our
	// direction; one that asked for nothing (an empty version packet,
	// as Core's) gets no answer, so its wire stays Core's.
	var applied string
	asked := false
	cfg := &shaper.Config{
		Shape: s.cfg.Shape,
		Negotiate: func(v []byte) (*shaper.Shape, [32]byte, error) {
			next, seed, name, ok, err := s.negotiate(v)
			applied, asked = name, ok
			return next, seed, err
		},
	}
	sc := shaper.Server(&prefixConn{Conn: raw, prefix: first}, cfg)
	if err := sc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("bridge: server handshake: %w", err)
	}
	c := NewConn(sc, nil)
	if asked {
		if err := c.SendControl(recordApplied, appendApplied(nil, applied)); err != nil {
			sc.Close()
			return nil, err
		}
	}
	return c, nil
}

// negotiate applies the client's request within the allow-list. It
// returns the Shape of our direction (nil: the default) and its seed,
// the name of the profile applied, and whether the client asked for one.
func (s *Server) negotiate(v []byte) (*shaper.Shape, [32]byte, string, bool, error) {
	def := s.cfg.Profile
	if def == "" {
		def = "none"
	}
	req, err := ParseRequest(v)
	if err != nil {
		s.cfg.Logger.Debug("bridge: no usable request; using the default profile", "err", err)
		return nil, [32]byte{}, def, false, nil
	}
	seed := directionSeed(req.Seed)
	if req.Profile == "" || !s.allowed[req.Profile] {
		s.cfg.Logger.Info("bridge: client asked for a profile outside the allow-list; using the default", "profile", req.Profile, "default", def)
		return nil, seed, def, true, nil
	}
	shape, err := s.shape(req.Profile)
	if err != nil {
		return nil, seed, "", true, err
	}
	return shape, seed, req.Profile, true, nil
}

// shape returns the compiled Shape of an allowed profile, compiled once
// per process.
func (s *Server) shape(name string) (*shaper.Shape, error) {
	sh, _, err := compileProfile(name)
	return sh, err
}

// directionSeed is the seed of the bridge's direction for a client's
// seed: fixed by it, but not the same stream of decisions as the
// client's own direction. Zero stays zero (a fresh seed).
func directionSeed(client [32]byte) [32]byte {
	if client == ([32]byte{}) {
		return client
	}
	return sha256.Sum256(append([]byte("bip324-pt/1 bridge direction "), client[:]...))
}

// refuse handles a connection that failed authentication: to the
// fallback, whole, or drained and closed after a random delay.
func (s *Server) refuse(ctx context.Context, raw net.Conn, first []byte, why error) {
	log := s.cfg.Logger.With("remote", raw.RemoteAddr().String(), "why", why.Error(), "first_read", len(first))
	if s.cfg.Fallback != "" {
		log.Debug("bridge: refused; handing over to the fallback")
		s.handOver(ctx, raw, first)
		return
	}
	s.mu.Lock()
	delay := s.cfg.ProbeCloseMin + time.Duration(s.rand.Int64N(int64(s.cfg.ProbeCloseMax-s.cfg.ProbeCloseMin)+1))
	limit := 4175 + s.rand.IntN(16384-4175+1)
	s.mu.Unlock()
	log.Debug("bridge: refused; draining", "close_after", delay, "byte_limit", limit)
	drain(ctx, raw, len(first), limit, time.Now().Add(delay))
}

// drain reads and drops what the peer sends until the deadline or until
// limit bytes in all, then closes. Ending ctx closes at once.
func drain(ctx context.Context, c net.Conn, read, limit int, deadline time.Time) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	c.SetReadDeadline(deadline)
	buf := make([]byte, 4096)
	for read < limit {
		n, err := c.Read(buf[:min(len(buf), limit-read)])
		read += n
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return
			}
			// The peer closed: wait out the delay, as a bridge that
			// had not noticed would, then close.
			t := time.NewTimer(time.Until(deadline))
			select {
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
			return
		}
	}
}

// handOver connects raw to the fallback node, replaying the bytes read,
// and joins the two with copyloop.Join until both directions end: a
// half-close is passed on as a half-close, and a reset (the prober's or
// the node's) as a reset, so the prober meets the node's own behaviour.
func (s *Server) handOver(ctx context.Context, raw net.Conn, first []byte) {
	defer raw.Close()
	raw.SetReadDeadline(time.Time{})
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	up, err := s.cfg.Dial(dctx, "tcp", s.cfg.Fallback)
	cancel()
	if err != nil {
		s.cfg.Logger.Warn("bridge: fallback unreachable; closing the refused connection", "fallback", s.cfg.Fallback, "err", err)
		return
	}
	defer up.Close()
	stop := context.AfterFunc(ctx, func() { raw.Close(); up.Close() })
	defer stop()
	if _, err := up.Write(first); err != nil {
		return
	}
	toNode, fromNode, err := copyloop.Join(raw, up)
	s.cfg.Logger.Debug("bridge: fallback session ended", "to_fallback", toNode+int64(len(first)), "from_fallback", fromNode, "err", err)
}

// prefixConn returns prefix before the connection's own bytes.
type prefixConn struct {
	net.Conn
	prefix []byte
}

// CloseWrite half-closes the connection, if it can be.
func (c *prefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
