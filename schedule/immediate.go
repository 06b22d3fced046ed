package schedule

import "time"

// Immediate is the unshaped schedule: whenever real data waits, the
// opportunity is now, for all of it, without padding.
//
// Its zero value is ready to use. It is not safe for concurrent use.
type Immediate struct {
	queued int
}

var _ Schedule = (*Immediate)(nil)

// ImmediateParams is the parameters of [Immediate]: it has none. It
// exists so that every schedule reports its parameters with a Params
// method, as [ConstantRate.Params] does.
type ImmediateParams struct{}

// NewImmediate returns an Immediate schedule.
func NewImmediate() *Immediate { return new(Immediate) }

// Params returns the parameters, which are none.
func (s *Immediate) Params() ImmediateParams { return ImmediateParams{} }

// Next implements [Schedule]: {now, queued, false} while data waits
// (Size at most MaxSize).
func (s *Immediate) Next(now time.Time) Opportunity {
	if s.queued == 0 {
		return Opportunity{}
	}
	return Opportunity{At: now, Size: min(s.queued, MaxSize)}
}

// Queued implements [Schedule].
func (s *Immediate) Queued(now time.Time, n int) { s.queued = max(n, 0) }

// Sent implements [Schedule].
func (s *Immediate) Sent(now time.Time, n int, decoy bool) {
	if !decoy {
		s.queued = max(s.queued-max(n, 0), 0)
	}
}

// Received implements [Schedule]; Immediate ignores it.
func (s *Immediate) Received(time.Time, int) {}

func (s *Immediate) String() string { return "immediate" }
