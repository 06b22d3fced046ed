package schedule

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// JitterParams configures [NewJitter]. The zero value gives the defaults,
// which behave like obfs4's iat-mode=1.
type JitterParams struct {
	// Gap draws the pause after one opportunity before the next may
	// start, in microseconds; samples are taken in [0, 10 s]. Nil means
	// uniform over [0, 10000] µs: obfs4 draws its inter-arrival delay from
	// [0, 10 ms] (maxIATDelay, 100 steps of 100 µs) with seeded weights;
	// pass a padding.Dist from padding.NewWeighted for that shape.
	Gap Sampler
	// Size draws the wire size of each opportunity; samples are taken in
	// [1, MaxSize]. Nil means DefaultMTU (1448), obfs4's iat-mode=1 cut;
	// a distribution here gives iat-mode=2 ("paranoid") sizes.
	Size Sampler
}

// maxJitterGap bounds a Gap sample, in microseconds.
const maxJitterGap = 10_000_000

func (p JitterParams) withDefaults() JitterParams {
	if p.Gap == nil {
		p.Gap = intSampler{0, 10_000}
	}
	if p.Size == nil {
		p.Size = intSampler{DefaultMTU, DefaultMTU}
	}
	return p
}

// Jitter spaces real data out with random gaps, in the manner of obfs4's
// iat modes, but as a schedule: the gap is the shaper's timer, never a
// sleep inside Write, and an opportunity may carry a whole Size of data,
// not one 1448-byte write.
//
// While data waits, the opportunity is {max(now, earliest), left, false}:
// the shaper sends real data only, up to left bytes. The first data after
// a pause longer than the last gap goes at once. An opportunity ends when
// Size bytes have been Sent or nothing is left queued; then the schedule
// draws the gap, earliest = now + gap, and draws the next Size. The
// constructor draws the first Size. Those are the only draws, in that
// order, so a seed fixes every decision.
//
// It is not safe for concurrent use.
type Jitter struct {
	p   JitterParams
	rng *rand.Rand

	queued   int
	earliest time.Time // no opportunity starts before this
	left     int       // what the current opportunity still carries
}

var _ Schedule = (*Jitter)(nil)

// ErrNilRand is returned by constructors that need randomness and got none.
var ErrNilRand = errors.New("schedule: nil *rand.Rand")

// NewJitter returns a Jitter schedule drawing from r, which it keeps: r
// must not be used elsewhere meanwhile.
func NewJitter(p JitterParams, r *rand.Rand) (*Jitter, error) {
	if r == nil {
		return nil, ErrNilRand
	}
	s := &Jitter{p: p.withDefaults(), rng: r}
	s.left = clampSample(s.p.Size, r, 1, MaxSize)
	return s, nil
}

// Params returns the parameters with defaults filled in.
func (s *Jitter) Params() JitterParams { return s.p }

// Next implements [Schedule].
func (s *Jitter) Next(now time.Time) Opportunity {
	if s.queued == 0 {
		return Opportunity{}
	}
	return Opportunity{At: later(s.earliest, now), Size: s.left}
}

// Queued implements [Schedule].
func (s *Jitter) Queued(now time.Time, n int) { s.queued = max(n, 0) }

// Sent implements [Schedule].
func (s *Jitter) Sent(now time.Time, n int, decoy bool) {
	n = max(n, 0)
	open := due(s.Next(now), now)
	if !decoy {
		s.queued = max(s.queued-n, 0)
	}
	if !open || n == 0 {
		return
	}
	s.left -= n
	if s.left > 0 && s.queued > 0 {
		return
	}
	gap := clampSample(s.p.Gap, s.rng, 0, maxJitterGap)
	s.earliest = now.Add(time.Duration(gap) * time.Microsecond)
	s.left = clampSample(s.p.Size, s.rng, 1, MaxSize)
}

// Received implements [Schedule]; Jitter ignores it.
func (s *Jitter) Received(time.Time, int) {}

func (s *Jitter) String() string {
	return fmt.Sprintf("jitter(gap=%sus,size=%s)", samplerString(s.p.Gap), samplerString(s.p.Size))
}
