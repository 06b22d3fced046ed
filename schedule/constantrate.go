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
	// IdleStop, if positive, stops the cells once no real data has gone
	// either way for that long: none queued or sent by this end, none
	// received from the peer ([ConstantRate.DataReceived]). The next data
	// either way restarts them. It must be at least Interval. Zero means
	// never stop: cells go on from the handshake to the close, and the
	// wire says nothing about when the connection is idle.
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
	if p.IdleStop < 0 || (p.IdleStop > 0 && p.IdleStop < p.Interval) {
		return p, &ParamError{name, "IdleStop", p.IdleStop, fmt.Sprintf("0 (never) or at least the Interval (%v)", p.Interval)}
	}
	return p, nil
}

// ConstantRate sends one cell of exactly CellSize wire bytes every
// Interval: real data when some waits, decoys for the rest of the cell,
// all decoys when none does. Every opportunity has Pad set, so the wire
// carries the same sizes at the same times whatever the application does.
//
// The cells start at the first event the schedule is told of (the
// shaper's first Queued, right after the handshake, with or without
// data; until then Next offers a full cell at once), and they lie on a
// grid anchored there: cell k is due at start + k·Interval, for the life
// of the schedule. Nothing moves the grid: not data queued, not the
// peer's bytes or cells, so an end's cell times are a function of its
// handshake alone and never lock to the peer's. A cell is done when its
// CellSize bytes have been Sent (bytes beyond are dropped from the count,
// not carried over); the next is due at the following slot. A shaper more
// than half an Interval late skips the slots it missed: the next cell is
// due at the first slot at least half an Interval after the late send, so
// cells never bunch.
//
// With IdleStop set, a cell whose slot is IdleStop or more after the last
// real data, with nothing waiting, is not sent, and the schedule is idle
// until data comes again. Real data is what this end queues or sends and
// what [ConstantRate.DataReceived] reports of the peer's, so two ends
// with the same IdleStop stop together (one one-way delay apart) when the
// connection is idle both ways, and restart together when either has
// data: the end with data at its next slot, the other at its next slot
// after that data arrives. Neither end's grid moves when it restarts.
// This is the one thing the wire then tells a censor: that no data went
// either way for IdleStop, and which end had data first when the cells
// came back. Received (the peer's wire bytes, its decoy cells included)
// counts for nothing but anchoring the grid: two constant-rate ends must
// not keep each other alive with their decoys.
//
// It is not safe for concurrent use.
type ConstantRate struct {
	p ConstantRateParams

	started  bool      // the grid is anchored
	start    time.Time // the grid's anchor, the first event
	due      time.Time // the current cell's slot, on the grid
	left     int       // bytes the current cell still carries
	queued   int
	lastData time.Time // the start, or the last real data queued, sent or received
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

// begin anchors the grid at now, on the first event.
func (s *ConstantRate) begin(now time.Time) {
	if s.started {
		return
	}
	s.started = true
	s.start, s.due, s.lastData = now, now, now
	s.left = s.p.CellSize
}

// active reports whether a cell is open: the cells have started and not
// stopped for idleness. A cell already begun always finishes.
func (s *ConstantRate) active() bool {
	if !s.started || s.p.IdleStop == 0 || s.queued > 0 || s.left < s.p.CellSize {
		return true
	}
	return s.due.Before(s.lastData.Add(s.p.IdleStop))
}

// data records real data, either way, at now. Cells that had stopped for
// idleness restart at the first slot of the grid at or after now.
func (s *ConstantRate) data(now time.Time, wasActive bool) {
	s.lastData = now
	if !wasActive {
		s.due = later(s.due, s.slotAtOrAfter(now))
	}
}

// slotAtOrAfter returns the first slot of the grid at or after t.
func (s *ConstantRate) slotAtOrAfter(t time.Time) time.Time {
	d := t.Sub(s.start)
	if d <= 0 {
		return s.start
	}
	k := d / s.p.Interval
	if d%s.p.Interval != 0 {
		k++
	}
	return s.start.Add(k * s.p.Interval)
}

// Next implements [Schedule].
func (s *ConstantRate) Next(now time.Time) Opportunity {
	if !s.started {
		return Opportunity{At: now, Size: s.p.CellSize, Pad: true}
	}
	if !s.active() {
		return Opportunity{}
	}
	return Opportunity{At: later(s.due, now), Size: s.left, Pad: true}
}

// Queued implements [Schedule].
func (s *ConstantRate) Queued(now time.Time, n int) {
	s.begin(now)
	wasActive := s.active()
	s.queued = max(n, 0)
	if s.queued > 0 {
		s.data(now, wasActive)
	}
}

// Sent implements [Schedule].
func (s *ConstantRate) Sent(now time.Time, n int, decoy bool) {
	s.begin(now)
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
		next := s.due.Add(s.p.Interval)
		if late := now.Add(s.p.Interval / 2); next.Before(late) {
			next = s.slotAtOrAfter(late)
		}
		s.due = next
		s.left = s.p.CellSize
	}
}

// Received implements [Schedule]. The peer's wire bytes are its cells,
// decoys included: they only anchor the grid, if nothing has yet.
func (s *ConstantRate) Received(now time.Time, _ int) { s.begin(now) }

// DataReceived reports that n bytes of the peer's real data (the contents
// of packets that are not decoys) arrived at now. With IdleStop set, it
// keeps the cells going as this end's own data does, and restarts them if
// they had stopped; otherwise it only anchors the grid, if nothing has
// yet. The shaper calls it for schedules that have it.
func (s *ConstantRate) DataReceived(now time.Time, n int) {
	s.begin(now)
	if n > 0 {
		s.data(now, s.active())
	}
}

// UsesReceived reports whether the shaper must wake the schedule when
// bytes arrive: with IdleStop set, the peer's data restarts stopped
// cells.
func (s *ConstantRate) UsesReceived() bool { return s.p.IdleStop > 0 }

func (s *ConstantRate) String() string {
	return fmt.Sprintf("constant-rate(cell=%d,interval=%v,idle-stop=%v)", s.p.CellSize, s.p.Interval, s.p.IdleStop)
}
