package schedule

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// This file checks each schedule against a reference model: a slow,
// obvious version that keeps the whole history of events and, on every
// Next, works the answer out again from the start (with a fresh random
// source from the same seed), instead of keeping incremental state. A
// driver feeds both the same random event sequences and compares Next
// after every event (the shape of wireguard-go's allowedips_rand_test.go
// SlowRouter).

type evKind int

const (
	evQueued evKind = iota
	evSent
	evReceived
)

type event struct {
	kind  evKind
	at    time.Time
	n     int
	decoy bool
}

func (e event) String() string {
	return fmt.Sprintf("%v %v n=%d decoy=%v", []string{"Queued", "Sent", "Received"}[e.kind], e.at.Sub(t0), e.n, e.decoy)
}

// history is the part every reference model shares: the events so far.
type history struct{ evs []event }

func (h *history) Queued(now time.Time, n int) { h.evs = append(h.evs, event{evQueued, now, n, false}) }
func (h *history) Sent(now time.Time, n int, decoy bool) {
	h.evs = append(h.evs, event{evSent, now, n, decoy})
}
func (h *history) Received(now time.Time, n int) {
	h.evs = append(h.evs, event{evReceived, now, n, false})
}
func (h *history) String() string { return "reference model" }

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func seeded(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x62697033)) }

func sameOpportunity(a, b Opportunity) bool {
	return a.At.Equal(b.At) && a.Size == b.Size && a.Pad == b.Pad
}

func show(o Opportunity) string {
	if o.Idle() {
		return "idle"
	}
	return fmt.Sprintf("{at %v, %d bytes, pad %v}", o.At.Sub(t0), o.Size, o.Pad)
}

// drive feeds fast and slow the same random events for steps steps and
// compares their answers. scale is the schedule's natural period, to
// pick time steps around it.
func drive(t *testing.T, fast, slow Schedule, r *rand.Rand, steps int, scale time.Duration) {
	t.Helper()
	now := t0
	var log []event
	check := func() {
		t.Helper()
		f1, f2, s := fast.Next(now), fast.Next(now), slow.Next(now)
		if !sameOpportunity(f1, f2) {
			t.Fatalf("Next not pure at %v: %v then %v", now.Sub(t0), show(f1), show(f2))
		}
		if !f1.Idle() && (f1.At.Before(now) || f1.Size < 1 || f1.Size > MaxSize) {
			t.Fatalf("bad opportunity at %v: %v", now.Sub(t0), show(f1))
		}
		if !sameOpportunity(f1, s) {
			tail := log[max(len(log)-8, 0):]
			t.Fatalf("%v: at %v fast %v, reference %v; last events:\n%v", fast, now.Sub(t0), show(f1), show(s), tail)
		}
	}
	apply := func(e event) {
		log = append(log, e)
		for _, sch := range []Schedule{fast, slow} {
			switch e.kind {
			case evQueued:
				sch.Queued(e.at, e.n)
			case evSent:
				sch.Sent(e.at, e.n, e.decoy)
			case evReceived:
				sch.Received(e.at, e.n)
			}
		}
	}
	for range steps {
		switch x := r.IntN(10); {
		case x < 3:
		case x < 6:
			now = now.Add(time.Duration(r.Int64N(int64(scale/10) + 1)))
		case x < 9:
			now = now.Add(time.Duration(r.Int64N(2*int64(scale) + 1)))
		default:
			now = now.Add(time.Duration(r.Int64N(30*int64(scale) + 1)))
		}
		check()
		switch x := r.IntN(20); {
		case x < 9: // the shaper serves the opportunity, on time or late
			o := fast.Next(now)
			if o.Idle() {
				apply(event{evQueued, now, r.IntN(4000), false})
				break
			}
			if r.IntN(4) > 0 {
				now = o.At
			}
			if r.IntN(4) == 0 {
				now = now.Add(time.Duration(r.Int64N(int64(scale) + 1)))
			}
			check()
			n := o.Size
			switch r.IntN(8) {
			case 0:
				n = 1 + r.IntN(o.Size)
			case 1:
				n += r.IntN(100)
			}
			apply(event{evSent, now, n, o.Pad && r.IntN(2) == 0})
		case x < 14:
			n := 0
			if r.IntN(4) > 0 {
				n = r.IntN(6000)
			}
			apply(event{evQueued, now, n, false})
		case x < 17:
			apply(event{evReceived, now, 1 + r.IntN(3000), false})
		case x < 19: // a send outside any opportunity
			apply(event{evSent, now, r.IntN(200), r.IntN(2) == 0})
		default: // odd inputs: negative counts
			apply(event{evKind(r.IntN(3)), now, -r.IntN(10), r.IntN(2) == 0})
		}
		check()
	}
}

// queuedAfter is the queued total after each event, worked out the
// obvious way: the last Queued, less the real data Sent since, never
// below zero.
func queuedAfter(evs []event) []int {
	out := make([]int, len(evs))
	q := 0
	for i, e := range evs {
		switch {
		case e.kind == evQueued:
			q = max(e.n, 0)
		case e.kind == evSent && !e.decoy:
			q = max(q-max(e.n, 0), 0)
		}
		out[i] = q
	}
	return out
}

type slowImmediate struct{ history }

func (m *slowImmediate) Next(now time.Time) Opportunity {
	q := 0
	if n := len(m.evs); n > 0 {
		q = queuedAfter(m.evs)[n-1]
	}
	if q == 0 {
		return Opportunity{}
	}
	return Opportunity{At: now, Size: min(q, MaxSize)}
}

func TestImmediate_model(t *testing.T) {
	for seed := range uint64(20) {
		drive(t, NewImmediate(), &slowImmediate{}, seeded(seed), 300, time.Millisecond)
	}
}

// slowJitter replays the history with a fresh source.
type slowJitter struct {
	history
	p    JitterParams
	seed uint64
}

func (m *slowJitter) Next(now time.Time) Opportunity {
	r := seeded(m.seed)
	draw := func(s Sampler, lo, hi int) int { return min(max(s.Sample(r), lo), hi) }
	left := draw(m.p.Size, 1, MaxSize)
	var earliest time.Time
	qs := queuedAfter(m.evs)
	for i, e := range m.evs {
		if e.kind != evSent {
			continue
		}
		before := 0
		if i > 0 {
			before = qs[i-1]
		}
		if before == 0 || e.n <= 0 || earliest.After(e.at) {
			continue
		}
		left -= e.n
		if left <= 0 || qs[i] == 0 {
			earliest = e.at.Add(time.Duration(draw(m.p.Gap, 0, 10_000_000)) * time.Microsecond)
			left = draw(m.p.Size, 1, MaxSize)
		}
	}
	if len(qs) == 0 || qs[len(qs)-1] == 0 {
		return Opportunity{}
	}
	if earliest.Before(now) {
		earliest = now
	}
	return Opportunity{At: earliest, Size: left}
}

func TestJitter_model(t *testing.T) {
	params := []JitterParams{
		{},
		{Gap: intSampler{0, 2000}, Size: intSampler{1, 4000}},
		{Gap: intSampler{-50, 50}, Size: intSampler{-5, 3}}, // samples out of range get clamped
	}
	for i, p := range params {
		for seed := range uint64(10) {
			s := uint64(i)*100 + seed
			fast, err := NewJitter(p, seeded(s))
			if err != nil {
				t.Fatal(err)
			}
			slow := &slowJitter{p: fast.Params(), seed: s}
			drive(t, fast, slow, seeded(s+1000), 300, 5*time.Millisecond)
		}
	}
}

// slowReplay walks the trace: the k-th opportunity of a round is its k-th
// event, and rounds follow each other a period apart.
type slowReplay struct {
	history
	p     ReplayParams
	trace []TraceEvent
}

func (m *slowReplay) Next(now time.Time) Opportunity {
	want := DirSent
	if m.p.Role == Server {
		want = DirReceived
	}
	var mine []TraceEvent
	for _, ev := range m.trace {
		if ev.Dir == want && ev.Size > 0 {
			mine = append(mine, ev)
		}
	}
	period := m.trace[len(m.trace)-1].Time + m.p.LoopGap

	var start time.Time
	started := false
	k, round, filled := 0, 0, 0 // event k of round round has filled bytes
	exhausted := func() bool { return !m.p.Loop && k == len(mine) }
	for _, e := range m.evs {
		if !started && e.n > 0 && (e.kind == evQueued || e.kind == evReceived) {
			started, start = true, e.at
		}
		if e.kind != evSent || !started || exhausted() || e.n <= 0 {
			continue
		}
		if start.Add(time.Duration(round)*period + mine[k].Time).After(e.at) {
			continue // not due yet
		}
		filled += e.n
		if filled >= mine[k].Size {
			k, filled = k+1, 0
			if k == len(mine) && m.p.Loop {
				k, round = 0, round+1
			}
		}
	}
	q := 0
	if len(m.evs) > 0 {
		q = queuedAfter(m.evs)[len(m.evs)-1]
	}
	switch {
	case !started:
		return Opportunity{}
	case exhausted():
		if q == 0 {
			return Opportunity{}
		}
		return Opportunity{At: now, Size: min(q, MaxSize)}
	}
	at := start.Add(time.Duration(round)*period + mine[k].Time)
	if at.Before(now) {
		at = now
	}
	return Opportunity{At: at, Size: mine[k].Size - filled, Pad: true}
}

func TestReplay_model(t *testing.T) {
	trace := []TraceEvent{
		{0, DirSent, 600, false},
		{time.Millisecond, DirReceived, 1448, false},
		{time.Millisecond, DirReceived, 1448, false},
		{3 * time.Millisecond, DirSent, 0, false}, // skipped: size 0
		{5 * time.Millisecond, DirSent, 80, true},
		{9 * time.Millisecond, DirReceived, 500, false},
		{40 * time.Millisecond, DirSent, 3000, false},
	}
	var params []ReplayParams
	for _, role := range []Role{Client, Server} {
		for _, loop := range []bool{false, true} {
			params = append(params, ReplayParams{Trace: trace, Role: role, Loop: loop, LoopGap: 7 * time.Millisecond})
		}
	}
	for i, p := range params {
		for seed := range uint64(10) {
			fast, err := NewReplay(p)
			if err != nil {
				t.Fatal(err)
			}
			slow := &slowReplay{p: fast.Params(), trace: trace}
			drive(t, fast, slow, seeded(uint64(i)*100+seed), 300, 3*time.Millisecond)
		}
	}
}
