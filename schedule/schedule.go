package schedule

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// MaxSize is the largest Size an [Opportunity] carries and the largest
// size a [Sampler] sample is taken at: the largest contents length a
// BIP324 3-byte length field can express.
const MaxSize = 1<<24 - 1

// Opportunity is one send opportunity: when, how many wire bytes, and
// whether the shaper must make up the bytes with decoys.
//
// The zero Opportunity means idle: nothing to send until the next event.
type Opportunity struct {
	// At is when the bytes may go: never before the now given to
	// [Schedule.Next]. Zero when idle.
	At time.Time
	// Size is how many wire bytes the opportunity still carries, in
	// 1..MaxSize; 0 when idle.
	Size int
	// Pad says the shaper must put exactly Size bytes on the wire: real
	// data first, decoy packets for the rest. Without Pad it sends real
	// data only, up to Size bytes, and nothing if none is waiting.
	Pad bool
}

// Idle reports whether o is the idle opportunity.
func (o Opportunity) Idle() bool { return o.At.IsZero() }

// Schedule decides when a connection's send side may send and how much.
//
// The shaper drives it from its single goroutine: it reports events as
// they happen, asks [Schedule.Next] after each one, and arms its one timer
// for the answer. A Schedule never reads a clock or starts a timer; every
// time comes in as an argument, so tests replay any sequence of events at
// any speed. Implementations are not safe for concurrent use.
//
// All byte counts are wire bytes: packet framing and decoys included.
// Negative counts are taken as 0. Times are never the zero time and
// should not go backwards from one call to the next.
type Schedule interface {
	// Next returns the next send opportunity at or after now, or the
	// zero Opportunity when there is nothing to do until an event. It
	// only reads the schedule's state (it draws no randomness): asked
	// twice with the same now and no event in between, it answers the
	// same.
	Next(now time.Time) Opportunity

	// Queued reports that n wire bytes of real data now wait to be sent
	// in total (not in addition): the shaper's estimate of what its whole
	// queue would take on the wire, framing included. Call it when data
	// arrives and whenever the total changes other than by a send; a
	// Sent of real data lowers the total by itself, so call Sent first.
	Queued(now time.Time, n int)

	// Sent reports that n bytes went to the wire at now: real data when
	// decoy is false, decoy packets (or garbage, or other filler) when
	// true. They count against the opportunity Next(now) reports if it
	// is due, that is if its At is now; bytes beyond its Size are not
	// carried over to the next one. Bytes sent when no opportunity is
	// due (a handshake flight, say) count against nothing, except that
	// real data still lowers the queued total.
	Sent(now time.Time, n int, decoy bool)

	// Received reports that n bytes arrived from the peer.
	Received(now time.Time, n int)

	// String names the schedule and gives its parameters, defaults
	// filled in.
	String() string
}

// Sampler draws one integer using r. A padding.Dist is a Sampler; the
// interface lives here so that this package imports nothing of ours.
type Sampler interface {
	Sample(r *rand.Rand) int
}

// Role says which end of the connection a schedule shapes.
type Role uint8

const (
	// Client is the initiator. Its sends go upstream; in a trace it is
	// the side that writes the "s" events.
	Client Role = iota + 1
	// Server is the responder. Its sends go downstream; in a trace it is
	// the side that writes the "r" events.
	Server
)

func (r Role) String() string {
	switch r {
	case Client:
		return "client"
	case Server:
		return "server"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// ParamError reports a parameter that is out of range.
type ParamError struct {
	Schedule string // such as "constant-rate"
	Param    string // the field, such as "Interval"
	Value    any    // the value given
	Want     string // what is allowed, in words
}

func (e *ParamError) Error() string {
	return fmt.Sprintf("schedule: %s: %s = %v, want %s", e.Schedule, e.Param, e.Value, e.Want)
}

// Defaults and limits shared by several schedules.
const (
	// DefaultMTU is the default size of one shaped write: a full TCP
	// segment on a 1500-byte Ethernet path with TCP timestamps, the size
	// obfs4 cuts its frames to.
	DefaultMTU = 1448
)

// clampSample draws from s and moves the result into [lo, hi].
func clampSample(s Sampler, r *rand.Rand, lo, hi int) int {
	v := s.Sample(r)
	return min(max(v, lo), hi)
}

// nextGrid returns the due time of the opportunity after one due at prev
// and served at now, period apart. The grid stays anchored while the
// shaper is less than half a period late, so timer jitter neither drifts
// nor bunches it; a shaper further behind has missed the slot, and the
// grid restarts a period after now rather than firing twice in a row.
func nextGrid(prev, now time.Time, period time.Duration) time.Time {
	next := prev.Add(period)
	if next.Before(now.Add(period / 2)) {
		return now.Add(period)
	}
	return next
}

// due reports whether o is an opportunity open at now.
func due(o Opportunity, now time.Time) bool { return !o.Idle() && !o.At.After(now) }

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// intSampler is the Sampler of a profile-less default: uniform over
// [lo, hi], or fixed when lo == hi.
type intSampler struct{ lo, hi int }

func (s intSampler) Sample(r *rand.Rand) int {
	if s.lo == s.hi {
		return s.lo
	}
	return s.lo + r.IntN(s.hi-s.lo+1)
}

func (s intSampler) String() string {
	if s.lo == s.hi {
		return fmt.Sprintf("fixed(%d)", s.lo)
	}
	return fmt.Sprintf("uniform(%d,%d)", s.lo, s.hi)
}

// samplerString names a Sampler: its String if it has one.
func samplerString(s Sampler) string {
	if st, ok := s.(fmt.Stringer); ok {
		return st.String()
	}
	return fmt.Sprintf("%T", s)
}
