package schedule

import (
	"fmt"
	"time"
)

// ConstantRateParams configures [NewConstantRate]. The zero value gives
// the defaults.
type ConstantRateParams struct {
	// CellSize is the wire size of every cell, in 1..MaxSize. Zero means
	// DefaultMTU (1448). The shaper needs room for at least one packet's
	// framing (20 bytes in BIP324).
	CellSize int
	// Interval is the time between the starts of two cells, from 100µs to
	// a minute. Zero means 20ms (with the default cell, 72.4 kB/s).
	Interval time.Duration
	// IdleStop, if positive, stops the cells once no real data has been
	// queued or sent for that long; the next data restarts them. Zero
	// means never stop: decoy cells go on for the life of the connection.
	IdleStop time.Duration
}

// Limits and defaults of [ConstantRateParams].
const (
	DefaultCellInterval = 20 * time.Millisecond
	MinCellInterval     = 100 * time.Microsecond
	MaxCellInterval     = time.Minute
)

func (p ConstantRateParams) withDefaults() (ConstantRateParams, error) {
	const name = "constant-rate"
	if p.CellSize == 0 {
		p.CellSize = DefaultMTU
	}
	if p.Interval == 0 {
		p.Interval = DefaultCellInterval
	}
	if p.CellSize < 1 || p.CellSize > MaxSize {
		return p, &ParamError{name, "CellSize", p.CellSize, fmt.Sprintf("1..%d", MaxSize)}
	}
	if p.Interval < MinCellInterval || p.Interval > MaxCellInterval {
		return p, &ParamError{name, "Interval", p.Interval, fmt.Sprintf("%v..%v", MinCellInterval, MaxCellInterval)}
	}
	if p.IdleStop < 0 {
		return p, &ParamError{name, "IdleStop", p.IdleStop, "0 (never) or more"}
	}
	return p, nil
}

// ConstantRate sends one cell of exactly CellSize wire bytes every
// Interval: real data when some waits, decoys for the rest of the cell,
// all decoys when none does. Every opportunity has Pad set, so the wire
// carries the same sizes at the same times whatever the application does.
//
// The cells start at the first Queued with data waiting, on a grid
// anchored there. A cell is done when its CellSize bytes have been Sent
// (bytes beyond are dropped from the count, not carried over); the next
// is due an Interval after the previous one was due, unless the shaper is
// more than half an Interval late, in which case the missed slot is
// skipped and the grid restarts an Interval after the late send. With
// IdleStop set, a cell that would be due IdleStop or more after the last
// real data (queued or sent), with nothing waiting, is not sent, and the
// schedule is idle until data is queued again.
//
// Received is ignored: two constant-rate ends must not keep each other
// alive with their decoys. It is not safe for concurrent use.
type ConstantRate struct {
	p ConstantRateParams

	running  bool      // cells have started
	due      time.Time // the current cell's slot
	left     int       // bytes the current cell still carries
	queued   int
	lastData time.Time // last Queued with data, or Sent of data, while running
}

var _ Schedule = (*ConstantRate)(nil)

// NewConstantRate returns a ConstantRate schedule. It fails with a
// *ParamError if p is out of range.
func NewConstantRate(p ConstantRateParams) (*ConstantRate, error) {
	p, err := p.withDefaults()
	if err != nil {
		return nil, err
	}
	return &ConstantRate{p: p}, nil
}

// Params returns the parameters with defaults filled in.
func (s *ConstantRate) Params() ConstantRateParams { return s.p }

// active reports whether a cell is open: the cells have started and not
// stopped for idleness. A cell already begun always finishes.
func (s *ConstantRate) active() bool {
	if !s.running {
		return false
	}
	if s.p.IdleStop == 0 || s.queued > 0 || s.left < s.p.CellSize {
		return true
	}
	return s.due.Before(s.lastData.Add(s.p.IdleStop))
}

// Next implements [Schedule].
func (s *ConstantRate) Next(now time.Time) Opportunity {
	if !s.active() {
		return Opportunity{}
	}
	return Opportunity{At: later(s.due, now), Size: s.left, Pad: true}
}

// Queued implements [Schedule].
func (s *ConstantRate) Queued(now time.Time, n int) {
	wasActive := s.active()
	s.queued = max(n, 0)
	if s.queued == 0 {
		return
	}
	s.lastData = now
	if !wasActive {
		s.running = true
		s.due = now
		s.left = s.p.CellSize
	}
}

// Sent implements [Schedule].
func (s *ConstantRate) Sent(now time.Time, n int, decoy bool) {
	n = max(n, 0)
	open := due(s.Next(now), now)
	if !decoy {
		s.queued = max(s.queued-n, 0)
	}
	if !open || n == 0 {
		return
	}
	if !decoy {
		s.lastData = now
	}
	s.left -= n
	if s.left <= 0 {
		s.due = nextGrid(s.due, now, s.p.Interval)
		s.left = s.p.CellSize
	}
}

// Received implements [Schedule]; ConstantRate ignores it.
func (s *ConstantRate) Received(time.Time, int) {}

func (s *ConstantRate) String() string {
	return fmt.Sprintf("constant-rate(cell=%d,interval=%v,idle-stop=%v)", s.p.CellSize, s.p.Interval, s.p.IdleStop)
}
