package padding

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// MaxSize is the largest size any [Dist] returns: the largest contents
// length a BIP324 3-byte length field can express. Keeping every size
// below it also keeps sums of a few sizes far from integer overflow.
const MaxSize = 1<<24 - 1

// Dist is a distribution of sizes in [0, MaxSize].
//
// Beyond Sample, a Dist reports its Bounds, so that a profile can check
// once, when it is loaded, that a distribution fits where it is used (a
// garbage length must lie in 0..4095), and its String, so that a profile
// can be printed. The constructors return errors rather than panic: their
// parameters come from profile files.
//
// A Dist is immutable: Sample only reads it, so one Dist may be used from
// several goroutines at once, each with its own *rand.Rand (a *rand.Rand
// is not safe for concurrent use). Sample does not allocate.
type Dist interface {
	// Sample draws one size using r.
	Sample(r *rand.Rand) int
	// Bounds returns the smallest and the largest size Sample can return.
	// Every sample lies in [min, max]; the ends need not be reachable.
	Bounds() (min, max int)
	// String describes the distribution and its parameters, for profiles
	// and logs. It never includes a seed.
	String() string
}

// NewRand returns a *rand.Rand driven by ChaCha8 keyed with seed. The
// result is not safe for concurrent use.
func NewRand(seed [32]byte) *rand.Rand {
	return rand.New(rand.NewChaCha8(seed))
}

// ErrNilDist is returned by [Clamp] when it is given no distribution.
var ErrNilDist = errors.New("padding: nil distribution")

// RangeError reports a parameter outside its allowed range.
type RangeError struct {
	Dist  string // the constructor, such as "uniform"
	Param string // the parameter, such as "max"
	Value string // the value given, formatted
	Want  string // the allowed range, in words
}

func (e *RangeError) Error() string {
	return fmt.Sprintf("padding: %s: %s = %s, want %s", e.Dist, e.Param, e.Value, e.Want)
}

// checkRange validates the common [min, max] pair of a constructor.
func checkRange(dist string, min, max int) error {
	if min < 0 || min > MaxSize {
		return &RangeError{dist, "min", fmt.Sprint(min), fmt.Sprintf("0..%d", MaxSize)}
	}
	if max < min || max > MaxSize {
		return &RangeError{dist, "max", fmt.Sprint(max), fmt.Sprintf("%d..%d (at least min)", min, MaxSize)}
	}
	return nil
}

type fixed int

// Fixed returns the distribution that always yields n.
// It fails unless 0 <= n <= MaxSize.
func Fixed(n int) (Dist, error) {
	if n < 0 || n > MaxSize {
		return nil, &RangeError{"fixed", "n", fmt.Sprint(n), fmt.Sprintf("0..%d", MaxSize)}
	}
	return fixed(n), nil
}

func (f fixed) Sample(*rand.Rand) int  { return int(f) }
func (f fixed) Bounds() (min, max int) { return int(f), int(f) }
func (f fixed) String() string         { return fmt.Sprintf("fixed(%d)", int(f)) }

type uniform struct{ min, max int }

// Uniform returns the distribution that yields every integer in
// [min, max] with equal probability. It fails unless
// 0 <= min <= max <= MaxSize.
func Uniform(min, max int) (Dist, error) {
	if err := checkRange("uniform", min, max); err != nil {
		return nil, err
	}
	return uniform{min, max}, nil
}

func (u uniform) Sample(r *rand.Rand) int { return u.min + r.IntN(u.max-u.min+1) }
func (u uniform) Bounds() (min, max int)  { return u.min, u.max }
func (u uniform) String() string          { return fmt.Sprintf("uniform(%d,%d)", u.min, u.max) }

type logNormal struct{ mu, sigma float64 }

// LogNormal returns the distribution of round(exp(mu + sigma·Z)) for a
// standard normal Z, capped at MaxSize. Its median is exp(mu); its mean,
// before rounding and capping, exp(mu + sigma²/2). To hit a median m and a
// mean a > m, take mu = ln m and sigma = sqrt(2·ln(a/m)).
//
// It fails unless mu and sigma are finite, sigma >= 0, and exp(mu) lies in
// [1, MaxSize] (a median outside the size range is a mistake).
func LogNormal(mu, sigma float64) (Dist, error) {
	if math.IsNaN(mu) || mu < 0 || mu > math.Log(MaxSize) {
		return nil, &RangeError{"lognormal", "mu", fmt.Sprint(mu), fmt.Sprintf("0..%.4g (a median of 1..%d)", math.Log(MaxSize), MaxSize)}
	}
	if math.IsNaN(sigma) || sigma < 0 || sigma > maxSigma {
		return nil, &RangeError{"lognormal", "sigma", fmt.Sprint(sigma), fmt.Sprintf("0..%d", maxSigma)}
	}
	return logNormal{mu, sigma}, nil
}

// maxSigma bounds LogNormal's shape: at sigma = 10 the distribution
// already spans many orders of magnitude beyond MaxSize.
const maxSigma = 10

func (l logNormal) Sample(r *rand.Rand) int {
	x := math.Exp(l.mu + l.sigma*r.NormFloat64())
	if x >= MaxSize { // also +Inf
		return MaxSize
	}
	return int(math.Round(x))
}

func (l logNormal) Bounds() (min, max int) { return 0, MaxSize }
func (l logNormal) String() string {
	return fmt.Sprintf("lognormal(%g,%g)", l.mu, l.sigma)
}

type clamped struct {
	d        Dist
	min, max int
}

// Clamp returns d with every sample below min raised to min and every
// sample above max lowered to max. It fails if d is nil or unless
// 0 <= min <= max <= MaxSize.
func Clamp(d Dist, min, max int) (Dist, error) {
	if d == nil {
		return nil, ErrNilDist
	}
	if err := checkRange("clamp", min, max); err != nil {
		return nil, err
	}
	return clamped{d, min, max}, nil
}

func (c clamped) Sample(r *rand.Rand) int { return c.clamp(c.d.Sample(r)) }

func (c clamped) clamp(v int) int {
	if v < c.min {
		return c.min
	}
	if v > c.max {
		return c.max
	}
	return v
}

func (c clamped) Bounds() (min, max int) {
	lo, hi := c.d.Bounds()
	return c.clamp(lo), c.clamp(hi)
}

func (c clamped) String() string {
	return fmt.Sprintf("clamp(%v,%d,%d)", c.d, c.min, c.max)
}
