package bridge

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"time"

	"github.com/bip324pt/bip324-pt/internal/bridgeauth"
	"github.com/bip324pt/bip324-pt/internal/stats"
	"github.com/bip324pt/bip324-pt/shaper"
	"github.com/bip324pt/bip324-pt/v2core"
)

// maxMarkEnd is where the client's mark and MAC end at the latest,
// counted from the start of the flight: within one full TCP segment on a
// 1500-byte path (1448 bytes). The bridge finds them anywhere in the
// garbage, however the flight arrives; keeping them early only means the
// bridge has them with the first segment.
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
	// Network is the Bitcoin network the bridge poses as a node of (the
	// bridge line's network=). Zero means mainnet.
	Network v2core.Network
	// Now is the clock for the MAC's hour. Nil means time.Now.
	Now func() time.Time
	// Logger gets a warning when the bridge applies another profile
	// than the one asked for. Nil means silent.
	Logger *slog.Logger
	// Stats, if not nil, counts the tunnel: its handshake (or failure),
	// its profile and, when it closes, its traffic.
	Stats *stats.Counters
	// Profile names Shape for Stats. Empty: Request.Profile, or "none".
	Profile string
	// OnApplied, if not nil, gets the profile the bridge says it shapes
	// its direction with. A bridge says so, in its first packet, only to
	// a client it authenticated that sent a request (Request not zero);
	// it comes as the stream is read.
	OnApplied func(profile string)
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
		Network:         cc.Network,
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
	c := newClientConn(sc, func(rec byte, body []byte) error {
		if rec != recordApplied {
			// A later version's record: nothing we must act on.
			log.Debug("bridge: ignoring a control record this version does not know", "type", rec)
			return nil
		}
		applied, err := parseApplied(body)
		if err != nil {
			return err
		}
		if cc.OnApplied != nil {
			cc.OnApplied(applied)
		}
		if applied != cc.Request.Profile {
			log.Warn("bridge: the bridge shapes its direction with another profile than the one asked for (not in its allow-list)",
				"asked", cc.Request.Profile, "applied", applied)
		}
		return nil
	})
	st := cc.Stats
	st.Accepted()
	if err := sc.HandshakeContext(ctx); err != nil {
		st.Refused(stats.RefusedHandshake)
		st.Closed()
		if sc.Stats().WireIn == 0 {
			return nil, fmt.Errorf("%w: %w", ErrNoAnswer, err)
		}
		return nil, fmt.Errorf("bridge: client handshake: %w", err)
	}
	st.Handshake()
	st.Authenticated(cmp.Or(cc.Profile, cc.Request.Profile))
	c.countOn(st)
	return c, nil
}

// negotiate applies the client's request within the allow-list. It
// returns the Shape of our direction (nil: the default) and its seed,
// the name of the profile applied, and whether the client asked for one.
func (s *Server) negotiate(pol *policy, v []byte) (*shaper.Shape, [32]byte, string, bool, error) {
	def := pol.profile
	if def == "" {
		def = "none"
	}
	req, err := ParseRequest(v)
	if err != nil {
		s.cfg.Logger.Debug("bridge: no usable request; using the default profile", "err", err)
		return nil, directionSeed(s.cfg.Seed), def, false, nil
	}
	if req.Seed == ([32]byte{}) {
		req.Seed = s.cfg.Seed
	}
	seed := directionSeed(req.Seed)
	if req.Profile == "" || !pol.allowed[req.Profile] {
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
