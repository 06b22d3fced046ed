package profiles

import (
	mrand "math/rand/v2"

	"github.com/bip324pt/bip324-pt/schedule"
)

// jitterFields are the [schedule] keys of kind "jitter", named after the
// schedule.JitterParams fields they set. Both are distributions.
type jitterFields struct {
	Gap  string `toml:"gap_us"`
	Size string `toml:"size"`
}

func init() {
	registerKind("jitter", &kind[jitterFields]{
		Compile: compileJitter,
		Params:  func(s schedule.Schedule) any { return s.(*schedule.Jitter).Params() },
	})
}

// compileJitter parses the two distributions.
func compileJitter(c *kindContext, f *jitterFields) (newSchedule, error) {
	gap, err := c.dist("gap_us", f.Gap)
	if err != nil {
		return nil, err
	}
	size, err := c.dist("size", f.Size)
	if err != nil {
		return nil, err
	}
	jp := schedule.JitterParams{}
	if gap != nil {
		jp.Gap = gap
	}
	if size != nil {
		jp.Size = size
	}
	return func(_ schedule.Role, r *mrand.Rand) (schedule.Schedule, error) { return schedule.NewJitter(jp, r) }, nil
}
