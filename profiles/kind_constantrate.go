package profiles

import (
	mrand "math/rand/v2"

	"github.com/bip324pt/bip324-pt/schedule"
	"github.com/bip324pt/bip324-pt/v2core"
)

// constantRateFields are the [schedule] keys of kind "constant-rate",
// named after the schedule.ConstantRateParams fields they set.
type constantRateFields struct {
	CellSize int      `toml:"cell"`
	Interval duration `toml:"interval"`
	IdleStop duration `toml:"idle_stop"`
}

func init() {
	registerKind("constant-rate", &kind[constantRateFields]{
		Compile: compileConstantRate,
		Params:  func(s schedule.Schedule) any { return s.(*schedule.ConstantRate).Params() },
	})
}

// compileConstantRate checks that a cell holds one packet, which the
// schedule leaves to its caller.
func compileConstantRate(c *kindContext, f *constantRateFields) (newSchedule, error) {
	if f.CellSize != 0 && f.CellSize < v2core.PacketOverhead+2 {
		return nil, c.errorf("cell", "%d bytes, want at least %d (one packet's framing and a data byte)", f.CellSize, v2core.PacketOverhead+2)
	}
	params := schedule.ConstantRateParams{CellSize: f.CellSize, Interval: f.Interval.Duration, IdleStop: f.IdleStop.Duration}
	return func(schedule.Role, *mrand.Rand) (schedule.Schedule, error) { return schedule.NewConstantRate(params) }, nil
}
