package schedule

import (
	"errors"
	"fmt"
	"time"
)

// ReplayParams configures [NewReplay].
type ReplayParams struct {
	// Trace is the recording to replay, as [ParseTrace] returns it: times
	// non-decreasing. Required. Only the events this end sent in the
	// recording are used (see Role); events of size 0 are skipped.
	// NewReplay copies what it needs.
	Trace []TraceEvent
	// Role picks the events: a Client replays the "s" events, a Server
	// the "r" events. Required.
	Role Role
	// Loop restarts the trace when it ends. Without it, the schedule acts
	// like [Immediate] once the trace is used up, so data is never stuck.
	Loop bool
	// LoopGap is the pause between the trace's last event (of either
	// direction) and the start of the next round, from 0 to an hour.
	// Zero means 1s. Used only with Loop.
	LoopGap time.Duration
}

// Limits and defaults of [ReplayParams].
const (
	DefaultLoopGap = time.Second
	MaxLoopGap     = time.Hour
)

// ErrNoReplayEvents is returned by [NewReplay] when the trace has no
// event of non-zero size for the role.
var ErrNoReplayEvents = errors.New("schedule: replay: no events of this role's direction in the trace")

// Replay sends what a recorded trace sent, when it sent it: each event of
// this end's direction becomes an opportunity of exactly its size (Pad
// set), due at the trace time after the start. The start is the first
// Queued with data waiting or the first Received, whichever comes first,
// so a server replaying the "r" events starts when the client's first
// bytes arrive, as in the recording.
//
// An event is done when its size has been Sent; the next one is due at its
// own trace time, or at once if the shaper is behind: replay keeps every
// size and their order, and never skips an event. Then it loops or falls
// back to [Immediate] behaviour (see [ReplayParams.Loop]).
//
// It is not safe for concurrent use.
type Replay struct {
	p      ReplayParams
	offs   []time.Duration // trace times of this role's events
	sizes  []int
	period time.Duration // one round, with Loop

	started bool
	start   time.Time // the current round's start
	i       int       // current event; len(offs) once the trace is used up
	left    int
	queued  int
	n       int // events kept, for String
}

var _ Schedule = (*Replay)(nil)

// NewReplay returns a Replay schedule. It fails with a *ParamError for a
// bad Role or LoopGap, an error for a trace that is not in time order,
// and ErrNoReplayEvents if nothing is left to replay.
func NewReplay(p ReplayParams) (*Replay, error) {
	const name = "replay"
	if p.Role != Client && p.Role != Server {
		return nil, &ParamError{name, "Role", p.Role, "Client or Server"}
	}
	if p.LoopGap == 0 {
		p.LoopGap = DefaultLoopGap
	}
	if p.LoopGap < 0 || p.LoopGap > MaxLoopGap {
		return nil, &ParamError{name, "LoopGap", p.LoopGap, fmt.Sprintf("0..%v", MaxLoopGap)}
	}
	want := DirSent
	if p.Role == Server {
		want = DirReceived
	}
	s := &Replay{}
	var last time.Duration
	for i, ev := range p.Trace {
		if ev.Time < last || ev.Size < 0 || ev.Size > MaxSize {
			return nil, fmt.Errorf("schedule: replay: trace event %d (%+v) is out of order or out of range", i, ev)
		}
		last = ev.Time
		if ev.Dir == want && ev.Size > 0 {
			s.offs = append(s.offs, ev.Time)
			s.sizes = append(s.sizes, ev.Size)
		}
	}
	if len(s.offs) == 0 {
		return nil, ErrNoReplayEvents
	}
	s.n = len(s.offs)
	s.period = last + p.LoopGap
	p.Trace = nil // not retained
	s.p = p
	s.left = s.sizes[0]
	return s, nil
}

// Params returns the parameters with defaults filled in, without the
// trace.
func (s *Replay) Params() ReplayParams { return s.p }

func (s *Replay) done() bool { return s.i == len(s.offs) }

// Next implements [Schedule].
func (s *Replay) Next(now time.Time) Opportunity {
	switch {
	case !s.started:
		return Opportunity{}
	case s.done():
		if s.queued == 0 {
			return Opportunity{}
		}
		return Opportunity{At: now, Size: min(s.queued, MaxSize)}
	}
	return Opportunity{At: later(s.start.Add(s.offs[s.i]), now), Size: s.left, Pad: true}
}

// Queued implements [Schedule].
func (s *Replay) Queued(now time.Time, n int) {
	s.queued = max(n, 0)
	if s.queued > 0 {
		s.begin(now)
	}
}

func (s *Replay) begin(now time.Time) {
	if !s.started {
		s.started = true
		s.start = now
	}
}

// Sent implements [Schedule].
func (s *Replay) Sent(now time.Time, n int, decoy bool) {
	n = max(n, 0)
	open := due(s.Next(now), now)
	if !decoy {
		s.queued = max(s.queued-n, 0)
	}
	if !open || n == 0 || s.done() {
		return
	}
	s.left -= n
	if s.left > 0 {
		return
	}
	s.i++
	if s.done() && s.p.Loop {
		s.i = 0
		s.start = s.start.Add(s.period)
	}
	if !s.done() {
		s.left = s.sizes[s.i]
	}
}

// Received implements [Schedule]: the first bytes start a server's replay.
func (s *Replay) Received(now time.Time, n int) {
	if n > 0 {
		s.begin(now)
	}
}

func (s *Replay) String() string {
	loop := "no"
	if s.p.Loop {
		loop = s.p.LoopGap.String()
	}
	return fmt.Sprintf("replay(role=%v,events=%d,length=%v,loop=%s)", s.p.Role, s.n, s.period-s.p.LoopGap, loop)
}

// UsesReceived reports that Replay reacts to received bytes (its start),
// so the shaper wakes it on every read.
func (s *Replay) UsesReceived() bool { return true }
